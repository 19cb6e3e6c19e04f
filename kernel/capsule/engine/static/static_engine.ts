/**
 * The static engine: what a capsule contributes without a VM — `[static] context_files`,
 * `[[skill]]` files and file-backed `[[command]]`s — read once at load from its install record
 * and served to the prompt builder ({@link StaticEngine.listContext},
 * {@link StaticEngine.listSkills}, {@link StaticEngine.listCommands}).
 *
 * Files are read without following symlinks: every component of the path below the capsule's
 * directory must be a real directory or file (a workspace capsule could otherwise point
 * `static/context.md` at `~/.ssh/id_ed25519` and leak it into a prompt), the file must be UTF-8,
 * and sizes are capped.
 *
 * @module
 */
import { join } from "node:path";
import type { CapsuleManifest } from "../../manifest.ts";
import { StaticCode, StaticError } from "./errors.ts";

/** Size limits of the static engine. */
export interface StaticLimits {
  /** Largest single file, bytes (default 1 MiB). */
  readonly maxFileBytes: number;
  /** Largest total of one capsule's static files, bytes (default 8 MiB). */
  readonly maxCapsuleBytes: number;
}

/** The default limits. */
export const DEFAULT_STATIC_LIMITS: StaticLimits = Object.freeze({
  maxFileBytes: 1024 * 1024,
  maxCapsuleBytes: 8 * 1024 * 1024,
});

/** A capsule to read static content for. */
export interface StaticSource {
  /** The loaded capsule's key (unique across scopes). */
  readonly key: string;
  /** The install record's directory (holding `Capsule.toml` and `static/`). */
  readonly dir: string;
  /** Its manifest. */
  readonly manifest: CapsuleManifest;
}

/** A context file for the model. */
export interface StaticContextFile {
  /** The capsule's name. */
  readonly capsule: string;
  /** The loaded capsule's key. */
  readonly key: string;
  /** The file as the manifest names it (`static/context.md`). */
  readonly file: string;
  /** Its text. */
  readonly text: string;
}

/** A skill file. */
export interface StaticSkill extends StaticContextFile {
  /** The skill's name. */
  readonly name: string;
  /** When to use it. */
  readonly description: string;
}

/** A file-backed slash command: its prompt text. */
export interface StaticCommand extends StaticContextFile {
  /** The command, without the slash. */
  readonly name: string;
  /** One line shown in help. */
  readonly description: string;
}

/** Everything one capsule contributes. */
export interface StaticContent {
  /** The loaded capsule's key. */
  readonly key: string;
  /** Its context files, in manifest order. */
  readonly context: readonly StaticContextFile[];
  /** Its skills. */
  readonly skills: readonly StaticSkill[];
  /** Its file-backed commands. */
  readonly commands: readonly StaticCommand[];
  /** Bytes read. */
  readonly bytes: number;
}

