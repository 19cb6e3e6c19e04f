/**
 * The build cache: builds cost about a second, so `astrid build` keeps each built archive under
 * the BLAKE3 of what went into it — the manifest, the static files, every source the compiler
 * read from the capsule's side, the build options and the SDK (its sources, the compiler's and
 * json-as's versions). A lookup re-hashes the recorded sources, so an edit is a miss.
 *
 * Layout of the cache directory: `<key>.deps.json` (the sources a key's build read) and, per
 * result, `<full>.json` (metadata) and `<full>.capsule` (the archive), `full` covering the
 * sources' hashes too. Entries are content-addressed and written atomically, so several
 * processes may share one directory.
 *
 * @module
 */
import { join, relative } from "node:path";
import { blake3Hex } from "../../kernel/crypto/mod.ts";
import { atomicWrite } from "../../kernel/home/mod.ts";
import { ASC_VERSION, NODE_MODULES_DIR, SDK_BUILD_DIR, SDK_SOURCE_DIR } from "./compiler.ts";

/** Bumped when the cache layout or the build's output changes shape. */
const CACHE_FORMAT = 1;

/** The default cache directory: `$ASTRID_BUILD_CACHE`, else `$XDG_CACHE_HOME/astrid/build`, else `~/.cache/astrid/build`. */
export function defaultBuildCacheDir(): string | undefined {
  const explicit = Deno.env.get("ASTRID_BUILD_CACHE");
  if (explicit !== undefined && explicit !== "") return explicit;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  if (xdg !== undefined && xdg !== "") return join(xdg, "astrid", "build");
  const home = Deno.env.get("HOME");
  return home === undefined || home === "" ? undefined : join(home, ".cache", "astrid", "build");
}

async function filesUnder(dir: string, accept: (path: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(d)];
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile && accept(p)) out.push(p);
    }
  };
  await walk(dir);
  return out.sort();
}

let fingerprint: Promise<string> | undefined;

/** The SDK's fingerprint: its AssemblyScript sources, the compiler's code and library versions. */
export function sdkFingerprint(): Promise<string> {
  fingerprint ??= (async () => {
    const files = [
      ...await filesUnder(SDK_SOURCE_DIR, (p) => p.endsWith(".ts")),
      ...await filesUnder(SDK_BUILD_DIR, (p) => p.endsWith(".ts") && !p.endsWith("_test.ts")),
    ];
    const parts = [`format ${CACHE_FORMAT}`, `asc ${ASC_VERSION}`];
    try {
      const pkg = JSON.parse(
        await Deno.readTextFile(join(NODE_MODULES_DIR, "json-as", "package.json")),
      );
      parts.push(`json-as ${pkg.version}`);
    } catch {
      parts.push("json-as ?");
    }
    for (const f of files) {
      parts.push(`${relative(SDK_BUILD_DIR, f)} ${blake3Hex(await Deno.readFile(f))}`);
    }
    return blake3Hex(parts.join("\n"));
  })();
  return fingerprint;
}

/** One source file a build read, relative to the capsule directory, and its hash. */
export interface CacheInput {
  /** Path relative to the capsule directory (`/`-separated). */
  path: string;
  /** BLAKE3 hex of its bytes. */
  hash: string;
}

/** What a cache entry stores beside the archive (the build's result without the bytes). */
export type CachedMeta = Record<string, unknown>;

/** A build cache over one directory. */
export class BuildCache {
  /** The directory. */
  readonly dir: string;

  /** A cache in `dir` (created on first write). */
  constructor(dir: string) {
    this.dir = dir;
  }

  /** Hashes the current bytes of `inputs` under `capsuleDir`; undefined when one is gone. */
  static async hashInputs(
    capsuleDir: string,
    paths: readonly string[],
  ): Promise<CacheInput[] | undefined> {
    const out: CacheInput[] = [];
    for (const path of paths) {
      try {
        out.push({ path, hash: blake3Hex(await Deno.readFile(join(capsuleDir, path))) });
      } catch {
        return undefined;
      }
    }
    return out;
  }

  #full(key: string, inputs: readonly CacheInput[]): string {
    return blake3Hex(`${key}\n${inputs.map((i) => `${i.hash}  ${i.path}`).join("\n")}`);
  }

  /** The cached archive and metadata for `key`, when the sources it read are unchanged. */
  async get(
    key: string,
    capsuleDir: string,
  ): Promise<{ archive: Uint8Array; meta: CachedMeta } | undefined> {
    try {
      const deps = JSON.parse(await Deno.readTextFile(join(this.dir, `${key}.deps.json`))) as {
        inputs: string[];
      };
      const inputs = await BuildCache.hashInputs(capsuleDir, deps.inputs);
      if (inputs === undefined) return undefined;
      const full = this.#full(key, inputs);
      const meta = JSON.parse(
        await Deno.readTextFile(join(this.dir, `${full}.json`)),
      ) as CachedMeta;
      const archive = await Deno.readFile(join(this.dir, `${full}.capsule`));
      return { archive, meta };
    } catch {
      return undefined;
    }
  }

  /** Stores a build's archive and metadata under `key` and the sources it read. */
  async put(
    key: string,
    inputs: readonly CacheInput[],
    archive: Uint8Array,
    meta: CachedMeta,
  ): Promise<void> {
    await Deno.mkdir(this.dir, { recursive: true });
    const full = this.#full(key, inputs);
    await atomicWrite(join(this.dir, `${full}.capsule`), archive);
    await atomicWrite(join(this.dir, `${full}.json`), JSON.stringify(meta));
    await atomicWrite(
      join(this.dir, `${key}.deps.json`),
      JSON.stringify({ inputs: inputs.map((i) => i.path) }),
    );
  }
}
