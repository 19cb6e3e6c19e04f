/**
 * What AssemblyScript's runtime imports from `env` (`abort`, `seed`, `trace`), implemented
 * over the host ABI. The capsule compiler aliases the globals here (`asc --use
 * abort=…`), so a compiled capsule imports only from `astrid`.
 */
import { log, random_bytes, clock_ms } from "./abi";
import { Request } from "./request";
import { Reply, replyU64 } from "./reply";

let aborting = false;

/** Writes one log line; failures are ignored (logging never fails a capsule). */
export function writeLog(level: string, message: string): void {
  const req = Request.reset().str(level).str(message);
  Reply.of(log(req.ptr, req.len));
}

/** `abort`: logs the message and where it came from at `error` level, then traps. */
export function astridAbort(
  message: string | null = null,
  fileName: string | null = null,
  line: u32 = 0,
  column: u32 = 0,
): void {
  if (!aborting) {
    aborting = true;
    let text = message !== null ? message : "Aborted";
    if (fileName !== null) {
      text += " (" + fileName + ":" + line.toString() + ":" + column.toString() + ")";
    }
    writeLog("error", text);
  }
  unreachable();
}

/** `seed`: 8 random bytes from the host's CSPRNG for `Math.random`. */
export function astridSeed(): f64 {
  const req = Request.reset().u32(8);
  const reply = Reply.of(random_bytes(req.ptr, req.len));
  if (reply.ok && reply.bodyLen >= 8) return reinterpret<f64>(reply.u64());
  return <f64>replyU64(clock_ms(0, 0));
}

/** `trace`: a `trace`-level log line with up to five numbers. */
export function astridTrace(
  message: string,
  n: i32 = 0,
  a0: f64 = 0,
  a1: f64 = 0,
  a2: f64 = 0,
  a3: f64 = 0,
  a4: f64 = 0,
): void {
  let text = message;
  if (n > 0) text += " " + a0.toString();
  if (n > 1) text += ", " + a1.toString();
  if (n > 2) text += ", " + a2.toString();
  if (n > 3) text += ", " + a3.toString();
  if (n > 4) text += ", " + a4.toString();
  writeLog("trace", text);
}
