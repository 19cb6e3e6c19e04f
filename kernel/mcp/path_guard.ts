/**
 * The check Astrid makes on a tool call's path arguments before its MCP server sees it:
 * every value {@link argumentPaths} finds must resolve inside a path the server's grants
 * allow, or the call is denied.
 *
 * Resolution of one value, as the server would read it:
 * 1. `file://…` is its path; `~` and `~/…` are under the server's `HOME`; a relative path is
 *    under the server's working directory (the workspace root);
 * 2. a `..` segment or a NUL byte denies at once (as the VFS does: never normalized);
 * 3. inside the workspace root, the session overlay resolves it (symlinks followed through the
 *    merged view; one that leaves the workspace denies) to a workspace-relative canonical path;
 *    elsewhere the longest existing ancestor's real path is taken (symlinks resolved);
 * 4. it must lie under a grant (never `home://.local` or `home://.config`, kernel-managed): `*` and `workspace://<dir>` for the workspace, `home://<dir>`
 *    and `global://<dir>` for the principal's home and the shared global directory.
 *
 * A tool annotated `readOnlyHint: true` may name paths of `fs_read` or `fs_write`; any other
 * tool only paths of `fs_write` (MCP cannot say which argument is written, so a tool that may
 * write is held to the write grants for all of its paths).
 *
 * @module
 */
import { isAbsolute, join, relative } from "node:path";
import { HOME_RESERVED, type OverlayVfs } from "../vfs/mod.ts";
import type { ArgumentPath } from "./argument_paths.ts";

/** Host roots of the schemes besides the workspace. */
export interface SchemeRoots {
  /** The principal's home directory (`home://`), real path. */
  readonly home?: string;
  /** The shared global directory (`global://`), real path. */
  readonly global?: string;
}

/** Where and how to check a call's paths. */
export interface PathGuardOptions {
  /** The workspace root, real path; also the server's working directory. */
  workspaceRoot: string;
  /** The session overlay (resolves workspace paths through the merged view). */
  overlay?: OverlayVfs;
  /** The grants that apply (see the module doc). */
  grants: readonly string[];
  /** The server's `HOME`, for `~`. */
  serverHome?: string;
  /** Roots of `home://` and `global://`. */
  roots?: SchemeRoots;
}

/** What the check found. */
export type PathVerdict =
  /** Every path is allowed; `paths` are canonical host paths, `inside` true when all lie in the workspace. */
  | { readonly allowed: true; readonly paths: string[]; readonly inside: boolean }
  /** One path is not. */
  | {
    readonly allowed: false;
    readonly argument: string;
    readonly path: string;
    readonly reason: string;
  };

interface Grant {
  readonly scheme: "workspace" | "home" | "global";
  readonly prefix: string;
}

/** Parses grants (`*`, `workspace://a/b`, `home://x`, `global://y`). */
export function parseGrants(grants: readonly string[]): Grant[] {
  const out: Grant[] = [];
  for (const g of grants) {
    if (g === "*") {
      out.push({ scheme: "workspace", prefix: "" });
      continue;
    }
    const m = /^(workspace|home|global):\/\/(.*)$/.exec(g);
    if (m === null) continue;
    const prefix = m[2].split("/").filter((s) => s !== "" && s !== ".").join("/");
    if (prefix.split("/").includes("..")) continue;
    out.push({ scheme: m[1] as Grant["scheme"], prefix });
  }
  return out;
}

function under(rel: string, prefix: string): boolean {
  return prefix === "" || rel === prefix || rel.startsWith(prefix + "/");
}

function within(path: string, root: string): string | undefined {
  if (path === root) return "";
  const r = relative(root, path);
  if (r === "" || r.startsWith("..") || isAbsolute(r)) return undefined;
  return r;
}

async function realAncestor(path: string): Promise<string> {
  const rest: string[] = [];
  let p = path;
  for (;;) {
    try {
      const real = await Deno.realPath(p);
      return rest.length === 0 ? real : join(real, ...rest.reverse());
    } catch {
      const parent = join(p, "..");
      if (parent === p) return path;
      rest.push(p.slice(parent === "/" ? 1 : parent.length + 1));
      p = parent;
    }
  }
}

const parsed = new WeakMap<readonly string[], Grant[]>();

/** Checks `found` (see the module doc); parsed grants are cached per grants array. */
export async function checkPaths(
  found: readonly ArgumentPath[],
  options: PathGuardOptions,
): Promise<PathVerdict> {
  let grants = parsed.get(options.grants);
  if (grants === undefined) {
    grants = parseGrants(options.grants);
    parsed.set(options.grants, grants);
  }
  const root = options.workspaceRoot;
  const paths: string[] = [];
  let inside = true;
  for (const { argument, value } of found) {
    const deny = (path: string, reason: string): PathVerdict => ({
      allowed: false,
      argument,
      path,
      reason,
    });
    let p = value;
    if (p.startsWith("file://")) {
      try {
        p = decodeURIComponent(new URL(p).pathname);
      } catch {
        return deny(value, "it is not a valid file URI");
      }
    } else if (p === "~" || p.startsWith("~/")) {
      if (options.serverHome === undefined) return deny(value, "the server has no home");
      p = join(options.serverHome, p.slice(1));
    } else if (!isAbsolute(p)) {
      if (p.split(/[\\/]/).includes("..")) return deny(value, 'it has a ".." segment');
      p = join(root, p);
    }
    if (p.includes("\0")) return deny(value, "it holds a NUL byte");
    if (p.split("/").includes("..")) return deny(p, 'it has a ".." segment');
    p = p.replace(/\/+$/, "") || "/";
    const ws = within(p, root);
    if (ws !== undefined) {
      let rel = ws.split("/").filter((s) => s !== "" && s !== ".").join("/");
      if (options.overlay !== undefined) {
        try {
          rel = (await options.overlay.resolve(rel === "" ? "" : rel)).path;
        } catch (err) {
          return deny(p, (err as Error)?.message ?? String(err));
        }
      }
      const canonical = rel === "" ? root : join(root, rel);
      if (!grants.some((g) => g.scheme === "workspace" && under(rel, g.prefix))) {
        return deny(canonical, "it is outside the workspace paths the server may use");
      }
      paths.push(canonical);
      continue;
    }
    inside = false;
    const real = await realAncestor(p);
    let ok = false;
    for (const scheme of ["home", "global"] as const) {
      const sroot = options.roots?.[scheme];
      if (sroot === undefined) continue;
      const rel = within(real, sroot);
      if (rel === undefined) continue;
      if (scheme === "home" && HOME_RESERVED.includes(rel.split("/")[0])) {
        return deny(real, "it is kernel-managed (home://.local, home://.config)");
      }
      if (grants.some((g) => g.scheme === scheme && under(rel, g.prefix))) ok = true;
    }
    if (!ok) return deny(real, "it is outside the paths the server may use");
    paths.push(real);
  }
  return { allowed: true, paths, inside: inside && paths.length > 0 };
}
