/**
 * Uplinks bridge an outside frontend (a chat app, a socket) to the bus: `register` an
 * `[[uplink]]` of the manifest, then `send` each outside user's message as a `user.v1.prompt`
 * for the principal the identity store links to that user (the kernel stamps it; a principal
 * in the payload is dropped). Call `runtime.signalReady()` once serving. Needs
 * `[capabilities] uplink = true` and `[publish] "user.v1.prompt"`. Errors: `DENIED`,
 * `NOT_FOUND` (undeclared uplink, unlinked user), `CONFLICT`, `INVALID_ARGUMENT`.
 */
import { uplink_register, uplink_send } from "./internal/abi";
import { Request } from "./internal/request";
import { Reply } from "./internal/reply";
import { ObjectScan, quote } from "./internal/scan";
import { Result } from "./result";

/** What a send did. */
export class Sent {
  /** The published message's id. */
  id: string = "";
  /** The principal it acts for. */
  principal: string = "";
  /** The session it went to. */
  session: string = "";
  /** The publish outcome (`delivered`, `final`). */
  outcome: string = "";
}

/** Registers uplink `name` (declared in `[[uplink]]` with this `platform`). */
export function register(name: string, platform: string): Result<string> {
  const req = Request.reset().str(name).str(platform);
  const reply = Reply.of(uplink_register(req.ptr, req.len));
  if (!reply.ok) return reply.fail<string>("uplink.register");
  return Result.ok<string>(reply.text());
}

/**
 * Sends a message from `platformUserId` through uplink `uplinkName`: `payloadJson` is the
 * prompt (a JSON object, e.g. `{"text":"hi"}`); `session` suffixes the session id.
 */
export function send(
  uplinkName: string,
  platformUserId: string,
  payloadJson: string,
  session: string = "",
  requestId: string = "",
): Result<Sent> {
  let options = "{";
  if (session.length > 0) options += '"session":' + quote(session);
  if (requestId.length > 0) options += (session.length > 0 ? "," : "") + '"request_id":' + quote(requestId);
  options += "}";
  const req = Request.reset()
    .str(uplinkName).str(platformUserId).str(payloadJson).str(options);
  const reply = Reply.of(uplink_send(req.ptr, req.len));
  if (!reply.ok) return reply.fail<Sent>("uplink.send");
  const o = new ObjectScan(reply.text());
  const s = new Sent();
  const id = o.str("id");
  if (id !== null) s.id = id;
  const principal = o.str("principal");
  if (principal !== null) s.principal = principal;
  const sess = o.str("session");
  if (sess !== null) s.session = sess;
  const outcome = o.str("outcome");
  if (outcome !== null) s.outcome = outcome;
  return Result.ok<Sent>(s);
}
