/**
 * Interceptors: handlers bound to a topic pattern (strict semantics: every `*` is one segment)
 * that run, lowest priority first, before a message is delivered, and may let it through
 * (optionally changed), answer it themselves or refuse it.
 *
 * Failure policy: an interceptor that throws, times out or returns a malformed outcome is
 * logged and counted; a guard (by default any priority below 100) then fails closed (the
 * publish is denied), any other interceptor is skipped and the chain goes on.
 *
 * @module
 */
import type { BusContext, BusMessage, MessageSource } from "./bus_message.ts";
import type { BusLogger } from "./bus_logger.ts";
import type { BusMetrics } from "./bus_metrics.ts";
import type { PrincipalId } from "../identity/mod.ts";
import { BusCode, BusError } from "./errors.ts";
import { type PayloadInput, type SizedPayload, toPayload } from "./payload.ts";
import type { Timers } from "./timers.ts";
import type { TopicPattern } from "./topic.ts";

/** The default interceptor priority; lower runs first. */
export const DEFAULT_PRIORITY = 100;
/** The default time an interceptor may take before it counts as failed. */
export const DEFAULT_INTERCEPTOR_TIMEOUT_MS = 30_000;

/** What an interceptor answers. */
export type InterceptorOutcome =
  /** Let the message go on, with `payload` replacing its payload when given. */
  | { readonly action: "continue"; readonly payload?: PayloadInput }
  /** Stop: nothing is delivered; the publisher receives `reply`. */
  | { readonly action: "final"; readonly reply?: PayloadInput }
  /** Stop: nothing is delivered; the publisher receives `reason`. */
  | { readonly action: "deny"; readonly reason: string };

/** What a handler receives beside the message. */
export interface InterceptorCall {
  /** Aborted when the handler's time is up; its reason is a `BUS_INTERCEPTOR_FAILED` error. */
  readonly signal: AbortSignal;
}

/** An interceptor's code; may be async. */
export type InterceptorHandler = (
  msg: BusMessage,
  call: InterceptorCall,
) => InterceptorOutcome | Promise<InterceptorOutcome>;

/** Options of `EventBus.intercept()`. */
export interface InterceptOptions {
  /** Who binds it; a capsule's subscribe list must cover the pattern. Default: the kernel. */
  ctx?: BusContext;
  /** A name for logs and outcomes; default `<kind>:<name>@<pattern>`. */
  name?: string;
  /** Lower runs first; default {@link DEFAULT_PRIORITY}; equal priorities run in registration order. */
  priority?: number;
  /** Fail closed when it fails; default `priority < DEFAULT_PRIORITY`. */
  guard?: boolean;
  /** Time allowed per call; default the bus's `interceptorTimeoutMs`. */
  timeoutMs?: number;
  /**
   * Only messages of this principal reach it: for any other principal's message it is not in
   * the chain at all (neither invoked nor counted in a delivered publish's `handlers`).
   */
  principal?: PrincipalId;
}

/** A registered interceptor. */
export interface Interceptor {
  /** Its name, as reported in outcomes and logs. */
  readonly name: string;
  /** The binding pattern (strict semantics). */
  readonly pattern: string;
  /** Its priority. */
  readonly priority: number;
  /** True when it fails closed. */
  readonly guard: boolean;
  /** Time allowed per call. */
  readonly timeoutMs: number;
  /** The only principal whose messages it sees, when scoped. */
  readonly principal: PrincipalId | undefined;
  /** True once removed. */
  readonly closed: boolean;
  /** Removes it; messages already in its chain may still reach it. */
  close(): void;
}

/** Returns `value` when it is a well-formed {@link InterceptorOutcome}, else why it is not. */
export function checkOutcome(value: unknown): InterceptorOutcome | string {
  if (typeof value !== "object" || value === null) return "the outcome is not an object";
  const action = (value as { action?: unknown }).action;
  if (action === "continue" || action === "final") return value as InterceptorOutcome;
  if (action === "deny") {
    const reason = (value as { reason?: unknown }).reason;
    return typeof reason === "string" ? value as InterceptorOutcome : "a deny has no reason";
  }
  return `unknown action "${String(action)}"`;
}

/** Folder-internal: a registered interceptor. */
export class InterceptorEntry implements Interceptor {
  /** True once removed. */
  closed = false;

  /** Creates an entry; `remove` takes it out of its bus. */
  constructor(
    readonly name: string,
    readonly parsed: TopicPattern,
    readonly owner: MessageSource,
    readonly priority: number,
    readonly guard: boolean,
    readonly timeoutMs: number,
    readonly seq: number,
    readonly handler: InterceptorHandler,
    readonly remove: (entry: InterceptorEntry) => void,
    readonly principal: PrincipalId | undefined = undefined,
  ) {}

  /** The binding pattern as written. */
  get pattern(): string {
    return this.parsed.source;
  }

