/**
 * The `ipc` host functions: publish, subscribe, blocking receive, poll and unsubscribe over the
 * event bus, through the capsule's own bus handle (`services.bus`), so the bus applies the
 * capsule's `[publish]`/`[subscribe]` ACL and stamps the principal of the invocation — never
 * one the guest names. Subscriptions live in the (capsule, principal) handle table
 * (`services.handles`, kind `subscription`, at most `limits.maxHandlesPerKind` open) and close
 * when the capsule unloads.
 *
 * Reads: the handle table. Writes: bus messages, the handle table. Fails with
 * `INVALID_ARGUMENT` (bad topic, pattern, JSON or option), `DENIED` (ACL, an interceptor's
 * Deny), `LIMIT_EXCEEDED` (payload over the bus limit, too many subscriptions), `NOT_FOUND`
 * (unknown handle), `TIMEOUT`, `CANCELLED`, `CLOSED` (the subscription was closed),
 * `UNAVAILABLE` (the bus is closed).
 *
 * Also the helpers the other bus-backed subsystems (`uplink`, `lifecycle`, `hooks`) share:
 * {@link hostErrorFromBus}, {@link messageEnvelope}, {@link callDeadline}, {@link HOST_TIMERS}.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  BusError,
  type BusMessage,
  type JsonValue,
  type Payload,
  type PublishResult,
  type RoutedSubscription,
  systemTimers,
  type Timers,
  validatePattern,
  validateTopic,
} from "../kernel/events/mod.ts";
import type { PrincipalId } from "../kernel/identity/mod.ts";
import type { RequestReader } from "./encoding.ts";
import {
  defineHostFunction,
  type HostCallContext,
  type HostFunctionRow,
  serviceKey,
} from "./host_function.ts";
import { HostCallError, HostStatus } from "./status.ts";

/** The handle-table kind of bus subscriptions. */
export const SUBSCRIPTION_HANDLE = "subscription";
/** The longest `ipc_recv` wait, ms (also what `timeout_ms = 0` means). */
export const MAX_RECV_TIMEOUT_MS = 300_000;
/** The longest `request_id`, characters. */
export const MAX_REQUEST_ID_CHARS = 128;

/**
 * Timers blocking host functions schedule their deadlines with; the registry may provide them
 * (tests pass `ManualTimers`), otherwise the real timers are used.
 */
export const HOST_TIMERS = serviceKey<Timers>("timers");

/** The timers of `call`: {@link HOST_TIMERS} when provided, else the real timers. */
export function hostTimers(call: HostCallContext): Timers {
  try {
    return call.services.get(HOST_TIMERS);
  } catch {
    return systemTimers;
  }
}

/** A deadline for one blocking wait: aborts on the call's signal or after `timeoutMs`. */
export interface CallDeadline {
  /** Aborted when the invocation ends or the time is up. */
  readonly signal: AbortSignal;
  /** True once the time ran out (rather than the invocation ending). */
  readonly timedOut: boolean;
  /** Cancels the timer and the link to the call's signal; call it when the wait ends. */
  clear(): void;
  /**
   * The `HostCallError` for a wait that ended by this deadline (`TIMEOUT` naming `what`, or
   * `CANCELLED`), or `err` itself when it ended otherwise.
   */
  explain(err: unknown, what: string): unknown;
}

/** Starts a {@link CallDeadline} of `timeoutMs` for `call`. */
export function callDeadline(call: HostCallContext, timeoutMs: number): CallDeadline {
  const controller = new AbortController();
  const timers = hostTimers(call);
  let timedOut = false;
  const onAbort = () => controller.abort(call.signal.reason);
  if (call.signal.aborted) controller.abort(call.signal.reason);
  else call.signal.addEventListener("abort", onAbort, { once: true });
  const handle = timers.setTimeout(() => {
    timedOut = true;
    controller.abort(new HostCallError(HostStatus.TIMEOUT, "Timed out"));
  }, timeoutMs);
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    clear() {
      timers.clearTimeout(handle);
      call.signal.removeEventListener("abort", onAbort);
    },
    explain(err: unknown, what: string): unknown {
      if (timedOut) {
        return new HostCallError(
          HostStatus.TIMEOUT,
          `Timed out waiting for ${what} after ${timeoutMs} ms`,
        );
      }
      if (call.signal.aborted) {
        return new HostCallError(
          HostStatus.CANCELLED,
          `Cancelled while waiting for ${what}: the invocation ended`,
        );
      }
      return err;
    },
  };
}

