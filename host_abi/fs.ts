/**
 * The `fs_*` host functions: files over the principal's session VFS (`workspace://` is the
 * session overlay, `home://` the principal's home, `global://` the shared directory; a path
 * without a scheme is `workspace://`).
 *
 * Every function reads or writes only through `call.services.vfs()`. `parse` routes the path
 * to its canonical URI (symlinks resolved inside the root; `..`, absolute paths outside the
 * root and escaping symlinks are refused there), the gate checks that URI against `fs_read`
 * (exists, read_file, readdir, stat) or `fs_write` (write_file, mkdir, unlink), and `run` asks
 * the security pipeline (`fs.read`, `fs.write`, `fs.delete` with the absolute canonical host
 * path and `insideWorkspace`) before touching anything. Limits (`fsMaxFileBytes`,
 * `fsMaxDirEntries`) are checked first.
 *
 * Fails with: `INVALID_ARGUMENT` (malformed path, wrong kind), `DENIED` (manifest, pipeline,
 * a path leaving its root, a read-only scheme), `NOT_FOUND`, `CONFLICT` (exists, not empty),
 * `LIMIT_EXCEEDED`, `IO`.
 *
 * @module
 */
import { hasCode } from "../kernel/errors.ts";
import { type RoutedVfsPath, VfsCode, VfsError } from "../kernel/vfs/mod.ts";
import type { RequestReader } from "./encoding.ts";
import {
  actionBase,
  authorizeOrThrow,
  defineHostFunction,
  type HostCallContext,
  type HostFunctionRow,
} from "./host_function.ts";
import { HostCallError, HostStatus } from "./status.ts";

/** A path routed for one call: the canonical URI and the absolute host path. */
interface FsTarget {
  /** The routed path (filesystem, canonical root-relative path, kind). */
  routed: RoutedVfsPath;
  /** The absolute canonical host path (what sensitive actions and the policy see). */
  hostPath: string;
}

const VFS_STATUS: Readonly<Record<string, HostStatus>> = {
  [VfsCode.VFS_PATH_INVALID]: HostStatus.INVALID_ARGUMENT,
  [VfsCode.VFS_PATH_TOO_LONG]: HostStatus.INVALID_ARGUMENT,
  [VfsCode.VFS_NAME_TOO_LONG]: HostStatus.INVALID_ARGUMENT,
  [VfsCode.VFS_SCHEME_UNKNOWN]: HostStatus.INVALID_ARGUMENT,
  [VfsCode.VFS_SYMLINK_LOOP]: HostStatus.INVALID_ARGUMENT,
  [VfsCode.VFS_CROSS_SCHEME]: HostStatus.INVALID_ARGUMENT,
  [VfsCode.VFS_NOT_A_DIRECTORY]: HostStatus.INVALID_ARGUMENT,
  [VfsCode.VFS_IS_A_DIRECTORY]: HostStatus.INVALID_ARGUMENT,
  [VfsCode.VFS_NOT_A_FILE]: HostStatus.INVALID_ARGUMENT,
  [VfsCode.VFS_PATH_ESCAPE]: HostStatus.DENIED,
  [VfsCode.VFS_SYMLINK_ESCAPE]: HostStatus.DENIED,
  [VfsCode.VFS_PATH_DENIED]: HostStatus.DENIED,
  [VfsCode.VFS_READ_ONLY]: HostStatus.DENIED,
  [VfsCode.VFS_NOT_FOUND]: HostStatus.NOT_FOUND,
  [VfsCode.VFS_EXISTS]: HostStatus.CONFLICT,
  [VfsCode.VFS_NOT_EMPTY]: HostStatus.CONFLICT,
  [VfsCode.VFS_CONFLICT]: HostStatus.CONFLICT,
  [VfsCode.VFS_TOO_LARGE]: HostStatus.LIMIT_EXCEEDED,
};

/** Codes whose message may name host details: the guest gets a generic line instead. */
const OPAQUE = new Set<string>([
  VfsCode.VFS_IO,
  VfsCode.VFS_STATE_INVALID,
  VfsCode.VFS_WHITEOUT_FAILED,
]);

