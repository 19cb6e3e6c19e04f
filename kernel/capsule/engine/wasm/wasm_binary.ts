/**
 * Reads a core WebAssembly binary far enough to judge it before compiling: its imports and
 * exports with their function types, its memories and tables; and rewrites the memory and
 * table maxima so the host's hard limits hold whatever the module declares (V8 has no
 * per-instance memory limit, so the limit has to be in the module itself).
 *
 * Only the sections that matter are decoded (type, import, function, table, memory, export,
 * start); every other section is copied byte for byte.
 *
 * @module
 */
import { EngineCode, EngineError } from "./errors.ts";

/** The size of a WebAssembly page. */
export const WASM_PAGE_BYTES = 65_536;

/** The hard memory limit per instance: 1024 pages, 64 MiB. */
export const MAX_MEMORY_PAGES = 1024;

/** The default limit on a table's elements (V8 allows 10 million, ~80 MB of funcrefs). */
export const DEFAULT_MAX_TABLE_ELEMENTS = 100_000;

/** A value type as far as the engine cares (every reference type is `"ref"` unless basic). */
export type WasmValType = "i32" | "i64" | "f32" | "f64" | "v128" | "funcref" | "externref" | "ref";

/** A function type. */
export interface WasmFuncType {
  /** Parameter types in order. */
  params: WasmValType[];
  /** Result types in order. */
  results: WasmValType[];
}

/** The limits of a memory or table. */
export interface WasmLimits {
  /** Minimum size (pages or elements). */
  min: number;
  /** Maximum size, when declared. */
  max?: number;
  /** A shared (threads) memory. */
  shared: boolean;
  /** A 64-bit memory or table. */
  is64: boolean;
}

/** What kind of thing is imported or exported. */
export type WasmExternKind = "function" | "table" | "memory" | "global" | "tag";

/** One import. */
export interface WasmImport {
  /** The module name (`astrid` for the host ABI). */
  module: string;
  /** The field name (`clock_ms`). */
  name: string;
  /** What is imported. */
  kind: WasmExternKind;
  /** The function type, for a function import. */
  type?: WasmFuncType;
  /** The limits, for a memory or table import. */
  limits?: WasmLimits;
}

/** One export. */
export interface WasmExport {
  /** The export name. */
  name: string;
  /** What is exported. */
  kind: WasmExternKind;
  /** The index in its index space. */
  index: number;
  /** The function type, for a function export. */
  type?: WasmFuncType;
}

/** What {@link parseWasmBinary} learns about a module. */
export interface WasmBinaryInfo {
  /** Every import, in order. */
  imports: WasmImport[];
  /** Every export, in order. */
  exports: WasmExport[];
  /** Memories defined by the module (not imported), in order. */
  memories: WasmLimits[];
  /** Tables defined by the module (not imported), in order. */
  tables: WasmLimits[];
  /** True when the module has a start function (it runs at instantiation). */
  hasStart: boolean;
}

/** Labels errors; limits to enforce. */
export interface LimitWasmOptions {
  /** The capsule name for messages (`Cannot load capsule "x": …`). */
  capsule?: string;
  /** Memory limit in pages; at most {@link MAX_MEMORY_PAGES}. */
  maxMemoryPages?: number;
  /** Table limit in elements; default {@link DEFAULT_MAX_TABLE_ELEMENTS}. */
  maxTableElements?: number;
}

/** The result of {@link limitWasmBinary}: the rewritten bytes and what they declare. */
export interface LimitedWasm {
  /** The module with memory and table maxima rewritten (the input when nothing changed). */
  bytes: Uint8Array;
  /** The module's imports, exports, memories (with their new maxima) and tables. */
  info: WasmBinaryInfo;
}

const KINDS: WasmExternKind[] = ["function", "table", "memory", "global", "tag"];

const SECTION_TYPE = 1;
const SECTION_IMPORT = 2;
const SECTION_FUNCTION = 3;
const SECTION_TABLE = 4;
const SECTION_MEMORY = 5;
const SECTION_EXPORT = 7;
const SECTION_START = 8;
const LAST_SECTION_ID = 13;

interface Section {
  id: number;
  /** Offset of the section id byte. */
  start: number;
  /** Offset of the content. */
  content: number;
  /** Offset just past the content. */
  end: number;
}

/** Reads LEB128 and bytes from a module, throwing located `WASM_LOAD` errors. */
class Reader {
  readonly bytes: Uint8Array;
  at: number;
  readonly end: number;
  readonly #label: string;