/**
 * Turns a bus error into the `HostCallError` the guest sees (its message names topics and
 * patterns only); any other error is returned unchanged.
 */
export function hostErrorFromBus(err: unknown): unknown {
  if (!(err instanceof BusError)) return err;
  const status = (() => {
    switch (err.code) {
      case "BUS_ACL_DENIED":
      case "BUS_DENIED":
        return HostStatus.DENIED;
      case "BUS_INVALID_PAYLOAD":
        return (err.data as { reason?: string } | undefined)?.reason === "too large"
          ? HostStatus.LIMIT_EXCEEDED
          : HostStatus.INVALID_ARGUMENT;
      case "BUS_REQUEST_TIMEOUT":
        return HostStatus.TIMEOUT;
      case "BUS_SUBSCRIPTION_CLOSED":
        return HostStatus.CLOSED;
      case "BUS_CLOSED":
        return HostStatus.UNAVAILABLE;
      case "BUS_INVALID_TOPIC":
      case "BUS_INVALID_PATTERN":
      case "BUS_INVALID_OPTION":
        return HostStatus.INVALID_ARGUMENT;
      default:
        return HostStatus.INTERNAL;
    }
  })();
  if (status === HostStatus.INTERNAL) return err;
  return new HostCallError(status, err.message, { cause: err });
}

/** Runs `fn`, rethrowing bus errors as the guest's statuses ({@link hostErrorFromBus}). */
export async function viaBus<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw hostErrorFromBus(err);
  }
}

/**
 * A bus message as a guest receives it (JSON): the envelope fields, then `payload_kind` and
 * `payload` — the JSON value itself, or the bytes in standard base64 for `bytes`.
 */
export interface MessageEnvelope {
  /** The message id. */
  readonly id: string;
  /** The topic. */
  readonly topic: string;
  /** The principal the message acts for (kernel-stamped). */
  readonly principal: string;
  /** Who published it: `<kind>:<name>`, e.g. `capsule:orchestrator`. */
  readonly source: string;
  /** ms since the epoch. */
  readonly timestamp: number;
  /** Correlation id, when set. */
  readonly request_id?: string;
  /** Where replies go, when set. */
  readonly reply_to?: string;
  /** True on a stream's last message. */
  readonly end_of_stream: boolean;
  /** `json` or `bytes`. */
  readonly payload_kind: "json" | "bytes";
  /** The JSON value, or base64 text of the bytes. */
  readonly payload: JsonValue;
}

/** The {@link MessageEnvelope} of `msg`. */
export function messageEnvelope(msg: BusMessage): MessageEnvelope {
  return {
    id: msg.id,
    topic: msg.topic,
    principal: msg.principal,
    source: `${msg.source.kind}:${msg.source.name}`,
    timestamp: msg.timestamp,
    ...(msg.request_id === undefined ? {} : { request_id: msg.request_id }),
    ...(msg.reply_to === undefined ? {} : { reply_to: msg.reply_to }),
    end_of_stream: msg.end_of_stream,
    ...payloadFields(msg.payload),
  };
}

/** `payload_kind` and `payload` of {@link MessageEnvelope} for `payload`. */
export function payloadFields(
  payload: Payload,
): { payload_kind: "json" | "bytes"; payload: JsonValue } {
  return payload.kind === "json"
    ? { payload_kind: "json", payload: payload.value }
    : { payload_kind: "bytes", payload: Buffer.from(payload.bytes).toString("base64") };
}

