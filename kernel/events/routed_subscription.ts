/**
 * A routed subscription: one subscriber's queue for one pattern, split per principal and
 * drained by deficit round robin under a byte budget.
 *
 * Rules (see `docs/event_bus.md`):
 * - Each principal with queued messages has its own FIFO; an idle principal has none (one
 *   drained FIFO per subscription is kept for reuse, whoever it belonged to).
 * - `recv()`/`poll()` take messages by deficit round robin over the active principals: each
 *   turn adds the quantum (default 4 KiB) to the principal's deficit and hands out its oldest
 *   messages while their cost fits. A message costs its size plus
 *   {@link MESSAGE_OVERHEAD_BYTES}.
 * - After a message is queued, while the queued bytes exceed the budget (default 1 MiB) and
 *   more than one message is queued, one message is evicted: the oldest message of the
 *   principal with the most queued bytes that is not an end-of-stream terminator; if that
 *   principal holds only terminators, its oldest one (whose stream's earlier messages, ahead of
 *   it in the same FIFO, have already left).
 * - Every eviction is counted. The first of an episode is logged at once with subscriber,
 *   principal and topic; the episode's total (with up to 8 principals and topics) is logged
 *   when the subscriber has been told, when the subscription closes, or when an eviction comes
 *   more than {@link EVICTION_LOG_WINDOW_MS} after the episode began (which starts a new one),
 *   so a storm over thousands of principals logs about two lines a second, not one per message.
 * - A subscriber that lost messages gets an `astrid.v1.event_bus.lagged` notice per principal
 *   before its next message; past {@link MAX_PENDING_LAG_NOTICES} pending notices, further
 *   principals share one notice flagged `overflow`. With `onEvict`, it also learns each evicted
 *   message itself, at once.
 *
 * @module
 */
import type { PrincipalId } from "../identity/mod.ts";
import type { BusMessage, MessageSource } from "./bus_message.ts";
import type { BusLogger } from "./bus_logger.ts";
import type { BusMetrics, SubscriptionStats } from "./bus_metrics.ts";
import { BusCode, BusError } from "./errors.ts";
import {
  heapDown,
  heapPush,
  heapRemove,
  heapUp,
  messageCost,
  PrincipalQueue,
} from "./_principal_queue.ts";

/** The topic of the notice a subscriber gets when it lost messages. */
export const LAGGED_TOPIC = "astrid.v1.event_bus.lagged";
/** The default byte budget of a routed subscription. */
export const DEFAULT_BUDGET_BYTES = 1024 * 1024;
/** The default deficit-round-robin quantum. */
export const DEFAULT_QUANTUM_BYTES = 4096;

const MAX_NAMES = 8;

/** Adds `value` to `list` unless present or `list` holds {@link MAX_NAMES} already. */
function addCapped(list: string[], value: string): void {
  if (list.length < MAX_NAMES && !list.includes(value)) list.push(value);
}

/** What is lost for one principal since its last lagged notice. */
export interface LagInfo {
  /** Messages evicted. */
  dropped: number;
  /** Up to 8 distinct topics of the evicted messages. */
  topics: string[];
  /** True when this notice also stands for other principals, once pending notices hit their cap. */
  overflow: boolean;
}

/** Pending lagged notices kept per subscription; further principals share one overflow notice. */
export const MAX_PENDING_LAG_NOTICES = 1024;
/** How long evictions are summed into one log line after the first is logged. */
export const EVICTION_LOG_WINDOW_MS = 1_000;

interface EvictionEpisode {
  start: number;
  evicted: number;
  principals: string[];
  topics: string[];
}

/** Folder-internal: what a subscription needs from the bus that owns it. */
export interface RouteHost {
  /** Bus-wide counters. */
  readonly metrics: BusMetrics;
  /** Where evictions are reported. */
  readonly logger: BusLogger;
  /** The time, for summing evictions into log lines. */
  now(): number;
  /** Builds the lagged notice for `principal`. */
  lagNotice(sub: RoutedSubscription, principal: PrincipalId, info: LagInfo): BusMessage;
  /** Called once when the last handle closes. */
  closed(sub: RoutedSubscription): void;
}

