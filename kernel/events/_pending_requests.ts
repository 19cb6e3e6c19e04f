/**
 * Folder-private: the requests `EventBus.request()` is waiting on, keyed by `request_id`, with
 * their timeouts and abort signals.
 *
 * @module
 */
import type { PrincipalId } from "../identity/mod.ts";
import type { BusMessage } from "./bus_message.ts";
import type { BusMetrics } from "./bus_metrics.ts";
import { BusCode, BusError } from "./errors.ts";
import type { TimerHandle, Timers } from "./timers.ts";

/** One awaited request; settling it twice is a no-op. */
export interface PendingRequest {
  /** The request's topic. */
  readonly topic: string;
  /** Where its replies are expected. */
  readonly replyTo: string;
  /** The principal it was published for; replies must carry it (or come from the kernel). */
  readonly principal: PrincipalId;
  /** Settles with the reply. */
  resolve(msg: BusMessage): void;
  /** Settles with an error. */
  reject(err: unknown): void;
}

/** What {@link PendingRequests.open} needs to know about a request. */
export interface OpenRequest {
  /** The fresh request id. */
  readonly requestId: string;
  /** The request's topic. */
  readonly topic: string;
  /** The reply topic. */
  readonly replyTo: string;
  /** The requester's principal. */
  readonly principal: PrincipalId;
  /** How long to wait. */
  readonly timeoutMs: number;
  /** Aborting rejects with its reason. */
  readonly signal?: AbortSignal;
}

/** The requests waiting for a reply. */
export class PendingRequests {
  readonly #timers: Timers;
  readonly #metrics: BusMetrics;
  readonly #byId = new Map<string, PendingRequest>();

  /** Creates an empty table that times requests out through `timers`. */
  constructor(timers: Timers, metrics: BusMetrics) {
    this.#timers = timers;
    this.#metrics = metrics;
  }

  /** Requests waiting now. */
  get size(): number {
    return this.#byId.size;
  }

  /** Registers a request; the promise settles through the returned entry or a timeout. */
  open(init: OpenRequest): { pending: PendingRequest; promise: Promise<BusMessage> } {
    const { requestId, topic, timeoutMs, signal } = init;
    const byId = this.#byId;
    const timers = this.#timers;
    let pending!: PendingRequest;
    const promise = new Promise<BusMessage>((resolve, reject) => {
      let timer: TimerHandle | undefined;
      const onAbort = () => pending.reject(signal?.reason);
      const finish = (): boolean => {
        if (byId.get(requestId) !== pending) return false;
        byId.delete(requestId);
        if (timer !== undefined) timers.clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        return true;
      };
      pending = {
        topic,
        replyTo: init.replyTo,
        principal: init.principal,
        resolve: (msg) => {
          if (finish()) resolve(msg);
        },
        reject: (err) => {
          if (finish()) reject(err);
        },
      };
      byId.set(requestId, pending);
      signal?.addEventListener("abort", onAbort, { once: true });
      timer = timers.setTimeout(() => {
        timer = undefined;
        if (byId.get(requestId) !== pending) return;
        this.#metrics.requestTimeouts++;
        pending.reject(
          new BusError(
            BusCode.BUS_REQUEST_TIMEOUT,
            `Request on topic "${topic}" got no reply in ${timeoutMs} ms: request_id "${requestId}"`,
            { data: { topic, request_id: requestId, timeout_ms: timeoutMs } },
          ),
        );
      }, timeoutMs);
    });
    return { pending, promise };
  }

  /** Settles the request `msg` answers: same `request_id`, on its reply topic, same principal or the kernel's. */
  match(msg: BusMessage): void {
    const p = this.#byId.get(msg.request_id as string);
    if (p === undefined || msg.topic !== p.replyTo) return;
    if (msg.principal !== p.principal && msg.source.kind !== "kernel") return;
    p.resolve(msg);
  }

  /** Rejects every waiting request with `errorFor(topic)`. */
  rejectAll(errorFor: (topic: string) => unknown): void {
    for (const p of [...this.#byId.values()]) p.reject(errorFor(p.topic));
  }
}