/** Reads an optional trailing JSON-object field (absent or empty: `{}`). */
export function optionalObject(req: RequestReader, field: string): Record<string, unknown> {
  if (req.remaining === 0) return {};
  const raw = req.bytes(field);
  if (raw.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
  } catch (cause) {
    throw new HostCallError(
      HostStatus.INVALID_ARGUMENT,
      `Field "${field}" is not valid JSON: ${(cause as Error).message}`,
      { field, cause },
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HostCallError(HostStatus.INVALID_ARGUMENT, `Field "${field}" must be a JSON object`, {
      field,
    });
  }
  return value as Record<string, unknown>;
}

/** Throws `INVALID_ARGUMENT` unless `topic` is a valid concrete topic. */
export function checkTopic(topic: string, field = "topic"): string {
  try {
    validateTopic(topic);
  } catch (err) {
    throw new HostCallError(HostStatus.INVALID_ARGUMENT, (err as Error).message, {
      field,
      cause: err,
    });
  }
  return topic;
}

/** Encodes JSON `value` as a reply body. */
export function jsonBody(value: unknown): string {
  return JSON.stringify(value);
}

/** Encodes `n` as a 4-byte little-endian body. */
export function u32Body(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, true);
  return out;
}

/** Parses `text` as JSON for a request field, answering `INVALID_ARGUMENT` naming it. */
export function parseJsonField(text: string, field: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (cause) {
    throw new HostCallError(
      HostStatus.INVALID_ARGUMENT,
      `Field "${field}" is not valid JSON: ${(cause as Error).message}`,
      { field, cause },
    );
  }
}

function optionString(
  options: Record<string, unknown>,
  name: string,
  max: number,
): string | undefined {
  const v = options[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v.length === 0 || v.length > max || !v.isWellFormed()) {
    throw new HostCallError(
      HostStatus.INVALID_ARGUMENT,
      `Option "${name}" must be a string of 1 to ${max} characters`,
      { field: "options" },
    );
  }
  return v;
}

function optionBool(options: Record<string, unknown>, name: string): boolean | undefined {
  const v = options[name];
  if (v === undefined || typeof v === "boolean") return v;
  throw new HostCallError(HostStatus.INVALID_ARGUMENT, `Option "${name}" must be true or false`, {
    field: "options",
  });
}

function optionEnum<T extends string>(
  options: Record<string, unknown>,
  name: string,
  allowed: readonly T[],
): T | undefined {
  const v = options[name];
  if (v === undefined) return undefined;
  if (typeof v === "string" && (allowed as readonly string[]).includes(v)) return v as T;
  throw new HostCallError(
    HostStatus.INVALID_ARGUMENT,
    `Option "${name}" is "${String(v).slice(0, 64)}": use ${
      allowed.map((a) => `"${a}"`).join(" or ")
    }`,
    { field: "options" },
  );
}

/** Arguments of `ipc_publish`. */
export interface PublishArgs {
  /** The concrete topic. */
  readonly topic: string;
  /** The payload: bytes, or a parsed JSON value. */
  readonly data: Uint8Array | JsonValue;
  /** Correlation id. */
  readonly request_id?: string;
  /** Reply topic. */
  readonly reply_to?: string;
  /** Stream terminator. */
  readonly end_of_stream?: boolean;
  /** Skip the publisher's own interceptors (see the bus's `PublishOptions`). */
  readonly skip_own_interceptors?: boolean;
}

/**
 * What `ipc_publish` answers (JSON): `{id, outcome: "delivered", recipients, handlers}` (how
 * many subscribers it reached and how many capsule handlers ran on it first; both 0: nobody
 * took it), `{id, outcome: "final", by, reply}`, or a `DENIED` error.
 */
export function publishReply(result: PublishResult): Record<string, JsonValue> {
  if (result.outcome === "delivered") {
    return {
      id: result.message.id,
      outcome: "delivered",
      recipients: result.recipients,
      handlers: result.handlers,
    };
  }
  if (result.outcome === "final") {
    return {
      id: result.message.id,
      outcome: "final",
      by: result.by,
      reply: result.reply === undefined
        ? null
        : messageEnvelope(result.reply) as unknown as JsonValue,
    };
  }
  throw new HostCallError(
    HostStatus.DENIED,
    `Publish on "${result.message.topic}" was denied by "${result.by}": ${result.reason}`,
  );
}