  /** Removes it from its bus. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.remove(this);
  }
}

/** Folder-internal: what running a chain needs from the bus. */
export interface ChainEnv {
  /** Schedules per-call timeouts. */
  readonly timers: Timers;
  /** Receives every failure. */
  readonly logger: BusLogger;
  /** Counts failures. */
  readonly metrics: BusMetrics;
  /** The payload limit a changed payload or a reply must respect. */
  readonly maxPayloadBytes: number;
}

/** Folder-internal: how a chain ended. */
export type ChainResult =
  | { readonly outcome: "continue"; readonly message: BusMessage }
  | {
    readonly outcome: "final";
    readonly message: BusMessage;
    readonly reply?: SizedPayload;
    readonly by: InterceptorEntry;
  }
  | {
    readonly outcome: "denied";
    readonly message: BusMessage;
    readonly reason: string;
    readonly by: InterceptorEntry;
  };

class InterceptorFailure {
  constructor(readonly reason: string, readonly cause?: unknown) {}
}

/**
 * Folder-internal: runs `chain` (already in priority order) on `first`, applying the failure
 * policy: a failed guard denies, any other failed interceptor is skipped; each failure is
 * logged and counted.
 */
export async function runChain(
  first: BusMessage,
  chain: readonly InterceptorEntry[],
  env: ChainEnv,
): Promise<ChainResult> {
  let msg = first;
  for (const ic of chain) {
    if (ic.closed) continue;
    if (ic.principal !== undefined && ic.principal !== msg.principal) continue;
    let outcome = await invoke(ic, msg, env.timers);
    let sized: SizedPayload | undefined;
    if (!(outcome instanceof InterceptorFailure)) {
      try {
        if (outcome.action === "continue" && outcome.payload !== undefined) {
          sized = toPayload(outcome.payload, msg.topic, env.maxPayloadBytes);
        } else if (outcome.action === "final" && outcome.reply !== undefined) {
          sized = toPayload(outcome.reply, msg.reply_to ?? msg.topic, env.maxPayloadBytes);
        }
      } catch (err) {
        outcome = new InterceptorFailure(`returned an invalid payload: ${errorText(err)}`, err);
      }
    }
    if (outcome instanceof InterceptorFailure) {
      env.metrics.interceptorFailures++;
      env.logger.error(
        `Interceptor "${ic.name}" failed on topic "${msg.topic}": ${outcome.reason}; ${
          ic.guard ? "denying (guard, fails closed)" : "skipping it (fails open)"
        }`,
        {
          interceptor: ic.name,
          topic: msg.topic,
          message_id: msg.id,
          principal: msg.principal,
          guard: ic.guard,
          reason: outcome.reason,
        },
      );
      if (!ic.guard) continue;
      return {
        outcome: "denied",
        message: msg,
        reason: `Interceptor "${ic.name}" failed: ${outcome.reason}`,
        by: ic,
      };
    }
    if (outcome.action === "continue") {
      if (sized !== undefined) msg = { ...msg, payload: sized.payload, size: sized.size };
      continue;
    }
    if (outcome.action === "deny") {
      return { outcome: "denied", message: msg, reason: outcome.reason, by: ic };
    }
    return { outcome: "final", message: msg, reply: sized, by: ic };
  }
  return { outcome: "continue", message: msg };
}

/** Calls one handler under its timeout; never rejects. */
function invoke(
  ic: InterceptorEntry,
  msg: BusMessage,
  timers: Timers,
): Promise<InterceptorOutcome | InterceptorFailure> {
  const controller = new AbortController();
  let result: InterceptorOutcome | Promise<InterceptorOutcome>;
  try {
    result = ic.handler(msg, { signal: controller.signal });
  } catch (err) {
    return Promise.resolve(new InterceptorFailure(`threw: ${errorText(err)}`, err));
  }
  if (typeof (result as { then?: unknown } | null)?.then !== "function") {
    return Promise.resolve(checked(result));
  }
  const promise = result as Promise<InterceptorOutcome>;
  return new Promise((resolve) => {
    let done = false;
    const timer = timers.setTimeout(() => {
      if (done) return;
      done = true;
      const reason = `timed out after ${ic.timeoutMs} ms`;
      controller.abort(
        new BusError(BusCode.BUS_INTERCEPTOR_FAILED, `Interceptor "${ic.name}" ${reason}`, {
          data: { by: ic.name, topic: msg.topic, reason },
        }),
      );
      resolve(new InterceptorFailure(reason));
    }, ic.timeoutMs);
    promise.then((value) => {
      if (done) return;
      done = true;
      timers.clearTimeout(timer);
      resolve(checked(value));
    }, (err) => {
      if (done) return;
      done = true;
      timers.clearTimeout(timer);
      resolve(new InterceptorFailure(`threw: ${errorText(err)}`, err));
    });
  });
}

function checked(value: unknown): InterceptorOutcome | InterceptorFailure {
  const r = checkOutcome(value);
  return typeof r === "string" ? new InterceptorFailure(`returned a malformed outcome: ${r}`) : r;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