/** Options of a routed subscription. */
export interface RouteOptions {
  /** Byte budget; default {@link DEFAULT_BUDGET_BYTES}. */
  budgetBytes?: number;
  /** Deficit-round-robin quantum; default {@link DEFAULT_QUANTUM_BYTES}. */
  quantumBytes?: number;
  /** Only messages of this principal are queued. */
  principal?: PrincipalId;
  /**
   * Called with each evicted message, once the eviction that made room is complete (so it may
   * publish). A subscriber that owes each message an answer (a detached handler) tells the
   * message's publisher here that none will come; a throw is logged, never propagated.
   */
  onEvict?: (msg: BusMessage) => void;
}

/** Options of `recv()`. */
export interface RecvOptions {
  /** Aborting rejects the pending `recv()` with the signal's reason. */
  signal?: AbortSignal;
}

interface Waiter {
  resolve(msg: BusMessage): void;
  reject(err: unknown): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** A routed subscription; created by `EventBus.subscribe()`, which checks ACLs. */
export class RoutedSubscription {
  /** Unique id of this subscription. */
  readonly id: string;
  /** Who subscribed. */
  readonly subscriber: MessageSource;
  /** The pattern (subscription semantics). */
  readonly pattern: string;
  /** The only principal it receives, when scoped. */
  readonly principal: PrincipalId | undefined;
  /** Byte budget. */
  readonly budgetBytes: number;
  /** Deficit-round-robin quantum. */
  readonly quantumBytes: number;

  readonly #host: RouteHost;
  readonly #onEvict: ((msg: BusMessage) => void) | undefined;
  /** Active queues, plus at most one drained queue kept for reuse ({@link #idle}). */
  readonly #queues = new Map<PrincipalId, PrincipalQueue>();
  #idle: PrincipalQueue | undefined;
  readonly #heap: PrincipalQueue[] = [];
  #current: PrincipalQueue | undefined;
  #bytes = 0;
  #count = 0;
  #waiters: Waiter[] = [];
  #lag: Map<PrincipalId, LagInfo> | undefined;
  #lagOverflow: { principal: PrincipalId; info: LagInfo } | undefined;
  #episode: EvictionEpisode | undefined;
  #refs = 1;
  #closed = false;
  #delivered = 0;
  #evicted = 0;
  #lagged = 0;

  /** Folder-internal; use `EventBus.subscribe()`. */
  constructor(
    id: string,
    init: { subscriber: MessageSource; pattern: string; host: RouteHost } & RouteOptions,
  ) {
    this.id = id;
    this.subscriber = init.subscriber;
    this.pattern = init.pattern;
    this.principal = init.principal;
    this.budgetBytes = init.budgetBytes ?? DEFAULT_BUDGET_BYTES;
    this.quantumBytes = init.quantumBytes ?? DEFAULT_QUANTUM_BYTES;
    this.#host = init.host;
    this.#onEvict = init.onEvict;
  }

  /** True once the last handle closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Messages queued now. */
  get queuedMessages(): number {
    return this.#count;
  }

  /** Bytes queued now, as charged against the budget. */
  get queuedBytes(): number {
    return this.#bytes;
  }

  /** Principals with queued messages now. */
  get activePrincipals(): number {
    return this.#queues.size - (this.#idle === undefined ? 0 : 1);
  }

  /** Folder-internal: another subscribe() of the same key shares this subscription. */
  retain(): this {
    this.#refs++;
    return this;
  }

