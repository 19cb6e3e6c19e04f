/**
 * `/proc/self/mountinfo`: which mounts lie under a directory the sandbox binds, and which of
 * their flags a read-only remount must keep (a remount inside a user namespace may not clear
 * `nosuid`, `nodev`, `noexec` or `ro` that the original mount has).
 *
 * @module
 */

/** One line of mountinfo: where it is mounted and its per-mount options. */
export interface MountEntry {
  /** The mount point (octal escapes decoded). */
  readonly mountPoint: string;
  /** Per-mount options (`rw`, `nosuid`, `relatime`, …). */
  readonly options: readonly string[];
}

/** A remount of one mount point inside the sandbox root. */
export interface Remount {
  /** The host mount point (the same path inside the sandbox root). */
  readonly path: string;
  /** Flags for `mount -o remount,bind,<flags>`. */
  readonly flags: readonly string[];
}

/** Decodes `\040`-style octal escapes of mountinfo. */
function unescape(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses mountinfo text. */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    if (fields.length < 6) continue;
    out.push({ mountPoint: unescape(fields[4]), options: fields[5].split(",") });
  }
  return out;
}

function under(path: string, dir: string): boolean {
  return dir === "/" ? path.startsWith("/") : path === dir || path.startsWith(`${dir}/`);
}

function flagsOf(entry: MountEntry | undefined, readOnly: boolean): string[] {
  const has = (o: string) => entry?.options.includes(o) ?? false;
  const flags: string[] = [];
  if (readOnly || has("ro")) flags.push("ro");
  flags.push("nosuid", "nodev");
  if (has("noexec")) flags.push("noexec");
  return flags;
}

/**
 * The remounts that make a recursive bind of `dir` read-only (or, with `readOnly` false, only
 * `nosuid,nodev`): one for `dir` itself (flags of the mount that holds it) and one for each
 * mount below it, parents first. The last entry of a mount point wins, as in the kernel.
 */
export function remountsFor(
  dir: string,
  mounts: readonly MountEntry[],
  readOnly: boolean,
): Remount[] {
  let holder: MountEntry | undefined;
  const below = new Map<string, MountEntry>();
  for (const m of mounts) {
    if (
      under(dir, m.mountPoint) &&
      (holder === undefined || m.mountPoint.length >= holder.mountPoint.length)
    ) {
      holder = m;
    }
    if (m.mountPoint !== dir && under(m.mountPoint, dir)) below.set(m.mountPoint, m);
  }
  const out: Remount[] = [{ path: dir, flags: flagsOf(holder, readOnly) }];
  for (const path of [...below.keys()].sort()) {
    out.push({ path, flags: flagsOf(below.get(path), readOnly) });
  }
  return out;
}

/** Reads this process's mount table; empty when it cannot be read. */
export function readMountInfo(): MountEntry[] {
  try {
    return parseMountInfo(Deno.readTextFileSync("/proc/self/mountinfo"));
  } catch {
    return [];
  }
}