/**
 * `ipc_publish(topic, payload, options?)`: publishes on the bus as the capsule, for the
 * invocation's principal. `payload` is JSON text unless `options.format` is `"bytes"`.
 */
export const ipcPublish: HostFunctionRow = defineHostFunction<PublishArgs>({
  name: "ipc_publish",
  subsystem: "ipc",
  doc: "Publishes a message on a topic the capsule's [publish] list covers",
  capabilities: ["publish"],
  parse(req) {
    const topic = checkTopic(req.string("topic"));
    const raw = req.bytes("payload");
    const options = optionalObject(req, "options");
    req.end();
    const format = optionEnum(options, "format", ["json", "bytes"] as const) ?? "json";
    const request_id = optionString(options, "request_id", MAX_REQUEST_ID_CHARS);
    const replyTo = optionString(options, "reply_to", 256);
    if (replyTo !== undefined) checkTopic(replyTo, "options");
    const end_of_stream = optionBool(options, "end_of_stream");
    const skip_own_interceptors = optionBool(options, "skip_own_interceptors");
    let data: Uint8Array | JsonValue;
    if (format === "bytes") {
      data = raw.slice();
    } else {
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
      } catch (cause) {
        throw new HostCallError(HostStatus.INVALID_ARGUMENT, `Field "payload" is not valid UTF-8`, {
          field: "payload",
          cause,
        });
      }
      data = parseJsonField(text, "payload");
    }
    return { topic, data, request_id, reply_to: replyTo, end_of_stream, skip_own_interceptors };
  },
  gate: (args) => ({ capability: "publish", target: args.topic }),
  async run(args, call) {
    const result = await viaBus(() =>
      call.services.bus.publish(args.topic, args.data, {
        request_id: args.request_id,
        reply_to: args.reply_to,
        end_of_stream: args.end_of_stream,
        skip_own_interceptors: args.skip_own_interceptors,
      })
    );
    return jsonBody(publishReply(result));
  },
});

/** Arguments of `ipc_subscribe`. */
export interface SubscribeArgs {
  /** The pattern (subscription semantics). */
  readonly pattern: string;
  /** `principal`: only the invocation's principal's messages; `all` (default): every principal's. */
  readonly scope: "all" | "principal";
}

/**
 * `ipc_subscribe(pattern, options?)`: opens a routed subscription and answers its handle
 * (`u32le`).
 */
export const ipcSubscribe: HostFunctionRow = defineHostFunction<SubscribeArgs>({
  name: "ipc_subscribe",
  subsystem: "ipc",
  doc: "Subscribes to a topic pattern the capsule's [subscribe] list covers; answers a handle",
  capabilities: ["subscribe"],
  parse(req) {
    const pattern = req.string("pattern");
    const options = optionalObject(req, "options");
    req.end();
    try {
      validatePattern(pattern);
    } catch (err) {
      throw new HostCallError(HostStatus.INVALID_ARGUMENT, (err as Error).message, {
        field: "pattern",
        cause: err,
      });
    }
    const scope = optionEnum(options, "scope", ["all", "principal"] as const) ?? "all";
    return { pattern, scope };
  },
  gate: (args) => ({ capability: "subscribe", target: args.pattern }),
  async run(args, call) {
    const handles = call.services.handles;
    const limit = call.limits.maxHandlesPerKind;
    const open = handles.count(SUBSCRIPTION_HANDLE);
    if (open >= limit) {
      throw new HostCallError(
        HostStatus.LIMIT_EXCEEDED,
        `Too many open subscriptions: ${open} (limit ${limit}); unsubscribe some first`,
      );
    }
    const sub = await viaBus(() =>
      call.services.bus.subscribe(
        args.pattern,
        args.scope === "principal"
          ? { principal: call.principal as PrincipalId, exclusive: true }
          : { exclusive: true },
      )
    );
    try {
      return u32Body(handles.add(SUBSCRIPTION_HANDLE, sub, (s) => s.close()));
    } catch (err) {
      sub.close();
      throw err;
    }
  },
});