  /**
   * Folder-internal: queues `msg` (or hands it to a waiting `recv()`), then enforces the budget.
   * Returns false when it did not take it: closed, or another principal's message while scoped.
   */
  enqueue(msg: BusMessage): boolean {
    if (this.#closed) return false;
    if (this.principal !== undefined && msg.principal !== this.principal) return false;
    if (this.#waiters.length > 0) {
      // Waiters exist only while nothing is queued and no notice is pending.
      const w = this.#waiters.shift() as Waiter;
      this.#settle(w);
      this.#handOut();
      w.resolve(msg);
      return true;
    }
    const cost = messageCost(msg);
    const principal = msg.principal;
    const q = this.#queues.get(principal);
    if (q === undefined) {
      const idle = this.#idle;
      let fresh: PrincipalQueue;
      if (idle === undefined) {
        fresh = new PrincipalQueue(principal, msg, cost);
      } else {
        this.#queues.delete(idle.principal);
        this.#idle = undefined;
        idle.reset(principal, msg, cost);
        fresh = idle;
      }
      this.#queues.set(principal, fresh);
      this.#activate(fresh);
    } else if (q === this.#idle) {
      this.#idle = undefined;
      q.push(msg, cost);
      this.#activate(q);
    } else {
      q.push(msg, cost);
      heapUp(this.#heap, q);
    }
    this.#bytes += cost;
    this.#count++;
    if (this.#bytes > this.budgetBytes) this.#evict();
    return true;
  }

  /** Takes the next message without waiting: a pending lagged notice first, else by DRR. */
  poll(): BusMessage | undefined {
    if (this.#closed) throw this.#closedError();
    if (this.#lag !== undefined || this.#lagOverflow !== undefined) return this.#nextNotice();
    if (this.#count === 0) return undefined;
    this.#handOut();
    return this.#take();
  }

  /** Waits for the next message; rejects with `BUS_SUBSCRIPTION_CLOSED` or the abort reason. */
  recv(options: RecvOptions = {}): Promise<BusMessage> {
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    let msg: BusMessage | undefined;
    try {
      msg = this.poll();
    } catch (err) {
      return Promise.reject(err);
    }
    if (msg !== undefined) return Promise.resolve(msg);
    return new Promise<BusMessage>((resolve, reject) => {
      const w: Waiter = { resolve, reject };
      if (signal !== undefined) {
        w.signal = signal;
        w.onAbort = () => {
          const i = this.#waiters.indexOf(w);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      this.#waiters.push(w);
    });
  }

  /** Drops one handle; the last one closes the subscription, discarding what is queued. */
  close(): void {
    if (this.#closed) return;
    if (--this.#refs > 0) return;
    this.#closed = true;
    this.#lag = undefined;
    this.#lagOverflow = undefined;
    this.#closeEpisode();
    this.#queues.clear();
    this.#idle = undefined;
    this.#heap.length = 0;
    this.#current = undefined;
    this.#bytes = 0;
    this.#count = 0;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      this.#settle(w);
      w.reject(this.#closedError());
    }
    this.#host.closed(this);
  }

  /** Closes every handle at once (capsule unload, revoked ACL, bus shutdown). */
  closeAll(): void {
    if (this.#closed) return;
    this.#refs = 1;
    this.close();
  }

  /** Closes this handle (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Gauges and counters of this subscription. */
  stats(): SubscriptionStats {
    return {
      id: this.id,
      subscriber: `${this.subscriber.kind}:${this.subscriber.name}`,
      pattern: this.pattern,
      ...(this.principal === undefined ? {} : { principal: this.principal }),
      queuedMessages: this.#count,
      queuedBytes: this.#bytes,
      budgetBytes: this.budgetBytes,
      activePrincipals: this.activePrincipals,
      delivered: this.#delivered,
      evicted: this.#evicted,
      lagged: this.#lagged,
    };
  }

  #handOut(): void {
    this.#delivered++;
    this.#host.metrics.delivered++;
  }

  #take(): BusMessage {
    const quantum = this.quantumBytes;
    for (;;) {
      const q = this.#current as PrincipalQueue;
      const cost = messageCost(q.peek());
      if (cost <= q.deficit) {
        const msg = q.shift();
        q.deficit -= cost;
        q.bytes -= cost;
        this.#bytes -= cost;
        this.#count--;
        if (q.length === 0) this.#drop(q);
        else heapDown(this.#heap, q);
        return msg;
      }
      const next = q.next;
      next.deficit += quantum;
      this.#current = next;
    }
  }

  /** Puts a queue that just got its first message into the round and the heap. */
  #activate(q: PrincipalQueue): void {
    const cur = this.#current;
    if (cur === undefined) {
      this.#current = q;
      q.deficit = this.quantumBytes;
    } else {
      // Join at the end of the round: just before the queue whose turn it is.
      q.next = cur;
      q.prev = cur.prev;
      cur.prev.next = q;
      cur.prev = q;
    }
    heapPush(this.#heap, q);
  }

  /** Takes a drained queue out of the round and the heap; it becomes the one idle queue kept. */
  #drop(q: PrincipalQueue): void {
    const idle = this.#idle;
    if (idle !== undefined) this.#queues.delete(idle.principal);
    this.#idle = q;
    q.deficit = 0;
    q.shrink();
    heapRemove(this.#heap, q);
    if (q.next === q) {
      this.#current = undefined;
    } else {
      q.prev.next = q.next;
      q.next.prev = q.prev;
      if (this.#current === q) {
        this.#current = q.next;
        q.next.deficit += this.quantumBytes;
      }
    }
    q.next = q;
    q.prev = q;
  }

  #evict(): void {
    let evicted: BusMessage[] | undefined;
    while (this.#bytes > this.budgetBytes && this.#count > 1) {
      const q = this.#heap[0];
      const msg = q.removeAt(q.oldestEvictable());
      const cost = messageCost(msg);
      q.bytes -= cost;
      this.#bytes -= cost;
      this.#count--;
      if (q.length === 0) this.#drop(q);
      else heapDown(this.#heap, q);
      this.#evicted++;
      this.#host.metrics.evicted++;
      this.#noteLoss(msg);
      if (this.#onEvict !== undefined) (evicted ??= []).push(msg);
    }
    if (evicted === undefined) return;
    for (const msg of evicted) {
      try {
        this.#onEvict!(msg);
      } catch (err) {
        this.#host.logger.error("Eviction hook of a routed subscription threw", {
          subscriber: this.#subscriberLabel(),
          subscription: this.id,
          message_id: msg.id,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }

  /** Records a lost message for the subscriber's lagged notice and for the operator's log. */
  #noteLoss(msg: BusMessage): void {
    const principal = msg.principal;
    const lag = this.#lag ??= new Map();
    let info = lag.get(principal);
    if (info === undefined) {
      if (lag.size < MAX_PENDING_LAG_NOTICES) {
        info = { dropped: 0, topics: [], overflow: false };
        lag.set(principal, info);
      } else {
        this.#lagOverflow ??= { principal, info: { dropped: 0, topics: [], overflow: true } };
        info = this.#lagOverflow.info;
      }
    }
    info.dropped++;
    addCapped(info.topics, msg.topic);

    const now = this.#host.now();
    let ep = this.#episode;
    if (ep !== undefined && now - ep.start >= EVICTION_LOG_WINDOW_MS) {
      this.#closeEpisode();
      ep = undefined;
    }
    if (ep !== undefined) {
      ep.evicted++;
      addCapped(ep.principals, principal);
      addCapped(ep.topics, msg.topic);
      return;
    }
    this.#episode = { start: now, evicted: 1, principals: [principal], topics: [msg.topic] };
    this.#host.logger.error(
      `Routed subscription over its byte budget evicted a message of principal "${principal}"`,
      {
        subscriber: this.#subscriberLabel(),
        subscription: this.id,
        pattern: this.pattern,
        principal,
        topic: msg.topic,
        message_id: msg.id,
        budget_bytes: this.budgetBytes,
      },
    );
  }

  /** Logs the total of an eviction episode beyond its first, logged, eviction. */
  #closeEpisode(): void {
    const ep = this.#episode;
    this.#episode = undefined;
    if (ep === undefined || ep.evicted < 2) return;
    this.#host.logger.error(
      `Routed subscription evicted ${ep.evicted} messages in all, principals ${
        ep.principals.map((p) => `"${p}"`).join(", ")
      }${ep.principals.length === MAX_NAMES ? " and maybe others" : ""}`,
      {
        subscriber: this.#subscriberLabel(),
        subscription: this.id,
        pattern: this.pattern,
        evicted: ep.evicted,
        principals: ep.principals,
        topics: ep.topics,
        window_ms: this.#host.now() - ep.start,
      },
    );
  }

  #nextNotice(): BusMessage {
    let principal: PrincipalId;
    let info: LagInfo;
    const lag = this.#lag;
    if (lag !== undefined) {
      [principal, info] = lag.entries().next().value as [PrincipalId, LagInfo];
      lag.delete(principal);
      if (lag.size === 0) this.#lag = undefined;
    } else {
      ({ principal, info } = this.#lagOverflow as { principal: PrincipalId; info: LagInfo });
      this.#lagOverflow = undefined;
    }
    if (this.#lag === undefined && this.#lagOverflow === undefined) this.#closeEpisode();
    this.#lagged++;
    this.#host.metrics.lagged++;
    this.#handOut();
    return this.#host.lagNotice(this, principal, info);
  }

  #subscriberLabel(): string {
    return `${this.subscriber.kind}:${this.subscriber.name}`;
  }

  #settle(w: Waiter): void {
    if (w.signal !== undefined && w.onAbort !== undefined) {
      w.signal.removeEventListener("abort", w.onAbort);
    }
  }

  #closedError(): BusError {
    const subscriber = `${this.subscriber.kind}:${this.subscriber.name}`;
    return new BusError(
      BusCode.BUS_SUBSCRIPTION_CLOSED,
      `Subscription of "${subscriber}" to "${this.pattern}" is closed`,
      { data: { subscriber, pattern: this.pattern } },
    );
  }
}