  constructor(bytes: Uint8Array, label: string, at = 0, end = bytes.length) {
    this.bytes = bytes;
    this.at = at;
    this.end = end;
    this.#label = label;
  }

  fail(what: string): never {
    throw new EngineError(
      EngineCode.WASM_LOAD,
      `${this.#label}: malformed wasm binary at byte ${this.at}: ${what}`,
      { data: { reason: what } },
    );
  }

  byte(): number {
    if (this.at >= this.end) this.fail("unexpected end of section");
    return this.bytes[this.at++];
  }

  u32(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffff_ffff) this.fail("LEB128 value exceeds 32 bits");
        return result;
      }
      shift += 7;
    }
    this.fail("LEB128 value longer than 5 bytes");
  }

  /** A u64 LEB (memory64 limits); values beyond 2^53 saturate, which only matters for refusal. */
  u64(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
    this.fail("LEB128 value longer than 10 bytes");
  }

  /** A signed LEB of up to 33 bits (heap types); only skipped. */
  s33(): void {
    for (let i = 0; i < 5; i++) {
      if ((this.byte() & 0x80) === 0) return;
    }
    this.fail("LEB128 value longer than 5 bytes");
  }

  name(): string {
    const len = this.u32();
    if (len > this.end - this.at) this.fail(`name of ${len} bytes runs past the end`);
    const raw = this.bytes.subarray(this.at, this.at + len);
    this.at += len;
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(raw);
    } catch {
      this.fail("name is not valid UTF-8");
    }
  }

  valType(): WasmValType {
    const b = this.byte();
    switch (b) {
      case 0x7f:
        return "i32";
      case 0x7e:
        return "i64";
      case 0x7d:
        return "f32";
      case 0x7c:
        return "f64";
      case 0x7b:
        return "v128";
      case 0x70:
        return "funcref";
      case 0x6f:
        return "externref";
      case 0x63:
      case 0x64:
        this.s33();
        return "ref";
    }
    if (b >= 0x65 && b <= 0x74) return "ref"; // GC/exception abbreviations (anyref, exnref, …)
    this.at--;
    this.fail(`unknown value type 0x${b.toString(16)}`);
  }

  limits(kind: "memory" | "table"): WasmLimits {
    const flags = this.byte();
    const known = kind === "memory" ? 0x07 : 0x05;
    if ((flags & ~known) !== 0) {
      this.at--;
      this.fail(`unsupported ${kind} limits flags 0x${flags.toString(16)}`);
    }
    const is64 = (flags & 0x04) !== 0;
    const shared = (flags & 0x02) !== 0;
    const min = is64 ? this.u64() : this.u32();
    const max = (flags & 0x01) !== 0 ? (is64 ? this.u64() : this.u32()) : undefined;
    return max === undefined ? { min, shared, is64 } : { min, max, shared, is64 };
  }

  tableType(): WasmLimits {
    this.valType();
    return this.limits("table");
  }
}

function labelOf(capsule: string | undefined): string {
  return capsule === undefined ? "Cannot load wasm module" : `Cannot load capsule "${capsule}"`;
}

function readSections(r: Reader): Section[] {
  if (r.bytes.length < 8) r.fail("shorter than the 8-byte header");
  const magic = r.bytes[0] === 0 && r.bytes[1] === 0x61 && r.bytes[2] === 0x73 &&
    r.bytes[3] === 0x6d;
  if (!magic) r.fail("missing the \\0asm magic number");
  const version = new DataView(r.bytes.buffer, r.bytes.byteOffset + 4, 4).getUint32(0, true);
  if (version !== 1) {
    r.at = 4;
    r.fail(
      version === 0x1000d
        ? "this is a component, not a core module: capsules are core WebAssembly modules"
        : `unsupported binary version ${version}, expected 1`,
    );
  }
  r.at = 8;
  const sections: Section[] = [];
  while (r.at < r.end) {
    const start = r.at;
    const id = r.byte();
    if (id > LAST_SECTION_ID) {
      r.at = start;
      r.fail(`unknown section id ${id}`);
    }
    const size = r.u32();
    const content = r.at;
    if (size > r.end - content) r.fail(`section ${id} of ${size} bytes runs past the end`);
    r.at = content + size;
    sections.push({ id, start, content, end: content + size });
  }
  return sections;
}

/**
 * Decodes the imports, exports, memories, tables and start of a core wasm module.
 *
 * Throws `WASM_LOAD` for a malformed binary, a component, or a type encoding outside the core
 * and reference-types specs (GC recursive types).
 */
