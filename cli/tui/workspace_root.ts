/**
 * The workspace a CLI run belongs to (DESIGN §3a): the nearest ancestor of the current
 * directory holding `.astrid/` (never the Astrid home itself, `~/.astrid`), else the nearest
 * holding `.git`, else the current directory. The CLI sends it in the hello; the daemon binds
 * the session to its id (`<root>/.astrid/workspace-id`).
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";

/** The workspace root for `cwd`; `astridHome` is excluded from the `.astrid/` search. */
export async function findWorkspaceRoot(cwd: string, astridHome?: string): Promise<string> {
  const start = resolve(cwd);
  const home = astridHome === undefined ? undefined : await real(resolve(astridHome));
  let gitRoot: string | undefined;
  for (let dir = start;; dir = dirname(dir)) {
    const marker = join(dir, ".astrid");
    if (await isDir(marker) && (home === undefined || (await real(marker)) !== home)) return dir;
    if (gitRoot === undefined && await exists(join(dir, ".git"))) gitRoot = dir;
    if (dirname(dir) === dir) break;
  }
  return gitRoot ?? start;
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function real(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    return path;
  }
}
