/**
 * The one table that turns Deno filesystem errors into {@link VfsError}. Messages name the VFS
 * path (never the host path, which a capsule has no business seeing).
 *
 * @module
 */
import { quotePath, type VfsCode, VfsCode as Code, VfsError } from "./errors.ts";

const TABLE: [new (...args: never[]) => Error, VfsCode, string][] = [
  [Deno.errors.NotFound, Code.VFS_NOT_FOUND, "does not exist"],
  [Deno.errors.AlreadyExists, Code.VFS_EXISTS, "already exists"],
  [Deno.errors.NotADirectory, Code.VFS_NOT_A_DIRECTORY, "is not a directory"],
  [Deno.errors.IsADirectory, Code.VFS_IS_A_DIRECTORY, "is a directory"],
  [Deno.errors.FilesystemLoop, Code.VFS_SYMLINK_LOOP, "loops through symlinks"],
];

/** Returns `err` when it is a VfsError, else the VfsError of the table (`VFS_IO` by default). */
export function mapFsError(err: unknown, where: { path: string; op: string }): VfsError {
  if (err instanceof VfsError) return err;
  for (const [type, code, text] of TABLE) {
    if (err instanceof type) {
      return new VfsError(code, `Cannot ${where.op} ${quotePath(where.path)}: it ${text}`, {
        data: { path: where.path, op: where.op },
        cause: err,
      });
    }
  }
  const detail = err instanceof Error ? err.message : String(err);
  const code = /directory not empty/i.test(detail) ? Code.VFS_NOT_EMPTY : Code.VFS_IO;
  return new VfsError(code, `Cannot ${where.op} ${quotePath(where.path)}: ${detail}`, {
    data: { path: where.path, op: where.op },
    cause: err,
  });
}

/** A VfsError of `code`: `Cannot <op> "<path>": <detail>`. */
export function vfsError(
  code: VfsCode,
  where: { path: string; op: string },
  detail: string,
): VfsError {
  return new VfsError(code, `Cannot ${where.op} ${quotePath(where.path)}: ${detail}`, {
    data: { path: where.path, op: where.op },
  });
}
