/**
 * Which paths of a view to mask: a walk of the merged view of overlay layers (or of one host
 * directory) that asks the security policy about every entry, as a `read_file` host call
 * would, and lists the denied ones. A denied directory is masked whole and not entered;
 * symlinks are never masked (whoever follows one reaches its target, which is judged on its
 * own path — the same rule the VFS applies when it resolves a symlink before the policy sees
 * the path).
 *
 * @module
 */
import type { PolicyConfig } from "../config/mod.ts";
import { Policy } from "../security/mod.ts";
import { SandboxCode, SandboxError } from "./errors.ts";

/** Options of {@link findMaskedPaths}. */
export interface FindMaskedPathsOptions {
  /** The absolute canonical path the policy sees for the view's root (the workspace). */
  root: string;
  /** `[security.policy]`: its `denied_paths`/`allowed_paths` decide, through `Policy`. */
  policy: PolicyConfig;
  /** Most entries visited before giving up with `SANDBOX_MASK_LIMIT` (default 200,000). */
  maxEntries?: number;
}

/** What {@link findMaskedPaths} found. */
export interface MaskedPaths {
  /** Absolute paths of denied files (and devices, FIFOs, sockets), sorted. */
  files: string[];
  /** Absolute paths of denied directories, sorted. */
  dirs: string[];
  /** How many entries the walk visited. */
  visited: number;
}

/**
 * Whether a directory that `allowed_paths` denies may still hold allowed entries (an allowed
 * pattern could match below it): then it is entered instead of masked whole.
 */
function allowedBelow(config: PolicyConfig): (dir: string) => boolean {
  const prefixes = config.allowed_paths.map((raw) => {
    let p = raw.length > 1 && raw.endsWith("/") ? raw.slice(0, -1) : raw;
    if (!p.startsWith("/") && !p.startsWith("**")) p = "**/" + p;
    const glob = p.search(GLOB_CHARS);
    return glob === -1 ? p : p.slice(0, glob);
  });
  return (dir) =>
    prefixes.some((lit) => lit === "" || `${dir}/`.startsWith(lit) || lit.startsWith(`${dir}/`));
}

/** The default of {@link FindMaskedPathsOptions.maxEntries}. */
export const MASK_WALK_LIMIT = 200_000;

const GLOB_CHARS = /[*?[\]{}\\]/;

/**
 * A cheap pre-check: false only when no `denied_paths` pattern can match `path` (the
 * pattern's last segment is a literal other than the name, or it ends in `<literal>/**` and no
 * segment of the path is that literal). Everything else goes to `Policy.checkPath`, which
 * decides. With an `allowed_paths` list or a pattern that does not compile, every path goes
 * there.
 */
export function deniedCandidate(config: PolicyConfig): (path: string, name: string) => boolean {
  const policy = Policy.for(config);
  if (config.allowed_paths.length > 0 || policy.problems.length > 0) return () => true;
  const names = new Set<string>();
  const segments = new Set<string>();
  for (const raw of config.denied_paths) {
    const pattern = raw.length > 1 && raw.endsWith("/") ? raw.slice(0, -1) : raw;
    const parts = pattern.split("/");
    const last = parts[parts.length - 1];
    if (last !== "**" && !GLOB_CHARS.test(last) && last !== "") {
      names.add(last);
      continue;
    }
    const prev = parts[parts.length - 2];
    if (last === "**" && prev !== undefined && prev !== "" && !GLOB_CHARS.test(prev)) {
      segments.add(prev);
      continue;
    }
    return () => true;
  }
  return (path, name) => {
    if (names.has(name)) return true;
    for (const segment of segments) if (`${path}/`.includes(`/${segment}/`)) return true;
    return false;
  };
}

type Kind = "file" | "dir" | "symlink" | "other";

function readNames(dir: string): Deno.DirEntry[] {
  try {
    return [...Deno.readDirSync(dir)];
  } catch {
    return []; // unreadable here is unreadable to the command too (same uid)
  }
}

function kindOf(entry: Deno.DirEntry, host: string): Kind | "whiteout" {
  if (entry.isDirectory) return "dir";
  if (entry.isFile) return "file";
  if (entry.isSymlink) return "symlink";
  try {
    const info = Deno.lstatSync(host);
    if (info.isCharDevice === true && info.rdev === 0) return "whiteout";
  } catch {
    // vanished
  }
  return "other";
}

/**
 * Walks the merged view of `layers` (host directories, top layer first, with overlayfs's
 * rules: a 0/0 character device hides what lies below, a non-directory hides a lower
 * directory, directories merge) and returns the entries `options.policy` denies.
 */
export function findMaskedPaths(
  layers: readonly string[],
  options: FindMaskedPathsOptions,
): MaskedPaths {
  const limit = options.maxEntries ?? MASK_WALK_LIMIT;
  const policy = Policy.for(options.policy);
  const candidate = deniedCandidate(options.policy);
  const mayHoldAllowed = allowedBelow(options.policy);
  const files: string[] = [];
  const dirs: string[] = [];
  let visited = 0;
  const visit = (abs: string, hostDirs: readonly string[]): void => {
    const seen = new Map<string, { kind: Kind | "whiteout"; dirs: string[]; closed: boolean }>();
    for (const hostDir of hostDirs) {
      for (const entry of readNames(hostDir)) {
        const host = `${hostDir}/${entry.name}`;
        const kind = kindOf(entry, host);
        const prior = seen.get(entry.name);
        if (prior === undefined) {
          seen.set(entry.name, {
            kind,
            dirs: kind === "dir" ? [host] : [],
            closed: kind !== "dir",
          });
        } else if (!prior.closed) {
          // Only a directory above lets a lower entry through, and only a directory.
          if (kind === "dir") prior.dirs.push(host);
          else prior.closed = true;
        }
      }
    }
    for (const name of [...seen.keys()].sort()) {
      const { kind, dirs: below } = seen.get(name)!;
      if (kind === "whiteout" || kind === "symlink") continue;
      if (++visited > limit) {
        throw new SandboxError(
          SandboxCode.SANDBOX_MASK_LIMIT,
          `Cannot resolve denied paths in "${options.root}": more than ${limit} entries (limit ${limit}): narrow security.policy.denied_paths or raise the sandbox mask walk limit`,
          { data: { count: visited, limit } },
        );
      }
      const path = abs === "/" ? `/${name}` : `${abs}/${name}`;
      const block = candidate(path, name) ? policy.checkPath(path) : null;
      if (block === null) {
        if (kind === "dir") visit(path, below);
      } else if (kind !== "dir") {
        files.push(path);
      } else if (block.rule === "allowed_paths" && mayHoldAllowed(path)) {
        visit(path, below); // outside the allow-list itself, but allowed entries lie below
      } else {
        dirs.push(path);
      }
    }
  };
  visit(options.root, layers);
  return { files: files.sort(), dirs: dirs.sort(), visited };
}