export function parseWasmBinary(
  bytes: Uint8Array,
  options: { capsule?: string } = {},
): WasmBinaryInfo {
  const label = labelOf(options.capsule);
  const r = new Reader(bytes, label);
  const sections = readSections(r);
  const types: WasmFuncType[] = [];
  const funcTypes: (WasmFuncType | undefined)[] = [];
  const info: WasmBinaryInfo = {
    imports: [],
    exports: [],
    memories: [],
    tables: [],
    hasStart: false,
  };

  for (const s of sections) {
    const sr = new Reader(bytes, label, s.content, s.end);
    switch (s.id) {
      case SECTION_TYPE: {
        const count = sr.u32();
        for (let i = 0; i < count; i++) {
          const form = sr.byte();
          if (form !== 0x60) {
            sr.at--;
            sr.fail(`type ${i} has form 0x${form.toString(16)}; only function types are supported`);
          }
          const params = Array.from({ length: sr.u32() }, () => sr.valType());
          const results = Array.from({ length: sr.u32() }, () => sr.valType());
          types.push({ params, results });
        }
        break;
      }
      case SECTION_IMPORT: {
        const count = sr.u32();
        for (let i = 0; i < count; i++) {
          const module = sr.name();
          const name = sr.name();
          const kindByte = sr.byte();
          const kind = KINDS[kindByte];
          if (kind === undefined) {
            sr.fail(`import "${module}.${name}" has unknown kind ${kindByte}`);
          }
          const imp: WasmImport = { module, name, kind };
          if (kind === "function") {
            imp.type = types[sr.u32()];
            funcTypes.push(imp.type);
          } else if (kind === "table") {
            imp.limits = sr.tableType();
          } else if (kind === "memory") {
            imp.limits = sr.limits("memory");
          } else if (kind === "global") {
            sr.valType();
            sr.byte();
          } else {
            sr.byte();
            sr.u32();
          }
          info.imports.push(imp);
        }
        break;
      }
      case SECTION_FUNCTION: {
        const count = sr.u32();
        for (let i = 0; i < count; i++) funcTypes.push(types[sr.u32()]);
        break;
      }
      case SECTION_TABLE: {
        const count = sr.u32();
        for (let i = 0; i < count; i++) {
          if (sr.bytes[sr.at] === 0x40) {
            sr.fail("tables with initialiser expressions are not supported");
          }
          info.tables.push(sr.tableType());
        }
        break;
      }
      case SECTION_MEMORY: {
        const count = sr.u32();
        for (let i = 0; i < count; i++) info.memories.push(sr.limits("memory"));
        break;
      }
      case SECTION_EXPORT: {
        const count = sr.u32();
        for (let i = 0; i < count; i++) {
          const name = sr.name();
          const kindByte = sr.byte();
          const kind = KINDS[kindByte];
          if (kind === undefined) sr.fail(`export "${name}" has unknown kind ${kindByte}`);
          const index = sr.u32();
          const exp: WasmExport = { name, kind, index };
          if (kind === "function") exp.type = funcTypes[index];
          info.exports.push(exp);
        }
        break;
      }
      case SECTION_START:
        info.hasStart = true;
        break;
    }
  }
  return info;
}

function encodeU32Leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function encodeLimits(l: { min: number; max: number }): number[] {
  return [0x01, ...encodeU32Leb(l.min), ...encodeU32Leb(l.max)];
}

function mib(pages: number): string {
  return `${(pages * WASM_PAGE_BYTES) / (1024 * 1024)} MiB`;
}

/**
 * Enforces the memory and table limits on a module: refuses what cannot fit and rewrites each
 * defined memory's maximum to `min(declared, limit)` (set when absent) and each defined
 * table's likewise, so `memory.grow` past the limit returns -1 in the guest.
 *
 * Refuses (`WASM_MEMORY_LIMIT`): a memory minimum above the limit, a shared or 64-bit memory,
 * more than one memory, a table minimum above its limit. An imported memory is returned in
 * `info` for the caller to judge (the engine allows only `astrid.memory`, which it supplies
 * with the limit as maximum).
 */
