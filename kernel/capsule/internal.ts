/**
 * Internals of the capsule folder that a neighbour reuses: the TOML key locator and the
 * "did you mean" hint behind the manifest's located errors. `kernel/distro/` parses
 * `Distro.toml` with them so both files report problems the same way (file, line, field, fix).
 * Not part of the public surface (`mod.ts`); change them with their users in mind.
 *
 * @module
 */
export { formatPath, type KeyLocation, type KeyPath, TomlLocator } from "./_toml_locator.ts";
export { closest } from "./_suggest.ts";
export { Context, describe, isTable, type Table } from "./_manifest_context.ts";
