/**
 * What this capsule may do, from its own manifest (nothing is recorded): `check` one
 * capability (and target) before trying, or list them all.
 */
import { check_capsule_capability, enumerate_capabilities } from "./internal/abi";
import { Request } from "./internal/request";
import { Reply } from "./internal/reply";
import { ObjectScan, quote } from "./internal/scan";
import { Result } from "./result";

/** A capability check's answer. */
export class Check {
  /** True when the manifest grants it. */
  allowed: bool = false;
  /** Why not, when refused. */
  reason: string = "";
}

/**
 * Whether the manifest grants `capability` (`fs_read`, `fs_write`, `net`, `net_bind`,
 * `host_process`, `publish`, `subscribe` with a `target`; `kv`, `http`, `approval`, … alone;
 * `identity` with `target` as the level).
 */
export function check(capability: string, target: string = ""): Result<Check> {
  let json = '{"capability":' + quote(capability);
  if (target.length > 0) {
    json += (capability == "identity" ? ',"level":' : ',"target":') + quote(target);
  }
  json += "}";
  const req = Request.reset().str(json);
  const reply = Reply.of(check_capsule_capability(req.ptr, req.len));
  if (!reply.ok) return reply.fail<Check>("security.check");
  const o = new ObjectScan(reply.text());
  const c = new Check();
  c.allowed = o.bool("allowed");
  const reason = o.str("reason");
  if (reason !== null) c.reason = reason;
  return Result.ok<Check>(c);
}

/** Every capability the manifest grants, as JSON text (`docs/host_abi.md`). */
export function capabilitiesJson(): Result<string> {
  const reply = Reply.of(enumerate_capabilities(0, 0));
  if (!reply.ok) return reply.fail<string>("security.capabilities");
  return Result.ok<string>(reply.text());
}