/** True when the manifest gives the static engine anything to do. */
export function hasStaticContent(manifest: CapsuleManifest): boolean {
  return manifest.static.context_files.length > 0 || manifest.skill.length > 0 ||
    manifest.command.some((c) => c.file !== undefined);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads a capsule's static content; throws `STATIC_FILE_INVALID` or `STATIC_TOO_LARGE` naming
 * the file.
 */
export async function readStaticContent(
  source: StaticSource,
  limits: StaticLimits = DEFAULT_STATIC_LIMITS,
): Promise<StaticContent> {
  const m = source.manifest;
  const capsule = m.package.name;
  let total = 0;
  const read = async (file: string): Promise<string> => {
    const bytes = await readConfined(source.dir, file, capsule, limits.maxFileBytes);
    total += bytes.length;
    if (total > limits.maxCapsuleBytes) {
      throw new StaticError(
        StaticCode.STATIC_TOO_LARGE,
        `Capsule "${capsule}": its static files total ${total} bytes, over the limit of ${limits.maxCapsuleBytes}`,
        { data: { capsule, path: file, value: total, limit: limits.maxCapsuleBytes } },
      );
    }
    try {
      return utf8.decode(bytes);
    } catch {
      throw invalid(capsule, file, "it is not UTF-8 text");
    }
  };
  const base = { capsule, key: source.key };
  const context: StaticContextFile[] = [];
  for (const file of m.static.context_files) {
    context.push({ ...base, file, text: await read(file) });
  }
  const skills: StaticSkill[] = [];
  for (const s of m.skill) {
    skills.push({
      ...base,
      file: s.file,
      name: s.name,
      description: s.description,
      text: await read(s.file),
    });
  }
  const commands: StaticCommand[] = [];
  for (const c of m.command) {
    if (c.file === undefined) continue;
    commands.push({
      ...base,
      file: c.file,
      name: c.name,
      description: c.description,
      text: await read(c.file),
    });
  }
  return { key: source.key, context, skills, commands, bytes: total };
}

/** Reads `file` (relative, `/`-separated) under `dir` without following any symlink. */
async function readConfined(
  dir: string,
  file: string,
  capsule: string,
  maxBytes: number,
): Promise<Uint8Array> {
  const parts = file.split("/");
  if (parts.some((p) => p === "" || p === "." || p === ".." || p.includes("\\"))) {
    throw invalid(capsule, file, 'the path must be relative, without "..", "." or "\\"');
  }
  let at = dir;
  let last: Deno.FileInfo | undefined;
  for (let i = 0; i < parts.length; i++) {
    at = join(at, parts[i]);
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(at);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw invalid(
          capsule,
          file,
          "it is missing from the install record: reinstall the capsule",
        );
      }
      throw invalid(capsule, file, `it cannot be read: ${(err as Error).message}`);
    }
    const shown = parts.slice(0, i + 1).join("/");
    if (info.isSymlink) throw invalid(capsule, file, `"${shown}" is a symlink`);
    if (i < parts.length - 1 && !info.isDirectory) {
      throw invalid(capsule, file, `"${shown}" is not a directory`);
    }
    last = info;
  }
  if (!last?.isFile) throw invalid(capsule, file, "it is not a regular file");
  tooLarge(capsule, file, last.size, maxBytes);
  // The open follows a symlink swapped in since the check: compare the opened file with it.
  using f = await Deno.open(at, { read: true });
  const opened = await f.stat();
  if (opened.ino !== last.ino || opened.dev !== last.dev || !opened.isFile) {
    throw invalid(capsule, file, "it changed while being read");
  }
  tooLarge(capsule, file, opened.size, maxBytes);
  const bytes = new Uint8Array(opened.size);
  let n = 0;
  while (n < bytes.length) {
    const got = await f.read(bytes.subarray(n));
    if (got === null) break;
    n += got;
  }
  return bytes.subarray(0, n);
}

function tooLarge(capsule: string, file: string, size: number, maxBytes: number): void {
  if (size <= maxBytes) return;
  throw new StaticError(
    StaticCode.STATIC_TOO_LARGE,
    `Capsule "${capsule}": static file "${file}" is ${size} bytes, over the limit of ${maxBytes}`,
    { data: { capsule, path: file, value: size, limit: maxBytes } },
  );
}

function invalid(capsule: string, file: string, reason: string): StaticError {
  return new StaticError(
    StaticCode.STATIC_FILE_INVALID,
    `Capsule "${capsule}": static file "${file}" cannot be served: ${reason}`,
    { data: { capsule, path: file, reason } },
  );
}

/** Which loaded capsules a listing covers (default: all). */
export type StaticFilter = (key: string) => boolean;

/**
 * The static content of every loaded capsule, by key.
 *
 * @example
 * ```ts ignore
 * const engine = new StaticEngine();
 * await engine.load({ key: "notes", dir: record.dir, manifest: record.manifest });
 * for (const c of engine.listContext()) prompt += c.text;
 * ```
 */
export class StaticEngine {
  readonly #limits: StaticLimits;
  readonly #content = new Map<string, StaticContent>();

  /** An engine enforcing `limits` (default {@link DEFAULT_STATIC_LIMITS}). */
  constructor(limits: Partial<StaticLimits> = {}) {
    this.#limits = { ...DEFAULT_STATIC_LIMITS, ...limits };
  }

  /** Reads `source`'s content and serves it under its key (replacing an earlier load). */
  async load(source: StaticSource): Promise<StaticContent> {
    const content = await readStaticContent(source, this.#limits);
    this.#content.set(source.key, content);
    return content;
  }

  /** Stops serving `key`; false when it was not loaded. */
  unload(key: string): boolean {
    return this.#content.delete(key);
  }

  /** The content of `key`, if loaded. */
  get(key: string): StaticContent | undefined {
    return this.#content.get(key);
  }

  /** Context files of the capsules `filter` admits, by key then manifest order. */
  listContext(filter?: StaticFilter): StaticContextFile[] {
    return this.#pick(filter).flatMap((c) => c.context);
  }

  /** Skills of the capsules `filter` admits. */
  listSkills(filter?: StaticFilter): StaticSkill[] {
    return this.#pick(filter).flatMap((c) => c.skills);
  }

  /** File-backed commands of the capsules `filter` admits. */
  listCommands(filter?: StaticFilter): StaticCommand[] {
    return this.#pick(filter).flatMap((c) => c.commands);
  }

  #pick(filter: StaticFilter | undefined): StaticContent[] {
    return [...this.#content.values()]
      .filter((c) => filter === undefined || filter(c.key))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}
