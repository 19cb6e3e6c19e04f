/**
 * The host ABI: the flat table of functions a capsule may import from the `astrid` module, one
 * file per subsystem, and the manifest security gate every call passes. It arrives with the
 * capsule runtime; until then this surface is empty.
 *
 * @module
 */
export {};
