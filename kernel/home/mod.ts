/**
 * The Astrid home (`$ASTRID_HOME`): resolution, the on-disk layout with 0700 directories, and
 * crash-safe atomic file writes. What lives inside the files belongs to other folders.
 *
 * @module
 */
export { AstridHome, ensureDir, resolveHomePath } from "./astrid_home.ts";
export { atomicWrite, type AtomicWriteOptions } from "./atomic_write.ts";
export { HomeCode, HomeError } from "./errors.ts";
