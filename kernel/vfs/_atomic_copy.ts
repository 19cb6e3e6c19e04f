/**
 * Commit's per-file atomic replace in the workspace: the new content is written beside the
 * target under a temporary name, synced, then renamed over it, and the directory synced. A
 * reader of the workspace sees the old file or the new one, never half of either.
 *
 * @module
 */
import { dirname, join } from "node:path";

function tempBeside(path: string): string {
  const suffix = crypto.randomUUID().slice(0, 12);
  return join(dirname(path), `.astrid-commit-${suffix}.tmp`);
}

async function syncPath(path: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  try {
    const handle = await Deno.open(path, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is still atomic.
  }
}

/** Replaces `dest` with a copy of the regular file `source` (mode `mode`), atomically. */
export async function atomicCopy(source: string, dest: string, mode: number): Promise<void> {
  const tmp = tempBeside(dest);
  try {
    await Deno.copyFile(source, tmp);
    await Deno.chmod(tmp, mode);
    await syncPath(tmp);
    await Deno.rename(tmp, dest);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  await syncPath(dirname(dest));
}

/** Replaces `dest` with a symlink to `target`, atomically. */
export async function atomicSymlink(target: string, dest: string): Promise<void> {
  const tmp = tempBeside(dest);
  try {
    await Deno.symlink(target, tmp);
    await Deno.rename(tmp, dest);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  await syncPath(dirname(dest));
}