/** Arguments of `ipc_recv`. */
export interface RecvArgs {
  /** The subscription handle. */
  readonly handle: number;
  /** How long to wait, ms (1 to {@link MAX_RECV_TIMEOUT_MS}). */
  readonly timeoutMs: number;
}

/** The subscription behind `handle` (throws `NOT_FOUND`) and whether it is still open. */
function subscriptionOf(call: HostCallContext, handle: number): RoutedSubscription {
  const sub = call.services.handles.get<RoutedSubscription>(SUBSCRIPTION_HANDLE, handle);
  if (sub.closed) {
    throw new HostCallError(
      HostStatus.CLOSED,
      `Subscription ${handle} to "${sub.pattern}" is closed; unsubscribe it`,
    );
  }
  return sub;
}

/**
 * `ipc_recv(handle: u32, timeout_ms: u32)`: waits for the next message of a subscription and
 * answers its envelope (JSON). `timeout_ms = 0` waits the longest allowed.
 */
export const ipcRecv: HostFunctionRow = defineHostFunction<RecvArgs>({
  name: "ipc_recv",
  subsystem: "ipc",
  doc: "Waits for the next message of a subscription, up to a timeout",
  capabilities: [],
  parse(req) {
    const handle = req.u32("handle");
    const requested = req.u32("timeout_ms");
    req.end();
    if (requested > MAX_RECV_TIMEOUT_MS) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Field "timeout_ms" is ${requested}: the limit is ${MAX_RECV_TIMEOUT_MS}`,
        { field: "timeout_ms" },
      );
    }
    return { handle, timeoutMs: requested === 0 ? MAX_RECV_TIMEOUT_MS : requested };
  },
  gate: () => null,
  async run(args, call) {
    const sub = subscriptionOf(call, args.handle);
    const deadline = callDeadline(call, args.timeoutMs);
    try {
      const msg = await sub.recv({ signal: deadline.signal });
      return jsonBody(messageEnvelope(msg));
    } catch (err) {
      throw hostErrorFromBus(deadline.explain(err, `a message on "${sub.pattern}"`));
    } finally {
      deadline.clear();
    }
  },
});

/** Arguments of `ipc_poll` and `ipc_unsubscribe`. */
export interface HandleArgs {
  /** The subscription handle. */
  readonly handle: number;
}

function parseHandle(req: RequestReader): HandleArgs {
  const handle = req.u32("handle");
  req.end();
  return { handle };
}

/**
 * `ipc_poll(handle: u32)`: the next message's envelope (JSON) without waiting, or an empty
 * body when none is queued.
 */
export const ipcPoll: HostFunctionRow = defineHostFunction<HandleArgs>({
  name: "ipc_poll",
  subsystem: "ipc",
  doc: "Takes the next message of a subscription without waiting (empty body: none)",
  capabilities: [],
  parse: parseHandle,
  gate: () => null,
  run(args, call) {
    try {
      const msg = subscriptionOf(call, args.handle).poll();
      return Promise.resolve(msg === undefined ? undefined : jsonBody(messageEnvelope(msg)));
    } catch (err) {
      return Promise.reject(hostErrorFromBus(err));
    }
  },
});

/** `ipc_unsubscribe(handle: u32)`: closes a subscription and frees its handle. */
export const ipcUnsubscribe: HostFunctionRow = defineHostFunction<HandleArgs>({
  name: "ipc_unsubscribe",
  subsystem: "ipc",
  doc: "Closes a subscription and frees its handle",
  capabilities: [],
  parse: parseHandle,
  gate: () => null,
  async run(args, call) {
    await call.services.handles.remove(SUBSCRIPTION_HANDLE, args.handle);
  },
});

/** The `ipc` rows, in table order. */
export const IPC_FUNCTIONS: readonly HostFunctionRow[] = [
  ipcPublish,
  ipcSubscribe,
  ipcRecv,
  ipcPoll,
  ipcUnsubscribe,
];
