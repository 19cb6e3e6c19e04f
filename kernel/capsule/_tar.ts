/**
 * Folder-private: a small ustar (POSIX.1-1988) writer and reader, enough for `.capsule`
 * archives. The writer emits regular files only, with zero mtime, uid/gid 0, empty user and
 * group names and the mode given, then two zero blocks. The reader returns every entry with
 * its type flag so the caller can refuse links and devices; it checks header checksums and
 * refuses pax/GNU extension headers (the writer never makes them).
 *
 * @module
 */

const BLOCK = 512;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** A file to write. */
export interface TarFile {
  /** Path inside the archive (at most 255 bytes, split over ustar's prefix and name). */
  readonly path: string;
  /** Contents. */
  readonly data: Uint8Array;
  /** Permission bits, e.g. 0o644. */
  readonly mode: number;
}

/** An entry read from an archive. */
export interface TarEntry {
  /** Path inside the archive (prefix and name joined). */
  readonly path: string;
  /** The ustar type flag: `"0"` file, `"5"` directory, `"1"`/`"2"` links, `"3"`/`"4"`/`"6"` devices and FIFOs, … */
  readonly type: string;
  /** Permission bits. */
  readonly mode: number;
  /** Contents (empty for non-files). */
  readonly data: Uint8Array;
  /** Link target for link entries. */
  readonly linkname: string;
}

/** Raised by {@link readTar} on a malformed archive; `reason` says what. */
export class TarFormatError extends Error {}

function writeString(buf: Uint8Array, offset: number, size: number, text: string): void {
  const bytes = enc.encode(text);
  if (bytes.length > size) throw new TarFormatError(`field too long: "${text}"`);
  buf.set(bytes, offset);
}

function writeOctal(buf: Uint8Array, offset: number, size: number, value: number): void {
  const text = value.toString(8).padStart(size - 1, "0");
  if (text.length > size - 1) throw new TarFormatError(`number too large for tar: ${value}`);
  writeString(buf, offset, size, text + "\0");
}

/** Splits a path into ustar `prefix` and `name` (name ≤ 100 bytes, prefix ≤ 155). */
function splitPath(path: string): [string, string] {
  const bytes = enc.encode(path);
  if (bytes.length <= 100) return ["", path];
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== "/") continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (enc.encode(prefix).length <= 155 && enc.encode(name).length <= 100 && name !== "") {
      return [prefix, name];
    }
  }
  throw new TarFormatError(`path too long for ustar: "${path}"`);
}

function header(file: TarFile): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const [prefix, name] = splitPath(file.path);
  writeString(h, 0, 100, name);
  writeOctal(h, 100, 8, file.mode);
  writeOctal(h, 108, 8, 0); // uid
  writeOctal(h, 116, 8, 0); // gid
  writeOctal(h, 124, 12, file.data.length);
  writeOctal(h, 136, 12, 0); // mtime
  h.fill(0x20, 148, 156); // checksum placeholder: spaces
  h[156] = 0x30; // "0": regular file
  writeString(h, 257, 6, "ustar\0");
  writeString(h, 263, 2, "00");
  writeOctal(h, 329, 8, 0); // devmajor
  writeOctal(h, 337, 8, 0); // devminor
  writeString(h, 345, 155, prefix);
  let sum = 0;
  for (const b of h) sum += b;
  writeString(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/** Writes `files`, in the order given, as one ustar archive. */
export function writeTar(files: readonly TarFile[]): Uint8Array {
  let total = 2 * BLOCK;
  for (const f of files) total += BLOCK + Math.ceil(f.data.length / BLOCK) * BLOCK;
  const out = new Uint8Array(total);
  let at = 0;
  for (const f of files) {
    out.set(header(f), at);
    at += BLOCK;
    out.set(f.data, at);
    at += Math.ceil(f.data.length / BLOCK) * BLOCK;
  }
  return out;
}

function readString(buf: Uint8Array, offset: number, size: number): string {
  let end = offset;
  while (end < offset + size && buf[end] !== 0) end++;
  try {
    return dec.decode(buf.subarray(offset, end));
  } catch {
    throw new TarFormatError("a header field is not UTF-8");
  }
}

function readOctal(buf: Uint8Array, offset: number, size: number, field: string): number {
  if ((buf[offset] & 0x80) !== 0) {
    throw new TarFormatError(`binary-encoded ${field} is not supported`);
  }
  const text = readString(buf, offset, size).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`${field} is not an octal number`);
  return parseInt(text, 8);
}

/** Reads every entry of a ustar archive; stops at the first zero block. */
export function readTar(bytes: Uint8Array, options: { maxEntries: number }): TarEntry[] {
  const entries: TarEntry[] = [];
  let at = 0;
  for (;;) {
    if (at + BLOCK > bytes.length) {
      throw new TarFormatError(
        at === bytes.length ? "the archive has no end marker" : "a header is truncated",
      );
    }
    const h = bytes.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) return entries;
    if (entries.length >= options.maxEntries) {
      throw new TarFormatError(`more than ${options.maxEntries} entries`);
    }
    const stored = readOctal(h, 148, 8, "checksum");
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    if (sum !== stored) throw new TarFormatError(`header checksum mismatch at byte ${at}`);
    const magic = readString(h, 257, 6);
    if (magic !== "ustar" && magic !== "ustar ") {
      throw new TarFormatError(`not a ustar header at byte ${at}`);
    }
    const name = readString(h, 0, 100);
    const prefix = readString(h, 345, 155);
    const type = h[156] === 0 ? "0" : String.fromCharCode(h[156]);
    const size = readOctal(h, 124, 12, "size");
    const mode = readOctal(h, 100, 8, "mode");
    const linkname = readString(h, 157, 100);
    at += BLOCK;
    const hasData = type === "0" || type === "7";
    const length = hasData || ["x", "g", "L", "K"].includes(type) ? size : 0;
    if (at + length > bytes.length) throw new TarFormatError(`the data of "${name}" is truncated`);
    entries.push({
      path: prefix ? `${prefix}/${name}` : name,
      type,
      mode,
      data: hasData ? bytes.slice(at, at + length) : new Uint8Array(0),
      linkname,
    });
    at += Math.ceil(length / BLOCK) * BLOCK;
  }
}
