/**
 * tools-shell: `run_shell` runs `sh -c <command>` through the host's `process_spawn`, in the
 * namespace sandbox over the session overlay (docs/sandbox.md). Reference:
 * docs/capsules/tools-shell.md.
 */
import { HostError, process, Result } from "@astrid/sdk";

/** Characters of each output stream answered at most (the rest is cut, with a note). */
const MAX_OUTPUT: i32 = 30000;
/** The longest timeout a call may ask for, ms (the host's own limit is 1 h). */
const MAX_TIMEOUT_MS: i32 = 600000;

/** Arguments of run_shell. */
@json
class ShellArgs {
  /** The command line, run with sh -c. */
  command!: string;
  /** The working directory, relative to the workspace root ("" for the root). */
  cwd: string = "";
  /** Stop the command after this many ms (0: 120000; at most 600000). */
  timeout_ms: i32 = 0;
}

/** What run_shell answers. */
@json
class ShellResult {
  /** The exit code (-1 when a signal ended it). */
  exit_code: i32 = -1;
  /** The signal that ended it, or "". */
  signal: string = "";
  /** What it wrote to standard output. */
  stdout: string = "";
  /** What it wrote to standard error. */
  stderr: string = "";
  /** True when it ran past its timeout and was killed. */
  timed_out: bool = false;
}

function capped(text: string): string {
  if (text.length <= MAX_OUTPUT) return text;
  return text.substring(0, MAX_OUTPUT) + "\n[cut: " + text.length.toString() +
    " characters, " + MAX_OUTPUT.toString() + " shown]";
}

/** Runs a shell command in the sandbox. */
@tool("run_shell")
function runShell(args: ShellArgs): Result<ShellResult> {
  if (args.command.trim().length == 0) {
    return Result.fail<ShellResult>("Argument command is empty: give a command line for sh -c");
  }
  if (args.timeout_ms < 0 || args.timeout_ms > MAX_TIMEOUT_MS) {
    return Result.fail<ShellResult>(
      "Argument timeout_ms " + args.timeout_ms.toString() + " is out of range (0 to " +
        MAX_TIMEOUT_MS.toString() + "): give a smaller timeout",
    );
  }
  const cmd = new process.Command("sh", ["-c", args.command]);
  let cwd = args.cwd.trim();
  if (cwd.startsWith("workspace://")) cwd = cwd.substring(12);
  if (cwd.length > 0 && cwd != ".") cmd.cwd = cwd;
  cmd.timeoutMs = <u32>(args.timeout_ms == 0 ? 120000 : args.timeout_ms);
  const ran = process.run(cmd);
  if (ran.isErr) {
    const e = ran.error!;
    return Result.err<ShellResult>(new HostError(e.status, "Command not run: " + e.message));
  }
  const out = ran.unwrap();
  const result = new ShellResult();
  result.exit_code = out.exitCode;
  const signal = out.signal;
  result.signal = signal === null ? "" : signal;
  result.stdout = capped(out.stdout);
  result.stderr = capped(out.stderr);
  result.timed_out = out.timedOut;
  return Result.ok<ShellResult>(result);
}
