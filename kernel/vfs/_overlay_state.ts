/**
 * The overlay's sidecar, `<session>/state.json`, outside `upper/` so a kernel overlayfs
 * never sees it: which workspace the overlay belongs to, how its whiteouts are written, and
 * the base of every workspace entry the upper layer shadows. Written whole with
 * `atomicWrite` (0600) before the upper layer changes, so it survives daemon restarts.
 *
 * ```json
 * { "version": 1, "lower": "/abs/workspace", "whiteout": "chardev", "created_at": 1700000000000,
 *   "bases": { "src/a.ts": { "kind": "file", "size": 12, "mtime": 1700000000000, "ino": 42,
 *                            "hash": "<blake3 hex>" } } }
 * ```
 *
 * @module
 */
import { atomicWrite } from "../home/mod.ts";
import { VfsCode, VfsError } from "./errors.ts";
import { type LowerBase, parseBase } from "./lower_base.ts";
import type { WhiteoutFormat } from "./whiteout.ts";

/** The sidecar's format version. */
export const STATE_VERSION = 1;

/** The sidecar of one session overlay. */
export class OverlayState {
  /** Host path of `state.json`. */
  readonly path: string;
  /** Real path of the workspace this overlay belongs to. */
  readonly lower: string;
  /** How whiteouts are written in `upper/`. */
  readonly whiteout: WhiteoutFormat;
  /** When the overlay was first opened (ms since the epoch, from the kernel's clock). */
  readonly createdAt: number;
  #bases: Map<string, LowerBase>;
  #dirty = false;

  private constructor(
    path: string,
    fields: { lower: string; whiteout: WhiteoutFormat; createdAt: number },
    bases: Map<string, LowerBase>,
  ) {
    this.path = path;
    this.lower = fields.lower;
    this.whiteout = fields.whiteout;
    this.createdAt = fields.createdAt;
    this.#bases = bases;
  }

  /** A fresh, unsaved state. */
  static create(
    path: string,
    fields: { lower: string; whiteout: WhiteoutFormat; createdAt: number },
  ): OverlayState {
    const state = new OverlayState(path, fields, new Map());
    state.#dirty = true;
    return state;
  }

  /** Reads `path`; null when it does not exist; `VFS_STATE_INVALID` naming the field if bad. */
  static async load(path: string): Promise<OverlayState | null> {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw invalid(path, "file", `cannot read it: ${(err as Error).message}`, err);
    }
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw invalid(path, "file", `it is not JSON: ${(err as Error).message}`, err);
    }
    if (typeof raw !== "object" || raw === null) throw invalid(path, "file", "it is not an object");
    if (raw.version !== STATE_VERSION) {
      throw invalid(
        path,
        "version",
        `version ${JSON.stringify(raw.version)} is not ${STATE_VERSION}`,
      );
    }
    if (typeof raw.lower !== "string") throw invalid(path, "lower", "it must be a string");
    if (raw.whiteout !== "chardev" && raw.whiteout !== "marker") {
      throw invalid(
        path,
        "whiteout",
        `${JSON.stringify(raw.whiteout)} is not "chardev" or "marker"`,
      );
    }
    if (typeof raw.created_at !== "number") {
      throw invalid(path, "created_at", "it must be a number");
    }
    const bases = new Map<string, LowerBase>();
    const rawBases = raw.bases ?? {};
    if (typeof rawBases !== "object" || rawBases === null) {
      throw invalid(path, "bases", "it must be an object");
    }
    for (const [key, value] of Object.entries(rawBases)) {
      const base = parseBase(value);
      if (base === null) throw invalid(path, `bases.${key}`, "it is not a valid base");
      bases.set(key, base);
    }
    return new OverlayState(
      path,
      { lower: raw.lower, whiteout: raw.whiteout, createdAt: raw.created_at },
      bases,
    );
  }

  /** The base recorded for canonical `path`. */
  get(path: string): LowerBase | undefined {
    return this.#bases.get(path);
  }

  /** True when a base is recorded for `path`. */
  has(path: string): boolean {
    return this.#bases.has(path);
  }

  /** Records the base of `path`. */
  set(path: string, base: LowerBase): void {
    this.#bases.set(path, base);
    this.#dirty = true;
  }

  /** Forgets `path`'s base. */
  delete(path: string): void {
    if (this.#bases.delete(path)) this.#dirty = true;
  }

  /** Forgets the bases of everything strictly below `path`. */
  deleteBelow(path: string): void {
    const prefix = path === "" ? "" : `${path}/`;
    for (const key of [...this.#bases.keys()]) {
      if (key !== path && key.startsWith(prefix)) this.delete(key);
    }
  }

  /** Forgets every base. */
  clear(): void {
    if (this.#bases.size > 0) this.#dirty = true;
    this.#bases.clear();
  }

  /** The paths that have a base, sorted. */
  paths(): string[] {
    return [...this.#bases.keys()].sort();
  }

  /** How many bases are recorded. */
  get size(): number {
    return this.#bases.size;
  }

  /** Writes the sidecar when something changed since the last save. */
  async save(): Promise<void> {
    if (!this.#dirty) return;
    const body = {
      version: STATE_VERSION,
      lower: this.lower,
      whiteout: this.whiteout,
      created_at: this.createdAt,
      bases: Object.fromEntries([...this.#bases].sort(([a], [b]) => (a < b ? -1 : 1))),
    };
    await atomicWrite(this.path, `${JSON.stringify(body, null, 1)}\n`, { mode: 0o600 });
    this.#dirty = false;
  }
}

function invalid(path: string, field: string, detail: string, cause?: unknown): VfsError {
  return new VfsError(
    VfsCode.VFS_STATE_INVALID,
    `Overlay state ${
      JSON.stringify(path)
    } field "${field}" is invalid: ${detail}; discard the overlay or restore the file`,
    { data: { path, field }, cause },
  );
}