export function limitWasmBinary(bytes: Uint8Array, options: LimitWasmOptions = {}): LimitedWasm {
  const label = labelOf(options.capsule);
  const maxPages = options.maxMemoryPages ?? MAX_MEMORY_PAGES;
  const maxTable = options.maxTableElements ?? DEFAULT_MAX_TABLE_ELEMENTS;
  if (!Number.isInteger(maxPages) || maxPages < 1 || maxPages > MAX_MEMORY_PAGES) {
    throw new EngineError(
      EngineCode.WASM_INVALID_OPTION,
      `Option "maxMemoryPages" is "${maxPages}": expected 1 to ${MAX_MEMORY_PAGES} pages`,
      { data: { field: "maxMemoryPages", value: maxPages, limit: MAX_MEMORY_PAGES } },
    );
  }
  const info = parseWasmBinary(bytes, { capsule: options.capsule });
  const refuse = (what: string, value: number, limit: number): never => {
    throw new EngineError(EngineCode.WASM_MEMORY_LIMIT, `${label}: ${what}`, {
      data: { capsule: options.capsule, reason: what, value, limit },
    });
  };

  const importedMemories = info.imports.filter((i) => i.kind === "memory");
  const allMemories = [...importedMemories.map((i) => i.limits!), ...info.memories];
  if (allMemories.length > 1) {
    refuse(`the module has ${allMemories.length} memories, the limit is 1`, allMemories.length, 1);
  }
  for (const m of allMemories) {
    if (m.shared) refuse("a shared memory is not allowed", 1, 0);
    if (m.is64) refuse("a 64-bit memory is not allowed", 1, 0);
    if (m.min > maxPages) {
      refuse(
        `memory minimum ${m.min} pages (${mib(m.min)}) exceeds the limit of ${maxPages} pages ` +
          `(${mib(maxPages)})`,
        m.min,
        maxPages,
      );
    }
  }
  for (
    const t of [
      ...info.imports.filter((i) => i.kind === "table").map((i) => i.limits!),
      ...info.tables,
    ]
  ) {
    if (t.is64) refuse("a 64-bit table is not allowed", 1, 0);
    if (t.min > maxTable) {
      refuse(
        `table minimum ${t.min} elements exceeds the limit of ${maxTable} elements`,
        t.min,
        maxTable,
      );
    }
  }

  const needsMemory = info.memories.some((m) => m.max === undefined || m.max > maxPages);
  const needsTable = info.tables.some((t) => t.max === undefined || t.max > maxTable);
  if (!needsMemory && !needsTable) return { bytes, info };

  const r = new Reader(bytes, label);
  const chunks: Uint8Array[] = [];
  let copiedTo = 0;
  const replace = (s: Section, id: number, content: number[]) => {
    chunks.push(bytes.subarray(copiedTo, s.start));
    chunks.push(Uint8Array.from([id, ...encodeU32Leb(content.length), ...content]));
    copiedTo = s.end;
  };
  for (const s of readSections(r)) {
    if (s.id === SECTION_MEMORY && needsMemory) {
      const content = [...encodeU32Leb(info.memories.length)];
      for (const m of info.memories) {
        m.max = Math.min(m.max ?? maxPages, maxPages);
        content.push(...encodeLimits({ min: m.min, max: m.max }));
      }
      replace(s, SECTION_MEMORY, content);
    } else if (s.id === SECTION_TABLE && needsTable) {
      const sr = new Reader(bytes, label, s.content, s.end);
      const count = sr.u32();
      const content = [...encodeU32Leb(count)];
      for (let i = 0; i < count; i++) {
        const refStart = sr.at;
        sr.valType();
        const refBytes = Array.from(bytes.subarray(refStart, sr.at));
        const t = info.tables[i];
        sr.limits("table");
        t.max = Math.min(t.max ?? maxTable, maxTable);
        content.push(...refBytes, ...encodeLimits({ min: t.min, max: t.max }));
      }
      replace(s, SECTION_TABLE, content);
    }
  }
  chunks.push(bytes.subarray(copiedTo));
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return { bytes: out, info };
}

/** Formats a function type as `(i32, i32) -> i64` for messages. */
export function formatFuncType(type: WasmFuncType | undefined): string {
  if (type === undefined) return "(unknown type)";
  const results = type.results.length === 1 ? type.results[0] : `(${type.results.join(", ")})`;
  return `(${type.params.join(", ")}) -> ${results}`;
}

/** True when `type` is exactly `params -> results`. */
export function isFuncType(
  type: WasmFuncType | undefined,
  params: readonly WasmValType[],
  results: readonly WasmValType[],
): boolean {
  return type !== undefined && type.params.length === params.length &&
    type.results.length === results.length && type.params.every((p, i) => p === params[i]) &&
    type.results.every((p, i) => p === results[i]);
}