/** Turns a `VfsError` into the `HostCallError` the guest sees; other errors pass through. */
export function mapVfsError(err: unknown, path: string): unknown {
  if (!(err instanceof VfsError)) return err;
  if (OPAQUE.has(err.code)) {
    return new HostCallError(
      HostStatus.IO,
      `I/O error on ${JSON.stringify(path)}: ${err.code}`,
      { cause: err },
    );
  }
  const status = VFS_STATUS[err.code] ?? HostStatus.IO;
  return new HostCallError(status, err.message, { cause: err });
}

/** Runs `op`, mapping VFS errors for `path`. */
async function vfsOp<T>(path: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw mapVfsError(err, path);
  }
}

/** Routes `path` through the principal's session VFS to its canonical URI and host path. */
async function target(
  call: HostCallContext,
  path: string,
  options: { followFinal?: boolean } = {},
): Promise<FsTarget> {
  const vfs = await call.services.vfs();
  const routed = await vfsOp(path, () => vfs.router.route(path, options));
  const root = vfs.roots[routed.scheme];
  if (root === undefined) {
    throw new HostCallError(
      HostStatus.UNSUPPORTED,
      `Scheme "${routed.scheme}://" has no host root in this kernel`,
    );
  }
  const hostPath = routed.path === "" ? root : `${root.replace(/\/+$/, "")}/${routed.path}`;
  return { routed, hostPath };
}

/** Asks the pipeline about `kind` on `t`; throws unless allowed. */
async function authorizeFs(
  call: HostCallContext,
  kind: "fs.read" | "fs.write" | "fs.delete",
  t: FsTarget,
): Promise<void> {
  await authorizeOrThrow(call, {
    ...actionBase(call),
    kind,
    path: t.hostPath,
    insideWorkspace: t.routed.scheme === "workspace",
  });
}

function readPath(req: RequestReader): string {
  const path = req.string("path");
  return path;
}

const json = (value: unknown) => JSON.stringify(value);

/** Parses a request whose one field is the path into its routed, canonical target. */
async function pathOnly(req: RequestReader, call: HostCallContext): Promise<FsTarget> {
  const path = readPath(req);
  req.end();
  return await target(call, path);
}

/** `fs_exists(path)` → JSON `true`/`false`. */
export const fsExists = defineHostFunction<FsTarget>({
  name: "fs_exists",
  subsystem: "fs",
  doc: "Whether a path exists (symlinks followed)",
  capabilities: ["fs_read"],
  parse: pathOnly,
  gate: (t) => ({ capability: "fs_read", target: t.routed.uri }),
  run: async (t, call) => {
    await authorizeFs(call, "fs.read", t);
    return json(await vfsOp(t.routed.uri, () => t.routed.vfs.exists(t.routed.uri)));
  },
});

/** `fs_read_file(path)` → the file's bytes. */
export const fsReadFile = defineHostFunction<FsTarget>({
  name: "fs_read_file",
  subsystem: "fs",
  doc: "Reads a whole file",
  capabilities: ["fs_read"],
  parse: pathOnly,
  gate: (t) => ({ capability: "fs_read", target: t.routed.uri }),
  run: async (t, call) => {
    await authorizeFs(call, "fs.read", t);
    const max = call.limits.fsMaxFileBytes;
    try {
      return await t.routed.vfs.readFile(t.routed.uri, { maxBytes: max });
    } catch (err) {
      if (hasCode(err, VfsCode.VFS_TOO_LARGE)) {
        const size = (err as VfsError).data?.size;
        throw new HostCallError(
          HostStatus.LIMIT_EXCEEDED,
          `File ${JSON.stringify(t.routed.uri)} is too large to read: ${size} bytes (limit ${max})`,
        );
      }
      throw mapVfsError(err, t.routed.uri);
    }
  },
});

/** `fs_write_file(path, data)` → empty; creates or replaces the file (its parent must exist). */
export const fsWriteFile = defineHostFunction<FsTarget & { data: Uint8Array }>({
  name: "fs_write_file",
  subsystem: "fs",
  doc: "Creates or replaces a file (workspace writes land in the session overlay)",
  capabilities: ["fs_write"],
  parse: async (req, call) => {
    const path = readPath(req);
    const data = req.bytes("data");
    req.end();
    const max = call.limits.fsMaxFileBytes;
    if (data.length > max) {
      throw new HostCallError(
        HostStatus.LIMIT_EXCEEDED,
        `Field "data" is too large: ${data.length} bytes (limit ${max})`,
        { field: "data" },
      );
    }
    return { ...await target(call, path), data };
  },
  gate: (t) => ({ capability: "fs_write", target: t.routed.uri }),
  run: async (t, call) => {
    await authorizeFs(call, "fs.write", t);
    await vfsOp(t.routed.uri, () => t.routed.vfs.writeFile(t.routed.uri, t.data));
  },
});

