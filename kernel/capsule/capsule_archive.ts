/**
 * The `.capsule` archive (`docs/capsule_format.md`): a deterministic gzip'd ustar holding
 * `Capsule.toml`, `<name>.wasm` (when the manifest has `[wasm]`), `static/…` and `HASHES`
 * (`blake3:<hex>  <path>` per other member, sorted). `astrid build` writes it with
 * {@link writeArchive}; `astrid capsule install` reads it with {@link readArchive}, which refuses
 * anything malformed or hostile before a byte reaches the disk.
 *
 * @module
 */
import { blake3Hex } from "../crypto/mod.ts";
import { CapsuleCode, CapsuleError, ManifestError } from "./errors.ts";
import type { CapsuleManifest } from "./manifest.ts";
import { parseManifest } from "./manifest_parser.ts";
import { readTar, TarFormatError, writeTar } from "./_tar.ts";

/** A file of an archive. */
export interface ArchiveMember {
  /** Path inside the archive, `/`-separated: `Capsule.toml`, `hello.wasm`, `static/a.md`. */
  readonly path: string;
  /** Contents. */
  readonly data: Uint8Array;
  /** Mode 0755 instead of 0644. */
  readonly executable?: boolean;
}

/** An archive read and verified by {@link readArchive}. */
export interface CapsuleArchive {
  /** The parsed manifest. */
  readonly manifest: CapsuleManifest;
  /** The manifest's text, as stored. */
  readonly manifestText: string;
  /** The module's bytes, when the manifest has `[wasm]`. */
  readonly wasm?: Uint8Array;
  /** `blake3:<hex>` of `wasm`, computed from the bytes (never taken from `HASHES`). */
  readonly wasmHash?: string;
  /** Every member except `HASHES`, sorted by path. */
  readonly members: readonly ArchiveMember[];
}

/** Limits a reader enforces (and a writer respects). */
export interface ArchiveLimits {
  /** Most bytes of all members together (default 64 MiB). */
  readonly maxTotalBytes: number;
  /** Most members, `HASHES` included (default 4,096). */
  readonly maxMembers: number;
  /** Longest member path in bytes (default 255, what ustar holds). */
  readonly maxPathBytes: number;
}

/** The default {@link ArchiveLimits}. */
export const ARCHIVE_LIMITS: ArchiveLimits = {
  maxTotalBytes: 64 * 1024 * 1024,
  maxMembers: 4096,
  maxPathBytes: 255,
};

/** The manifest member. */
export const MANIFEST_MEMBER = "Capsule.toml";
/** The hash list member. */
export const HASHES_MEMBER = "HASHES";

const enc = new TextEncoder();

function invalid(reason: string, data: { member?: string; limit?: number } = {}): CapsuleError {
  return new CapsuleError(CapsuleCode.ARCHIVE_INVALID, `Invalid capsule archive: ${reason}`, {
    data: { reason, ...data },
  });
}

/** Returns why `path` may not be a member path, or undefined. */
function pathProblem(path: string, limits: ArchiveLimits): string | undefined {
  if (path === "") return "an empty member path";
  if (enc.encode(path).length > limits.maxPathBytes) {
    return `member path "${path.slice(0, 80)}…" is ${
      enc.encode(path).length
    } bytes, the limit is ${limits.maxPathBytes}`;
  }
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path)) return `absolute member path "${path}"`;
  // deno-lint-ignore no-control-regex
  if (/[\\\u0000-\u001f\u007f]/.test(path)) {
    return `member path "${JSON.stringify(path)}" has a backslash or control character`;
  }
  const segs = path.split("/");
  if (segs.includes("..")) return `member path "${path}" escapes the archive with ".."`;
  if (segs.some((s) => s === "" || s === ".")) {
    return `member path "${path}" has an empty or "." segment`;
  }
  return undefined;
}

