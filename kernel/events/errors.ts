/**
 * Errors of the event bus.
 *
 * @module
 */
import { AstridError } from "../errors.ts";

/** Codes raised by `kernel/events/`. */
export const BusCode = {
  /** A topic name is malformed (charset, empty segment, length, a wildcard); `data.topic`, `data.reason`. */
  BUS_INVALID_TOPIC: "BUS_INVALID_TOPIC",
  /** A topic pattern is malformed (e.g. `*` inside a segment); `data.pattern`, `data.reason`. */
  BUS_INVALID_PATTERN: "BUS_INVALID_PATTERN",
  /** A payload is not JSON-serialisable or exceeds the bus limit; `data.topic`, `data.reason`, `data.limit`. */
  BUS_INVALID_PAYLOAD: "BUS_INVALID_PAYLOAD",
  /** A capsule's `[publish]`/`[subscribe]` list does not allow the operation; `data.capsule`, `data.principal`, `data.topic`, `data.op`. */
  BUS_ACL_DENIED: "BUS_ACL_DENIED",
  /** `request()` was answered Deny by an interceptor; `data.topic`, `data.reason`, `data.by` (interceptor name). */
  BUS_DENIED: "BUS_DENIED",
  /** `request()` got no correlated reply in time; `data.topic`, `data.request_id`, `data.timeout_ms`. */
  BUS_REQUEST_TIMEOUT: "BUS_REQUEST_TIMEOUT",
  /** `recv()`/`poll()` on a closed subscription, or a pending `recv()` when it closed; `data.subscriber`, `data.pattern`. */
  BUS_SUBSCRIPTION_CLOSED: "BUS_SUBSCRIPTION_CLOSED",
  /** An interceptor threw, timed out or returned a malformed outcome (logged; the abort reason of a timed-out handler); `data.by`, `data.topic`, `data.reason`. */
  BUS_INTERCEPTOR_FAILED: "BUS_INTERCEPTOR_FAILED",
  /** The bus was closed: publishing is refused and pending requests are rejected; `data.topic` when publishing. */
  BUS_CLOSED: "BUS_CLOSED",
  /** An option is out of range (budget, quantum, priority, timeout); `data.field`, `data.value`. */
  BUS_INVALID_OPTION: "BUS_INVALID_OPTION",
} as const;

/** A code of {@link BusCode}. */
export type BusCode = typeof BusCode[keyof typeof BusCode];

/** Structured detail carried by a {@link BusError}. */
export interface BusErrorData {
  /** The topic involved, if any. */
  topic?: string;
  /** The pattern involved, if any. */
  pattern?: string;
  /** Why the value was refused. */
  reason?: string;
  /** The limit that was exceeded, beside the value. */
  limit?: number;
  /** The capsule whose ACL refused the operation. */
  capsule?: string;
  /** The principal the operation was made for. */
  principal?: string;
  /** The refused operation. */
  op?: "publish" | "subscribe";
  /** The interceptor that answered Deny. */
  by?: string;
  /** The request id of a timed-out request. */
  request_id?: string;
  /** The timeout that elapsed, in milliseconds. */
  timeout_ms?: number;
  /** The subscriber of a closed subscription. */
  subscriber?: string;
  /** The option field that is out of range. */
  field?: string;
  /** The refused option value. */
  value?: string | number;
}

/** Raised by the event bus; callers branch on `code`. */
export class BusError extends AstridError<BusCode, BusErrorData> {}