/** `fs_mkdir(path)` → empty; creates the directory and missing parents. */
export const fsMkdir = defineHostFunction<FsTarget>({
  name: "fs_mkdir",
  subsystem: "fs",
  doc: "Creates a directory and its missing parents (an existing directory is fine)",
  capabilities: ["fs_write"],
  parse: pathOnly,
  gate: (t) => ({ capability: "fs_write", target: t.routed.uri }),
  run: async (t, call) => {
    await authorizeFs(call, "fs.write", t);
    await vfsOp(t.routed.uri, () => t.routed.vfs.mkdir(t.routed.uri, { recursive: true }));
  },
});

/** `fs_readdir(path)` → JSON `[{"name":"a.ts","kind":"file"}, …]`, sorted by name. */
export const fsReaddir = defineHostFunction<FsTarget>({
  name: "fs_readdir",
  subsystem: "fs",
  doc: "Lists a directory",
  capabilities: ["fs_read"],
  parse: pathOnly,
  gate: (t) => ({ capability: "fs_read", target: t.routed.uri }),
  run: async (t, call) => {
    await authorizeFs(call, "fs.read", t);
    const entries = await vfsOp(t.routed.uri, () => t.routed.vfs.readdir(t.routed.uri));
    const max = call.limits.fsMaxDirEntries;
    if (entries.length > max) {
      throw new HostCallError(
        HostStatus.LIMIT_EXCEEDED,
        `Directory ${
          JSON.stringify(t.routed.uri)
        } has too many entries: ${entries.length} (limit ${max})`,
      );
    }
    return json(entries.map((e) => ({ name: e.name, kind: e.kind })));
  },
});

/** `fs_stat(path)` → JSON `{"kind":"file","size":3,"mtime":1700000000000}`. */
export const fsStat = defineHostFunction<FsTarget>({
  name: "fs_stat",
  subsystem: "fs",
  doc: "Kind, size and modification time of a path (symlinks followed)",
  capabilities: ["fs_read"],
  parse: pathOnly,
  gate: (t) => ({ capability: "fs_read", target: t.routed.uri }),
  run: async (t, call) => {
    await authorizeFs(call, "fs.read", t);
    const stat = await vfsOp(t.routed.uri, () => t.routed.vfs.stat(t.routed.uri));
    return json({ kind: stat.kind, size: stat.size, mtime: stat.mtime });
  },
});

/** `fs_unlink(path)` → empty; removes a file, a symlink (not followed) or an empty directory. */
export const fsUnlink = defineHostFunction<FsTarget>({
  name: "fs_unlink",
  subsystem: "fs",
  doc: "Removes a file, a symlink (not followed) or an empty directory",
  capabilities: ["fs_write"],
  parse: async (req, call) => {
    const path = readPath(req);
    req.end();
    return await target(call, path, { followFinal: false });
  },
  gate: (t) => ({ capability: "fs_write", target: t.routed.uri }),
  run: async (t, call) => {
    if (t.routed.path === "") {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Cannot remove ${JSON.stringify(t.routed.uri)}: it is the root of its scheme`,
      );
    }
    if (t.routed.kind === null) {
      throw new HostCallError(
        HostStatus.NOT_FOUND,
        `Path ${JSON.stringify(t.routed.uri)} does not exist`,
      );
    }
    await authorizeFs(call, "fs.delete", t);
    await vfsOp(
      t.routed.uri,
      () =>
        t.routed.kind === "dir"
          ? t.routed.vfs.rmdir(t.routed.uri)
          : t.routed.vfs.unlink(t.routed.uri),
    );
  },
});

/** The `fs_*` rows, in table order. */
export const FS_FUNCTIONS: readonly HostFunctionRow[] = [
  fsExists,
  fsReadFile,
  fsWriteFile,
  fsMkdir,
  fsReaddir,
  fsStat,
  fsUnlink,
];
