/**
 * Install records: one directory per installed capsule, `<capsules>/<name>/`, holding the
 * manifest (`Capsule.toml`) and `meta.json` (name, version, `wasm_hash`, source, installed_at).
 * The wasm itself lives once in the binary store under its pinned hash. `meta.json` is written
 * last, so a directory without it is an interrupted install and is not loaded.
 *
 * @module
 */
import { basename, join } from "node:path";
import { atomicWrite, ensureDir } from "../home/mod.ts";
import { CapsuleCode, CapsuleError } from "./errors.ts";
import type { CapsuleManifest } from "./manifest.ts";
import { parseManifest } from "./manifest_parser.ts";
import { HASH_RE } from "./_manifest_values.ts";

/** The manifest file of an install record. */
export const RECORD_MANIFEST = "Capsule.toml";
/** The metadata file of an install record. */
export const RECORD_META = "meta.json";

/** `meta.json` of an install record. */
export interface InstallMeta {
  /** The capsule's name (equals `[package] name` and the directory name). */
  readonly name: string;
  /** The installed version (equals `[package] version`). */
  readonly version: string;
  /** `blake3:<hex>` of the wasm pinned at install; `null` for a capsule without `[wasm]`. */
  readonly wasm_hash: string | null;
  /** Where it came from: an archive path, a directory, a registry reference. */
  readonly source: string;
  /** When it was installed, ISO 8601 UTC. */
  readonly installed_at: string;
}

/** An install record read from disk. */
export interface InstallRecord {
  /** The record's directory. */
  readonly dir: string;
  /** The parsed manifest. */
  readonly manifest: CapsuleManifest;
  /** The manifest's text. */
  readonly manifestText: string;
  /** The parsed `meta.json`. */
  readonly meta: InstallMeta;
}

function bad(dir: string, field: string, message: string, cause?: unknown): CapsuleError {
  return new CapsuleError(
    CapsuleCode.INSTALL_RECORD_INVALID,
    `Invalid install record "${dir}": ${message}`,
    {
      data: {
        dir,
        field,
        file: join(dir, field === RECORD_MANIFEST ? RECORD_MANIFEST : RECORD_META),
      },
      cause,
    },
  );
}

/** Parses and checks the text of a `meta.json`; `dir` names the record in messages. */
export function parseInstallMeta(text: string, dir: string): InstallMeta {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw bad(dir, RECORD_META, `${RECORD_META} is not JSON: ${(cause as Error).message}`, cause);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw bad(dir, RECORD_META, `${RECORD_META} is not a JSON object`);
  }
  const o = raw as Record<string, unknown>;
  const str = (key: string): string => {
    if (typeof o[key] !== "string" || o[key] === "") {
      throw bad(
        dir,
        key,
        `${RECORD_META} field "${key}" must be a non-empty string, got ${
          JSON.stringify(o[key]) ?? "nothing"
        }`,
      );
    }
    return o[key] as string;
  };
  const hash = o.wasm_hash ?? null;
  if (hash !== null && (typeof hash !== "string" || !HASH_RE.test(hash))) {
    throw bad(
      dir,
      "wasm_hash",
      `${RECORD_META} field "wasm_hash" must be "blake3:<64 hex>" or null, got ${
        JSON.stringify(hash)
      }`,
    );
  }
  const installed = str("installed_at");
  if (Number.isNaN(Date.parse(installed))) {
    throw bad(
      dir,
      "installed_at",
      `${RECORD_META} field "installed_at" is not an ISO 8601 time: "${installed}"`,
    );
  }
  return {
    name: str("name"),
    version: str("version"),
    wasm_hash: hash as string | null,
    source: str("source"),
    installed_at: installed,
  };
}

/** Checks that a manifest and its meta agree with each other and with the directory name. */
export function checkRecord(dir: string, manifest: CapsuleManifest, meta: InstallMeta): void {
  const name = basename(dir);
  if (manifest.package.name !== name) {
    throw bad(
      dir,
      "name",
      `the manifest names "${manifest.package.name}" but the directory is "${name}"`,
    );
  }
  if (meta.name !== manifest.package.name) {
    throw bad(
      dir,
      "name",
      `${RECORD_META} names "${meta.name}" but the manifest "${manifest.package.name}"`,
    );
  }
  if (meta.version !== manifest.package.version) {
    throw bad(
      dir,
      "version",
      `${RECORD_META} has version "${meta.version}" but the manifest "${manifest.package.version}"`,
    );
  }
  if (manifest.wasm && meta.wasm_hash === null) {
    throw bad(
      dir,
      "wasm_hash",
      `the manifest declares [wasm] but ${RECORD_META} pins no wasm_hash: reinstall the capsule`,
    );
  }
  if (!manifest.wasm && meta.wasm_hash !== null) {
    throw bad(dir, "wasm_hash", `${RECORD_META} pins a wasm_hash but the manifest has no [wasm]`);
  }
  if (manifest.wasm?.hash !== undefined && manifest.wasm.hash !== meta.wasm_hash) {
    throw bad(
      dir,
      "wasm_hash",
      `the manifest pins ${manifest.wasm.hash} but ${RECORD_META} ${meta.wasm_hash}`,
    );
  }
}

/** Reads and checks the install record in `dir`. */
export async function readInstallRecord(dir: string): Promise<InstallRecord> {
  const read = async (file: string): Promise<string> => {
    try {
      return await Deno.readTextFile(join(dir, file));
    } catch (cause) {
      const why = cause instanceof Deno.errors.NotFound
        ? `${file} is missing (an interrupted install?): reinstall the capsule`
        : `cannot read ${file}: ${(cause as Error).message}`;
      throw bad(dir, file, why, cause);
    }
  };
  const manifestText = await read(RECORD_MANIFEST);
  const metaText = await read(RECORD_META);
  // A manifest problem leaves as the ManifestError naming the record's Capsule.toml and line.
  const manifest = parseManifest(manifestText, { file: join(dir, RECORD_MANIFEST) });
  const meta = parseInstallMeta(metaText, dir);
  checkRecord(dir, manifest, meta);
  return { dir, manifest, manifestText, meta };
}

/**
 * Writes an install record into `dir` (created 0700): the manifest first, then `meta.json`,
 * each atomically, after checking that they agree. Returns the record as read back.
 */
export async function writeInstallRecord(
  dir: string,
  record: { manifestText: string; meta: InstallMeta },
): Promise<InstallRecord> {
  const manifest = parseManifest(record.manifestText, { file: join(dir, RECORD_MANIFEST) });
  const meta = parseInstallMeta(JSON.stringify(record.meta), dir);
  checkRecord(dir, manifest, meta);
  await ensureDir(dir);
  await Deno.remove(join(dir, RECORD_META)).catch(() => {});
  await atomicWrite(join(dir, RECORD_MANIFEST), record.manifestText, { mode: 0o644 });
  await atomicWrite(join(dir, RECORD_META), JSON.stringify(meta, null, 2) + "\n", { mode: 0o644 });
  return { dir, manifest, manifestText: record.manifestText, meta };
}
