/**
 * `Distro.lock` (`$ASTRID_HOME/etc/Distro.lock`): what `astrid init` installed, pinned — the
 * distro, the principal it was installed for, the groups chosen, and for every capsule its
 * name, version, source and the BLAKE3 hashes of its module and manifest, taken from the bytes
 * installed (never from an archive's own word). Written atomically; a re-run that installs the
 * same thing leaves the file byte-identical.
 *
 * ```toml
 * # Distro.lock: written by `astrid init`. Do not edit; run `astrid init --update` instead.
 * schema_version = 1
 *
 * [distro]
 * name = "astralis"
 * version = "0.1.0"
 * source = "/opt/astrid/distros/astralis/Distro.toml"
 * principal = "default"
 * groups = ["anthropic"]
 * locked_at = "2026-01-02T03:04:05.000Z"
 *
 * [[capsule]]
 * name = "tools-fs"
 * version = "0.1.0"
 * source = "/opt/astrid/capsules/tools-fs"
 * wasm_hash = "blake3:…"
 * manifest_hash = "blake3:…"
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { parse, stringify } from "smol-toml";
import { type AstridHome, atomicWrite } from "../home/mod.ts";
import { DistroCode, DistroError } from "./errors.ts";

/** The lock format version this code writes and reads. */
export const DISTRO_LOCK_VERSION = 1;

/** One installed capsule, pinned. */
export interface LockedCapsule {
  /** The capsule name. */
  readonly name: string;
  /** The version installed. */
  readonly version: string;
  /** The resolved source it was installed from. */
  readonly source: string;
  /** `blake3:<hex>` of the installed module; null for a capsule without `[wasm]`. */
  readonly wasm_hash: string | null;
  /** `blake3:<hex>` of the installed `Capsule.toml`. */
  readonly manifest_hash: string;
}

/** A `Distro.lock`. */
export interface DistroLock {
  /** {@link DISTRO_LOCK_VERSION}. */
  readonly schema_version: number;
  /** The distro and how it was installed. */
  readonly distro: {
    /** The distro name. */
    readonly name: string;
    /** Its version. */
    readonly version: string;
    /** The `Distro.toml` it was read from. */
    readonly source: string;
    /** The principal the capsules were installed for. */
    readonly principal: string;
    /** The groups selected. */
    readonly groups: readonly string[];
    /** When the lock was written, ISO 8601 UTC. */
    readonly locked_at: string;
  };
  /** Every installed capsule, in install order. */
  readonly capsule: readonly LockedCapsule[];
}

const HASH_RE = /^blake3:[0-9a-f]{64}$/;
const HEADER =
  "# Distro.lock: written by `astrid init`. Do not edit; run `astrid init --update` instead.\n";

/** `etc/Distro.lock` of a home. */
export function distroLockPath(home: AstridHome): string {
  return join(home.etc, "Distro.lock");
}

/** The lock's text: a comment line, then TOML with a fixed key order. */
export function formatDistroLock(lock: DistroLock): string {
  const doc = {
    schema_version: lock.schema_version,
    distro: {
      name: lock.distro.name,
      version: lock.distro.version,
      source: lock.distro.source,
      principal: lock.distro.principal,
      groups: [...lock.distro.groups],
      locked_at: lock.distro.locked_at,
    },
    capsule: lock.capsule.map((c) => ({
      name: c.name,
      version: c.version,
      source: c.source,
      ...(c.wasm_hash !== null ? { wasm_hash: c.wasm_hash } : {}),
      manifest_hash: c.manifest_hash,
    })),
  };
  return HEADER + stringify(doc) + "\n";
}

/** True when two locks pin the same things (everything but `locked_at`). */
export function sameLock(a: DistroLock, b: DistroLock): boolean {
  const strip = (l: DistroLock) =>
    formatDistroLock({ ...l, distro: { ...l.distro, locked_at: "" } });
  return strip(a) === strip(b);
}

/** Parses a lock's text; `DISTRO_LOCK_INVALID` naming `file` and the field on any problem. */
export function parseDistroLock(text: string, file: string): DistroLock {
  const bad = (field: string, why: string) =>
    new DistroError(
      DistroCode.DISTRO_LOCK_INVALID,
      `Invalid lock file "${file}": ${field}: ${why}; delete it and run astrid init again`,
      { data: { file, field } },
    );
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    throw bad("(syntax)", (err as Error).message.split("\n")[0]);
  }
  if (doc.schema_version !== DISTRO_LOCK_VERSION) {
    throw bad(
      "schema_version",
      `expected ${DISTRO_LOCK_VERSION}, got ${JSON.stringify(doc.schema_version)}`,
    );
  }
  const obj = (v: unknown, field: string) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw bad(field, "expected a table");
    }
    return v as Record<string, unknown>;
  };
  const str = (o: Record<string, unknown>, key: string, field: string) => {
    if (typeof o[key] !== "string" || o[key] === "") {
      throw bad(`${field}.${key}`, "expected a string");
    }
    return o[key] as string;
  };
  const d = obj(doc.distro, "distro");
  const groups = d.groups ?? [];
  if (!Array.isArray(groups) || groups.some((g) => typeof g !== "string")) {
    throw bad("distro.groups", "expected a list of strings");
  }
  const capsules = doc.capsule ?? [];
  if (!Array.isArray(capsules)) throw bad("capsule", "expected [[capsule]] tables");
  return {
    schema_version: DISTRO_LOCK_VERSION,
    distro: {
      name: str(d, "name", "distro"),
      version: str(d, "version", "distro"),
      source: str(d, "source", "distro"),
      principal: str(d, "principal", "distro"),
      groups: groups as string[],
      locked_at: str(d, "locked_at", "distro"),
    },
    capsule: capsules.map((raw, i) => {
      const field = `capsule[${i}]`;
      const c = obj(raw, field);
      const wasm = c.wasm_hash ?? null;
      if (wasm !== null && (typeof wasm !== "string" || !HASH_RE.test(wasm))) {
        throw bad(`${field}.wasm_hash`, 'expected "blake3:<64 hex>"');
      }
      const manifestHash = str(c, "manifest_hash", field);
      if (!HASH_RE.test(manifestHash)) {
        throw bad(`${field}.manifest_hash`, 'expected "blake3:<64 hex>"');
      }
      return {
        name: str(c, "name", field),
        version: str(c, "version", field),
        source: str(c, "source", field),
        wasm_hash: wasm as string | null,
        manifest_hash: manifestHash,
      };
    }),
  };
}

/** Reads the lock at `path`; undefined when there is none. */
export async function readDistroLock(path: string): Promise<DistroLock | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  return parseDistroLock(text, path);
}

/** Writes `lock` to `path` atomically (mode 0644). */
export async function writeDistroLock(path: string, lock: DistroLock): Promise<void> {
  await atomicWrite(path, formatDistroLock(lock), { mode: 0o644 });
}
