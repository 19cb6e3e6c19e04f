/**
 * What a server's `hash` pins, and the check before every start.
 *
 * The hash covers the code that decides what the server does:
 * - an **interpreter** (`node`, `deno`, `bun`, `python3`, `ruby`, `perl`, `php`, `sh`, `bash`,
 *   …): the script it runs — the first argument that does not start with `-` (for `deno`
 *   and `bun`, after a `run` subcommand), resolved against the spec's directory. Interpreter
 *   options that take a value must be written `--opt=value`. With no script argument
 *   (`node -e "…"`, code inline in the manifest) the interpreter binary itself is hashed.
 * - a **launcher** that fetches code at run time (`npx`, `uvx`, `pipx`, `bunx`, `pnpx`, `npm`,
 *   `pnpm`, `yarn`, `uv`, `docker`, `podman`), or `python -m module`: no file pins what runs,
 *   so a `hash` is refused (`MCP_HASH_UNPINNABLE`); install the package and run its script
 *   with the interpreter instead. Without a `hash` such a server runs unpinned (logged).
 * - anything else: the program itself, found on `PATH` (or the absolute path an operator
 *   entry gives), symlinks resolved.
 *
 * The file is hashed with BLAKE3 and compared with the pinned `blake3:<hex>`; a mismatch
 * refuses the start (`MCP_HASH_MISMATCH`). Hashes are cached by (path, size, mtime, ctime, inode),
 * so an unchanged 100 MB interpreter is hashed once per engine.
 *
 * @module
 */
import { basename, isAbsolute, join, resolve } from "node:path";
import { blake3File } from "../crypto/mod.ts";
import { McpCode, McpError } from "./errors.ts";
import type { McpServerSpec } from "./server_spec.ts";

/** Programs that run a script named by an argument. */
export const INTERPRETERS: readonly string[] = [
  "node",
  "nodejs",
  "deno",
  "bun",
  "python",
  "python3",
  "ruby",
  "perl",
  "php",
  "sh",
  "bash",
  "dash",
  "zsh",
];

/** Programs that fetch the code they run at run time: no hash can pin them. */
export const LAUNCHERS: readonly string[] = [
  "npx",
  "uvx",
  "pipx",
  "bunx",
  "pnpx",
  "npm",
  "pnpm",
  "yarn",
  "uv",
  "docker",
  "podman",
];

/** The file a hash covers. */
export interface HashTarget {
  /** `script` (an interpreter's), `program`, or `none` (a launcher: nothing pins it). */
  readonly kind: "script" | "program" | "none";
  /** The absolute file, symlinks resolved (empty for `none`). */
  readonly file: string;
}

/** Options of {@link hashTarget} and {@link checkServerHash}. */
export interface HashOptions {
  /** The PATH to search (default `Deno.env.get("PATH")`). */
  path?: string;
}

const cache = new Map<string, { stamp: string; hash: string }>();

function programBase(command: string): string {
  return basename(command).toLowerCase();
}

function isInterpreter(command: string): boolean {
  const b = programBase(command);
  return INTERPRETERS.includes(b) || /^python3?\.\d+$/.test(b);
}

/** Finds `command` on `path` (or takes it as given when absolute); undefined when absent. */
export async function findProgram(command: string, path: string): Promise<string | undefined> {
  const candidates = isAbsolute(command)
    ? [command]
    : path.split(":").filter((d) => d !== "").map((d) => join(d, command));
  for (const c of candidates) {
    try {
      const st = await Deno.stat(c);
      if (st.isFile && (st.mode === null || (st.mode & 0o111) !== 0)) return await Deno.realPath(c);
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** Which file `spec.hash` covers (see the module doc). */
export async function hashTarget(
  spec: McpServerSpec,
  options: HashOptions = {},
): Promise<HashTarget> {
  const b = programBase(spec.command);
  if (LAUNCHERS.includes(b)) return { kind: "none", file: "" };
  if (isInterpreter(spec.command)) {
    const args = [...spec.args];
    if ((b === "deno" || b === "bun") && (args[0] === "run" || args[0] === "x")) {
      if (args[0] === "x") return { kind: "none", file: "" };
      args.shift();
    }
    if (b.startsWith("python") && args.some((a) => a === "-m" || a.startsWith("-m"))) {
      return { kind: "none", file: "" };
    }
    const script = args.find((a) => !a.startsWith("-"));
    const inline = args.some((a) => a === "-e" || a === "-c" || a === "--eval");
    if (script !== undefined && !inline) {
      const file = resolve(spec.dir, script.replaceAll("${dir}", spec.dir));
      try {
        return { kind: "script", file: await Deno.realPath(file) };
      } catch {
        throw new McpError(
          McpCode.MCP_HASH_TARGET_MISSING,
          `Cannot start MCP server "${spec.name}": its script "${script}" is not a file: install it or fix args`,
          { data: { server: spec.name, file } },
        );
      }
    }
  }
  const file = await findProgram(spec.command, options.path ?? Deno.env.get("PATH") ?? "");
  if (file === undefined) {
    throw new McpError(
      McpCode.MCP_HASH_TARGET_MISSING,
      `Cannot start MCP server "${spec.name}": program "${spec.command}" is not on PATH: install it or fix command`,
      { data: { server: spec.name, file: spec.command, command: spec.command } },
    );
  }
  return { kind: "program", file };
}

/** BLAKE3 of `file` as `blake3:<hex>`, cached by (path, size, mtime, ctime, inode). */
export async function hashFile(file: string): Promise<string> {
  const st = await Deno.stat(file);
  const stamp = `${st.size}:${st.mtime?.getTime()}:${st.ctime?.getTime()}:${st.ino}`;
  const hit = cache.get(file);
  if (hit !== undefined && hit.stamp === stamp) return hit.hash;
  const hash = `blake3:${await blake3File(file)}`;
  cache.set(file, { stamp, hash });
  return hash;
}

/**
 * Checks `spec.hash` against its target before a start: resolves the target (also without a
 * hash, so a missing program fails early), refuses a pinned launcher (`MCP_HASH_UNPINNABLE`)
 * and a mismatch (`MCP_HASH_MISMATCH`). Resolves the target and whether it was pinned.
 */
export async function checkServerHash(
  spec: McpServerSpec,
  options: HashOptions = {},
): Promise<{ target: HashTarget; pinned: boolean }> {
  const target = await hashTarget(spec, options);
  if (spec.hash === undefined) return { target, pinned: false };
  if (target.kind === "none") {
    throw new McpError(
      McpCode.MCP_HASH_UNPINNABLE,
      `Cannot pin MCP server "${spec.name}": "${spec.command}" fetches its code at run time, so no hash can pin it: install the package and run its script with its interpreter (e.g. command = "node", args = ["<dir>/dist/index.js"]), or remove hash`,
      { data: { server: spec.name, command: spec.command } },
    );
  }
  const actual = await hashFile(target.file);
  if (actual !== spec.hash.toLowerCase()) {
    throw new McpError(
      McpCode.MCP_HASH_MISMATCH,
      `Refused to start MCP server "${spec.name}": ${target.kind} "${target.file}" has hash "${actual}", not the pinned "${spec.hash}": reinstall what was pinned, or pin the new hash if you trust it`,
      {
        data: {
          server: spec.name,
          file: target.file,
          expected: spec.hash,
          actual,
        },
      },
    );
  }
  return { target, pinned: true };
}
