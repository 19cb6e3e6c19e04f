/**
 * The capsule compiler behind `astrid build`: compiles guest sources, validates them against
 * `Capsule.toml`, and writes the `.capsule` archive. It arrives with the SDK; until then this
 * surface is empty.
 *
 * @module
 */
export {};
