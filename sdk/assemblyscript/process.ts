/**
 * Native programs, run by the kernel in the session's sandbox (DESIGN §6a: what they write lands
 * in the session overlay, denied paths are masked): `run()` waits for the exit, `spawn()`
 * starts one in the background (needs `allow_persistent`) to read its output and kill later.
 * Needs `[capabilities] host_process` listing the program; the security pipeline may ask the
 * user. Errors: `DENIED`, `UNAVAILABLE` (no sandbox on this host), `NOT_FOUND` (handle),
 * `LIMIT_EXCEEDED`, `IO`, `CANCELLED`.
 */
import { process_kill, process_read_logs, process_spawn, process_spawn_background } from "./internal/abi";
import { decodeBase64 } from "./internal/base64";
import { Request } from "./internal/request";
import { Reply } from "./internal/reply";
import { arrayItems, ObjectScan, quote, unquote } from "./internal/scan";
import { Result } from "./result";

/** What to run. */
export class Command {
  /** The program (as listed in `host_process`) and its arguments. */
  argv: string[];
  /** The working directory, a workspace path (default the workspace root). */
  cwd: string | null = null;
  /** Extra environment variables, in pairs: `["NAME", "value", …]`. */
  env: string[] = [];
  /** Text for its standard input (`run` only). */
  stdin: string | null = null;
  /** Give up after this many ms (0: the host's default). */
  timeoutMs: u32 = 0;

  constructor(program: string, args: string[] = []) {
    this.argv = [program].concat(args);
  }

  /** The `command` field as the host reads it (JSON text). */
  toJson(): string {
    let json = '{"argv":[' + this.argv.map<string>((a) => quote(a)).join(",") + "]";
    const cwd = this.cwd;
    if (cwd !== null) json += ',"cwd":' + quote(cwd);
    if (this.env.length > 1) {
      json += ',"env":{';
      for (let i = 0; i + 1 < this.env.length; i += 2) {
        json += (i > 0 ? "," : "") + quote(this.env[i]) + ":" + quote(this.env[i + 1]);
      }
      json += "}";
    }
    if (this.timeoutMs > 0) json += ',"timeout_ms":' + this.timeoutMs.toString();
    return json + "}";
  }
}

function textField(o: ObjectScan, name: string): string {
  const raw = o.raw(name);
  if (raw !== null && raw.length >= 2) return unquote(raw);
  const b64 = o.str(name + "_base64");
  if (b64 !== null) {
    const bytes = decodeBase64(b64);
    if (bytes !== null) return String.UTF8.decode(bytes);
  }
  return "";
}

/** How a program ended and what it wrote. */
export class Output {
  /** Its exit code (-1 when it ended by a signal or did not start). */
  exitCode: i32 = -1;
  /** The signal that ended it, or null. */
  signal: string | null = null;
  /** Its standard output (as UTF-8; invalid bytes replaced). */
  stdout: string = "";
  /** Its standard error. */
  stderr: string = "";
  /** True when it ran past its timeout. */
  timedOut: bool = false;
  /** True when it ran inside the namespace sandbox. */
  sandboxed: bool = false;

  /** Reads `process_spawn`'s JSON answer. */
  static parse(text: string): Output {
    const o = new ObjectScan(text);
    const out = new Output();
    const code = o.raw("code");
    if (code !== null && code != "null") out.exitCode = <i32>o.num("code");
    out.signal = o.str("signal");
    out.stdout = textField(o, "stdout");
    out.stderr = textField(o, "stderr");
    out.timedOut = o.bool("timed_out");
    out.sandboxed = o.bool("sandboxed");
    return out;
  }
}

/** Runs `cmd` and waits for it to exit. */
export function run(cmd: Command): Result<Output> {
  const req = Request.reset().str(cmd.toJson());
  const stdin = cmd.stdin;
  if (stdin !== null) req.str(stdin);
  const reply = Reply.of(process_spawn(req.ptr, req.len));
  if (!reply.ok) return reply.fail<Output>("process.run");
  return Result.ok<Output>(Output.parse(reply.text()));
}

/** Output of a background process since an offset. */
export class Logs {
  /** Standard output in this page. */
  stdout: string = "";
  /** Standard error in this page. */
  stderr: string = "";
  /** The offset to ask from next. */
  next: f64 = 0;
  /** True while it runs. */
  running: bool = true;
  /** Its exit code once it has exited (-1 before, or after a signal). */
  exitCode: i32 = -1;
}

/** A program running in the background. */
export class Child {
  /** The kernel's handle. */
  readonly handle: u32;
  /** Its process id. */
  readonly pid: i32;
  private since: f64 = 0;

  constructor(handle: u32, pid: i32) {
    this.handle = handle;
    this.pid = pid;
  }

  /** What it wrote since the last read (up to the host's page size), and whether it runs. */
  readLogs(): Result<Logs> {
    const req = Request.reset().u32(this.handle).str('{"since":' + (<u64>this.since).toString() + "}");
    const reply = Reply.of(process_read_logs(req.ptr, req.len));
    if (!reply.ok) return reply.fail<Logs>("process.readLogs");
    const o = new ObjectScan(reply.text());
    const logs = new Logs();
    const chunks = o.raw("chunks");
    if (chunks !== null) {
      const items = arrayItems(chunks);
      for (let i = 0; i < items.length; i++) {
        const c = new ObjectScan(items[i]);
        const text = c.str("text");
        if (text === null) continue;
        const stream = c.str("stream");
        if (stream !== null && stream == "stderr") logs.stderr += text;
        else logs.stdout += text;
      }
    }
    logs.next = o.num("next");
    this.since = logs.next;
    logs.running = o.bool("running");
    const exit = o.raw("exit");
    if (exit !== null && exit != "null") {
      const e = new ObjectScan(exit);
      const code = e.raw("code");
      if (code !== null && code != "null") logs.exitCode = <i32>e.num("code");
    }
    return Result.ok<Logs>(logs);
  }

  /** Sends `signal` (default `SIGTERM`); true while it still runs. */
  kill(signal: string = "SIGTERM"): Result<bool> {
    const req = Request.reset().u32(this.handle).str(signal);
    const reply = Reply.of(process_kill(req.ptr, req.len));
    if (!reply.ok) return reply.fail<bool>("process.kill");
    return Result.ok<bool>(new ObjectScan(reply.text()).bool("running"));
  }
}

/** Starts `cmd` in the background (needs `allow_persistent`). */
export function spawn(cmd: Command): Result<Child> {
  const req = Request.reset().str(cmd.toJson());
  const reply = Reply.of(process_spawn_background(req.ptr, req.len));
  if (!reply.ok) return reply.fail<Child>("process.spawn");
  const o = new ObjectScan(reply.text());
  return Result.ok<Child>(new Child(<u32>o.num("handle"), <i32>o.num("pid")));
}
