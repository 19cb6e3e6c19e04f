/**
 * The running Astrid version (kept equal to `deno.json`'s `version` by a test).
 *
 * @module
 */

/** The Astrid version, semver. */
export const VERSION = "0.1.0";