/** Checks the set of members against the layout and the manifest; returns the parsed manifest. */
function checkLayout(
  members: readonly ArchiveMember[],
  limits: ArchiveLimits,
): { manifest: CapsuleManifest; text: string; wasm?: ArchiveMember } {
  if (members.length + 1 > limits.maxMembers) {
    throw invalid(`${members.length + 1} members, the limit is ${limits.maxMembers}`, {
      limit: limits.maxMembers,
    });
  }
  const seen = new Map<string, string>();
  let total = 0;
  for (const m of members) {
    const problem = pathProblem(m.path, limits);
    if (problem) throw invalid(problem, { member: m.path });
    const folded = m.path.normalize("NFC").toLowerCase();
    const prev = seen.get(folded);
    if (prev !== undefined) {
      throw invalid(
        prev === m.path
          ? `duplicate member "${m.path}"`
          : `members "${prev}" and "${m.path}" differ only in case`,
        { member: m.path },
      );
    }
    seen.set(folded, m.path);
    total += m.data.length;
    if (total > limits.maxTotalBytes) {
      throw invalid(`members exceed ${limits.maxTotalBytes} bytes in total`, {
        limit: limits.maxTotalBytes,
      });
    }
  }
  const manifestMember = members.find((m) => m.path === MANIFEST_MEMBER);
  if (!manifestMember) throw invalid(`no ${MANIFEST_MEMBER}`, { member: MANIFEST_MEMBER });
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(manifestMember.data);
  } catch {
    throw invalid(`${MANIFEST_MEMBER} is not UTF-8`, { member: MANIFEST_MEMBER });
  }
  let manifest: CapsuleManifest;
  try {
    manifest = parseManifest(text, { file: MANIFEST_MEMBER });
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    throw new CapsuleError(CapsuleCode.ARCHIVE_INVALID, `Invalid capsule archive: ${err.message}`, {
      data: { reason: "manifest", member: MANIFEST_MEMBER, issues: err.issues },
      cause: err,
    });
  }
  const wasmPath = `${manifest.package.name}.wasm`;
  const wasm = members.find((m) => m.path === wasmPath);
  for (const m of members) {
    if (m.path === MANIFEST_MEMBER || m.path === wasmPath || m.path.startsWith("static/")) continue;
    throw invalid(
      `unexpected member "${m.path}": an archive holds ${MANIFEST_MEMBER}, ${wasmPath}, static/… and ${HASHES_MEMBER}`,
      { member: m.path },
    );
  }
  if (manifest.wasm && !wasm) {
    throw invalid(`the manifest declares [wasm] but "${wasmPath}" is missing`, {
      member: wasmPath,
    });
  }
  if (!manifest.wasm && wasm) {
    throw invalid(`"${wasmPath}" is present but the manifest has no [wasm]`, { member: wasmPath });
  }
  const named = [
    ...manifest.static.context_files,
    ...manifest.skill.map((s) => s.file),
    ...manifest.command.flatMap((c) => (c.file ? [c.file] : [])),
  ];
  for (const file of named) {
    if (!members.some((m) => m.path === file)) {
      throw invalid(`"${file}", named in ${MANIFEST_MEMBER}, is missing`, { member: file });
    }
  }
  return { manifest, text, ...(wasm ? { wasm } : {}) };
}

function hashesText(members: readonly ArchiveMember[]): string {
  return members.map((m) => `blake3:${blake3Hex(m.data)}  ${m.path}\n`).join("");
}

