/**
 * Whiteouts: how a deletion is written in an upper dir so that a kernel overlayfs mount can
 * later use that dir as a layer (DESIGN §6a).
 *
 * - `chardev` (Linux): the overlayfs format, a character device 0/0 with the deleted entry's
 *   name. Deno has no mknod, so libc's `mknod` is called through `Deno.dlopen` (glibc ≥ 2.33
 *   exports it; older glibc has `__xmknod`), else `mknod PATH c 0 0` is spawned. Creating a
 *   0/0 character device needs no privilege on Linux ≥ 5.8.
 * - `marker` (macOS, other systems, or where mknod is refused): an empty regular file
 *   `.wh.<name>` beside where the entry was, as AUFS writes them. Such an upper dir cannot be
 *   an overlayfs layer; names starting `.wh.` are then reserved.
 *
 * Opaque directories (an xattr) are never written, since Deno cannot set xattrs; they are read
 * (`trusted.overlay.opaque` or `user.overlay.opaque` = `y`) when folding a subprocess's upper.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { quotePath, VfsCode, VfsError } from "./errors.ts";

/** How deletions are written in an upper dir: overlayfs char devices or `.wh.` marker files. */
export type WhiteoutFormat = "chardev" | "marker";

/** The name prefix of `marker` whiteouts. */
export const WHITEOUT_MARKER_PREFIX = ".wh.";

const S_IFCHR = 0o020000;

interface Native {
  mknod(path: string): number;
  getxattr(path: string, name: string): string | null;
}

let native: Native | null | undefined;

function cString(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`${text}\0`);
}

/** Loads libc's mknod/lgetxattr once; null off Linux, without `--allow-ffi`, or without libc. */
function loadNative(): Native | null {
  if (native !== undefined) return native;
  native = null;
  if (Deno.build.os !== "linux") return null;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  for (const name of ["libc.so.6", "libc.so"]) {
    let lib;
    try {
      lib = Deno.dlopen(name, {
        mknod: { parameters: ["buffer", "u32", "u64"], result: "i32", optional: true },
        __xmknod: { parameters: ["i32", "buffer", "u32", "buffer"], result: "i32", optional: true },
        __errno_location: { parameters: [], result: "pointer", optional: true },
        lgetxattr: {
          parameters: ["buffer", "buffer", "buffer", "usize"],
          result: "isize",
          optional: true,
        },
      });
    } catch {
      continue;
    }
    const { mknod, __xmknod, __errno_location, lgetxattr } = lib.symbols;
    if (mknod === null && __xmknod === null) continue;
    const errno = (): number => {
      const ptr = __errno_location?.() ?? null;
      return ptr === null ? -1 : new Deno.UnsafePointerView(ptr).getInt32();
    };
    const dev = new BigUint64Array(1);
    native = {
      mknod(path) {
        const result = mknod !== null
          ? mknod(cString(path), S_IFCHR, 0n)
          : __xmknod!(0, cString(path), S_IFCHR, new Uint8Array(dev.buffer));
        return result === 0 ? 0 : errno();
      },
      getxattr(path, attr) {
        if (lgetxattr === null) return null;
        const buf = new Uint8Array(64);
        const n = Number(lgetxattr(cString(path), cString(attr), buf, BigInt(buf.length)));
        return n < 0 ? null : new TextDecoder().decode(buf.subarray(0, n));
      },
    };
    return native;
  }
  return null;
}

/** True when `info` (from `lstat`) is an overlayfs whiteout: a character device 0/0. */
export function isWhiteoutInfo(info: Deno.FileInfo): boolean {
  return info.isCharDevice === true && info.rdev === 0;
}

/** The format this system writes by default: `chardev` on Linux, `marker` elsewhere. */
export function defaultWhiteoutFormat(): WhiteoutFormat {
  return Deno.build.os === "linux" ? "chardev" : "marker";
}

/** Where the whiteout of the entry at `path` lives in `format`. */
export function whiteoutPath(path: string, format: WhiteoutFormat): string {
  return format === "chardev" ? path : join(dirname(path), WHITEOUT_MARKER_PREFIX + basename(path));
}

/**
 * Creates the whiteout of the entry at host path `path` (nothing may exist at the whiteout's
 * own path). Throws `VFS_WHITEOUT_FAILED` naming the path when the system refuses.
 */
export async function makeWhiteout(path: string, format: WhiteoutFormat): Promise<void> {
  if (format === "marker") {
    const marker = whiteoutPath(path, format);
    try {
      await Deno.writeFile(marker, new Uint8Array(0), { createNew: true, mode: 0o600 });
      return;
    } catch (cause) {
      throw failed(marker, (cause as Error).message, cause);
    }
  }
  const lib = loadNative();
  if (lib !== null) {
    const errno = lib.mknod(path);
    if (errno === 0) return;
    throw failed(path, `mknod failed with errno ${errno}`);
  }
  await spawnMknod(path);
}

async function spawnMknod(path: string): Promise<void> {
  if (Deno.permissions.querySync({ name: "run", command: "mknod" }).state !== "granted") {
    throw failed(path, "neither --allow-ffi (libc mknod) nor --allow-run=mknod is granted");
  }
  try {
    const out = await new Deno.Command("mknod", {
      args: [path, "c", "0", "0"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    if (out.success) return;
    throw new Error(new TextDecoder().decode(out.stderr).trim() || `exit code ${out.code}`);
  } catch (cause) {
    throw failed(path, `mknod c 0 0 failed: ${(cause as Error).message}`, cause);
  }
}

function failed(path: string, detail: string, cause?: unknown): VfsError {
  return new VfsError(
    VfsCode.VFS_WHITEOUT_FAILED,
    `Cannot create whiteout ${quotePath(path)}: ${detail}`,
    { data: { path }, cause },
  );
}

/**
 * Finds the format `dir` supports: `chardev` when a 0/0 device can be made there (Linux),
 * else `marker`. Leaves nothing behind.
 */
export async function probeWhiteoutFormat(dir: string): Promise<WhiteoutFormat> {
  if (defaultWhiteoutFormat() === "marker") return "marker";
  const probe = join(dir, `.whiteout-probe-${crypto.randomUUID()}`);
  try {
    await makeWhiteout(probe, "chardev");
    const ok = isWhiteoutInfo(await Deno.lstat(probe));
    return ok ? "chardev" : "marker";
  } catch {
    return "marker";
  } finally {
    await Deno.remove(probe).catch(() => {});
  }
}

/**
 * True when the directory at host path `path` is marked opaque by a kernel overlayfs
 * (`trusted.overlay.opaque` or `user.overlay.opaque` = `y`). False when xattrs cannot be read.
 */
export function isOpaqueDir(path: string): boolean {
  const lib = loadNative();
  if (lib === null) return false;
  return lib.getxattr(path, "user.overlay.opaque") === "y" ||
    lib.getxattr(path, "trusted.overlay.opaque") === "y";
}
