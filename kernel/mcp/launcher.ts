/**
 * How a server process is started. The engine asks a {@link McpLauncher} for a process with
 * piped stdio; the launcher decides where it runs. {@link DirectLauncher} runs it as a plain
 * child of the daemon, with no namespace: the engine uses it only when the operator opted in
 * (`allow_unsandboxed`), warning at every start. {@link SandboxLauncher} (`sandbox_launcher.ts`)
 * runs it in the namespace sandbox over the session's overlay (DESIGN §6a).
 *
 * Every launcher gives the server a scrubbed environment: only `PATH`, `HOME`, `LANG`,
 * `LC_ALL`, `TERM`, `TZ`, `USER`, `LOGNAME`, `SHELL` and `TMPDIR` of the daemon's, then the
 * spec's `env`.
 *
 * @module
 */
import type { OverlayVfs } from "../vfs/mod.ts";
import type { StdioProcess } from "./process_transport.ts";

/** Daemon environment variables a server inherits. */
export const INHERITED_ENV: readonly string[] = [
  "PATH",
  "HOME",
  "LANG",
  "LC_ALL",
  "TERM",
  "TZ",
  "USER",
  "LOGNAME",
  "SHELL",
  "TMPDIR",
];

/** What to start. */
export interface McpLaunch {
  /** The server's name (for logs and errors). */
  readonly server: string;
  /** The program and its arguments, placeholders expanded. */
  readonly argv: readonly string[];
  /** The complete environment (see {@link serverEnv}). */
  readonly env: Readonly<Record<string, string>>;
  /** The working directory: the workspace root (or the probe's empty directory). */
  readonly cwd: string;
  /** The session overlay the server works on (mounted at `cwd` by a sandboxing launcher). */
  readonly overlay?: OverlayVfs;
  /** Host paths the server must read besides the system (its script's package, its program). */
  readonly readOnly?: readonly string[];
  /**
   * The workspace paths (relative) the server may see, from its grants; absent, the whole
   * workspace. A sandboxing launcher shows it only these; the direct launcher cannot.
   */
  readonly workspacePaths?: readonly string[];
  /** Let the server reach the network (default false: loopback only in the sandbox). */
  readonly network?: boolean;
  /** Receives each line the server writes to stderr (the capsule log). */
  readonly onStderr?: (line: string) => void;
}

/** Starts server processes. */
export interface McpLauncher {
  /** True when processes run in a namespace over the overlay. */
  readonly sandboxed: boolean;
  /**
   * True when a process holds its session's lock for its whole life and folds its writes into
   * the session when it exits (the namespace sandbox): the engine then stops an idle server as
   * soon as anything else waits for that session.
   */
  readonly holdsSession: boolean;
  /** Starts `launch`; rejects when the process cannot be spawned. */
  spawn(launch: McpLaunch): Promise<StdioProcess>;
}

/** Host directories every sandbox shows already (read-only system binds). */
export const SYSTEM_DIRS: readonly string[] = [
  "/usr",
  "/bin",
  "/sbin",
  "/lib",
  "/lib32",
  "/lib64",
  "/libx32",
  "/etc",
  "/opt",
];

/**
 * The host directories a server needs to see to run, from the files that make it up: a file
 * under `node_modules` brings the whole outermost `node_modules` tree (its dependencies); a
 * script its directory; a program outside the system directories its installation (the
 * parent of its `bin/`); a capsule directory itself. System directories are left out.
 */
export function visibleRoots(
  parts: readonly { readonly path: string; readonly kind: "script" | "program" | "dir" }[],
): string[] {
  const out = new Set<string>();
  for (const { path, kind } of parts) {
    if (path === "" || !path.startsWith("/")) continue;
    if (SYSTEM_DIRS.some((d) => path === d || path.startsWith(d + "/"))) continue;
    const nm = path.indexOf("/node_modules/");
    if (nm >= 0) {
      out.add(path.slice(0, nm + "/node_modules".length));
      continue;
    }
    const dir = path.slice(0, Math.max(1, path.lastIndexOf("/")));
    if (kind === "dir") out.add(path);
    else if (kind === "script") out.add(dir);
    else out.add(dir.endsWith("/bin") ? dir.slice(0, -4) || "/" : dir);
  }
  return [...out].filter((p) => p !== "/");
}

/** The server's environment: the inherited variables, then `extra`. */
export function serverEnv(
  extra: Readonly<Record<string, string>>,
  source: { get(name: string): string | undefined } = Deno.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED_ENV) {
    const v = source.get(name);
    if (v !== undefined && !v.startsWith("()")) env[name] = v;
  }
  return { ...env, ...extra };
}

/** Forwards the lines of `stream` to `onLine` until it ends. */
export async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  onLine: ((line: string) => void) | undefined,
): Promise<void> {
  const decoder = new TextDecoder();
  let rest = "";
  try {
    for await (const chunk of stream) {
      if (onLine === undefined) continue;
      rest += decoder.decode(chunk, { stream: true });
      const lines = rest.split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) if (line !== "") onLine(line.slice(0, 4096));
    }
    if (rest !== "") onLine?.(rest.slice(0, 4096));
  } catch {
    // The process went away.
  }
}

/** Wraps a spawned `Deno.ChildProcess` (stdio piped) as a {@link StdioProcess}. */
export function childProcess(
  child: Deno.ChildProcess,
  onStderr: ((line: string) => void) | undefined,
): StdioProcess {
  void pumpLines(child.stderr, onStderr);
  let done = false;
  const exited = child.status.then((s) => {
    done = true;
    return { code: s.signal === null ? s.code : null, signal: s.signal };
  });
  return {
    pid: child.pid,
    stdin: child.stdin,
    stdout: child.stdout,
    exited,
    kill(signal: Deno.Signal = "SIGTERM") {
      if (done) return;
      try {
        child.kill(signal);
      } catch {
        // Already exited.
      }
    },
  };
}

/**
 * Runs servers as plain children of the daemon: no namespace, no overlay — `${workspace}` is
 * the real workspace and writes land there at once (opt-in only, `allow_unsandboxed`).
 */
export class DirectLauncher implements McpLauncher {
  /** Never sandboxed. */
  readonly sandboxed = false;
  /** Holds no session lock. */
  readonly holdsSession = false;

  /** Spawns `launch.argv` with piped stdio. */
  spawn(launch: McpLaunch): Promise<StdioProcess> {
    const [program, ...args] = launch.argv;
    const child = new Deno.Command(program, {
      args,
      env: { ...launch.env },
      clearEnv: true,
      cwd: launch.cwd,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return Promise.resolve(childProcess(child, launch.onStderr));
  }
}