function byPath(a: { path: string }, b: { path: string }): number {
  // Byte order of UTF-8 equals code point order; compare code points, not UTF-16 units.
  const x = [...a.path].map((c) => c.codePointAt(0) as number);
  const y = [...b.path].map((c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

async function pipe(
  bytes: Uint8Array,
  stream: CompressionStream | DecompressionStream,
  max: number,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(stream)
    .getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > max) {
      await reader.cancel();
      throw invalid(`the uncompressed archive exceeds ${max} bytes`, { limit: max });
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Writes a `.capsule` archive of `members` (`HASHES` is computed, not given). The same members
 * give byte-identical output, whatever their order. Throws `ARCHIVE_INVALID` when the members
 * would not make a valid archive (the same checks as {@link readArchive}).
 */
export async function writeArchive(
  members: readonly ArchiveMember[],
  options: { limits?: Partial<ArchiveLimits> } = {},
): Promise<Uint8Array> {
  const limits = { ...ARCHIVE_LIMITS, ...options.limits };
  if (members.some((m) => m.path === HASHES_MEMBER)) {
    throw invalid(`${HASHES_MEMBER} is computed by the writer; do not pass it`, {
      member: HASHES_MEMBER,
    });
  }
  checkLayout(members, limits);
  const sorted = [...members].sort(byPath);
  const hashes: ArchiveMember = { path: HASHES_MEMBER, data: enc.encode(hashesText(sorted)) };
  const all = [...sorted, hashes].sort(byPath);
  const tar = writeTar(
    all.map((m) => ({ path: m.path, data: m.data, mode: m.executable ? 0o755 : 0o644 })),
  );
  const gz = await pipe(tar, new CompressionStream("gzip"), Number.MAX_SAFE_INTEGER);
  // Normalise the gzip header: mtime 0, OS "unknown", so every platform writes the same bytes.
  gz.fill(0, 4, 8);
  gz[9] = 0xff;
  return gz;
}

/**
 * Reads and verifies a `.capsule` archive: gzip'd ustar of regular files only (no links,
 * devices, absolute paths, `..`, duplicates), within the limits, with a `HASHES` that lists
 * every other member exactly once with its BLAKE3, and a manifest that parses.
 */
export async function readArchive(
  bytes: Uint8Array,
  options: { limits?: Partial<ArchiveLimits> } = {},
): Promise<CapsuleArchive> {
  const limits = { ...ARCHIVE_LIMITS, ...options.limits };
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) throw invalid("not a gzip file");
  if (bytes.length > limits.maxTotalBytes) {
    throw invalid(`the archive is ${bytes.length} bytes, the limit is ${limits.maxTotalBytes}`, {
      limit: limits.maxTotalBytes,
    });
  }
  // Members plus at most two 512-byte blocks of header and padding each, and the end marker.
  const maxTar = limits.maxTotalBytes + (limits.maxMembers + 2) * 1024;
  let tar: Uint8Array;
  try {
    tar = await pipe(bytes, new DecompressionStream("gzip"), maxTar);
  } catch (err) {
    if (err instanceof CapsuleError) throw err;
    throw invalid(`the gzip stream is corrupt: ${(err as Error).message}`);
  }
  let entries;
  try {
    entries = readTar(tar, { maxEntries: limits.maxMembers });
  } catch (err) {
    if (!(err instanceof TarFormatError)) throw err;
    throw invalid(`malformed tar: ${err.message}`);
  }
  const members: ArchiveMember[] = [];
  let hashes: Uint8Array | undefined;
  for (const e of entries) {
    const problem = pathProblem(e.path.replace(/\/$/, ""), limits);
    if (problem) throw invalid(problem, { member: e.path });
    if (e.type === "5") continue; // a directory entry carries nothing
    if (e.type !== "0" && e.type !== "7") {
      const kind = ({
        "1": "hard link",
        "2": "symlink",
        "3": "character device",
        "4": "block device",
        "6": "FIFO",
      } as Record<string, string>)[e.type] ??
        `entry of type "${e.type}"`;
      throw invalid(`"${e.path}" is a ${kind}; only regular files are allowed`, { member: e.path });
    }
    if (e.path === HASHES_MEMBER) {
      if (hashes) throw invalid(`duplicate member "${HASHES_MEMBER}"`, { member: HASHES_MEMBER });
      hashes = e.data;
      continue;
    }
    members.push({
      path: e.path,
      data: e.data,
      ...((e.mode & 0o111) !== 0 ? { executable: true } : {}),
    });
  }
  const layout = checkLayout(members, limits);
  if (!hashes) throw invalid(`no ${HASHES_MEMBER}`, { member: HASHES_MEMBER });
  verifyHashes(hashes, members);
  const sorted = members.sort(byPath);
  return {
    manifest: layout.manifest,
    manifestText: layout.text,
    ...(layout.wasm
      ? { wasm: layout.wasm.data, wasmHash: `blake3:${blake3Hex(layout.wasm.data)}` }
      : {}),
    members: sorted,
  };
}

function verifyHashes(hashes: Uint8Array, members: readonly ArchiveMember[]): void {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(hashes);
  } catch {
    throw invalid(`${HASHES_MEMBER} is not UTF-8`, { member: HASHES_MEMBER });
  }
  const listed = new Map<string, string>();
  const lines = text.split("\n");
  if (lines.pop() !== "") {
    throw invalid(`${HASHES_MEMBER} does not end with a newline`, { member: HASHES_MEMBER });
  }
  lines.forEach((line, i) => {
    const m = /^(blake3:[0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (!m) {
      throw invalid(`${HASHES_MEMBER} line ${i + 1} is not "blake3:<hex>  <path>"`, {
        member: HASHES_MEMBER,
      });
    }
    if (listed.has(m[2])) throw invalid(`${HASHES_MEMBER} lists "${m[2]}" twice`, { member: m[2] });
    listed.set(m[2], m[1]);
  });
  for (const m of members) {
    const want = listed.get(m.path);
    if (want === undefined) {
      throw invalid(`member "${m.path}" is not listed in ${HASHES_MEMBER}`, { member: m.path });
    }
    const got = `blake3:${blake3Hex(m.data)}`;
    if (got !== want) {
      throw invalid(
        `member "${m.path}" does not match ${HASHES_MEMBER}: listed ${want}, contents hash to ${got}`,
        { member: m.path },
      );
    }
    listed.delete(m.path);
  }
  for (const path of listed.keys()) {
    throw invalid(`${HASHES_MEMBER} lists "${path}", which the archive lacks`, { member: path });
  }
}
