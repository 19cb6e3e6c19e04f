/**
 * Crash-safe file writes: write a temporary sibling, fsync it, rename it over the target,
 * fsync the directory. A reader sees the old file or the new one, never half of either.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { HomeCode, HomeError } from "./errors.ts";

/** Options of {@link atomicWrite}. */
export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o644; use 0o600 for secrets). */
  mode?: number;
}

/** Writes `data` to `path` atomically, with `options.mode` applied before the rename. */
export async function atomicWrite(
  path: string,
  data: Uint8Array | string,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const mode = options.mode ?? 0o644;
  const dir = dirname(path);
  const suffix = crypto.getRandomValues(new Uint8Array(6)).reduce(
    (s, b) => s + b.toString(16).padStart(2, "0"),
    "",
  );
  const tmp = join(dir, `.${path.slice(dir.length + 1)}.${suffix}.tmp`);
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true, mode });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    if (Deno.build.os !== "windows") await Deno.chmod(tmp, mode); // exact, whatever the umask
    await Deno.rename(tmp, path);
    await syncDir(dir);
  } catch (cause) {
    await Deno.remove(tmp).catch(() => {});
    throw new HomeError(
      HomeCode.ATOMIC_WRITE_FAILED,
      `Cannot write "${path}" atomically: ${(cause as Error).message}`,
      { data: { path }, cause },
    );
  }
}

async function syncDir(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  try {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is still atomic.
  }
}
