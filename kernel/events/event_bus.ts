/**
 * The event bus: how every capsule, frontend and kernel component talks.
 *
 * `publish()` checks the topic and the publisher's ACL, stamps the envelope from the
 * {@link BusContext} the kernel supplies, runs the interceptor chain bound to the topic, then
 * delivers to broadcast listeners (synchronous kernel callbacks) and routed subscriptions
 * (per-principal queues drained fairly). Which listeners, subscriptions and interceptors a
 * topic reaches is computed once per topic and cached until a registration changes.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import { DEFAULT_PRINCIPAL, isPrincipalId, type PrincipalId } from "../identity/mod.ts";
import { aclApplies, type AclLists, BusAcl, type BusAuditSink, type BusDenial } from "./bus_acl.ts";
import type { BusContext, BusMessage, MessageSource } from "./bus_message.ts";
import { type BusLogger, stderrLogger } from "./bus_logger.ts";
import { BusMetrics, type BusStats } from "./bus_metrics.ts";
import { BusCode, BusError } from "./errors.ts";
import {
  type ChainEnv,
  type ChainResult,
  DEFAULT_INTERCEPTOR_TIMEOUT_MS,
  DEFAULT_PRIORITY,
  type InterceptOptions,
  type Interceptor,
  InterceptorEntry,
  type InterceptorHandler,
  runChain,
} from "./interceptor.ts";
import { type Payload, type PayloadInput, payloadSize, toPayload, wrapPayload } from "./payload.ts";
import {
  LAGGED_TOPIC,
  type LagInfo,
  RoutedSubscription,
  type RouteHost,
  type RouteOptions,
} from "./routed_subscription.ts";
import type { StormMonitor } from "./storm_monitor.ts";
import { systemTimers, type Timers } from "./timers.ts";
import { PendingRequests } from "./_pending_requests.ts";
import { TopicPattern, validateTopic } from "./topic.ts";

/** The default largest payload a publish may carry. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;
/** The default time `request()` waits for a reply. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** The prefix of the reply topic `request()` uses when none is given. */
export const REPLY_TOPIC_PREFIX = "astrid.v1.reply";

/** Options of an {@link EventBus}. */
export interface EventBusOptions {
  /** Stamps message timestamps; default the system clock. */
  clock?: Clock;
  /** Schedules request and interceptor timeouts; default the real timers. */
  timers?: Timers;
  /** Receives evictions, interceptor failures and unaudited denials; default stderr. */
  logger?: BusLogger;
  /** Receives every ACL denial; when absent, denials are logged as errors instead. */
  audit?: BusAuditSink;
  /** Counts every accepted publish and warns on storms. */
  stormMonitor?: Pick<StormMonitor, "record">;
  /** Largest payload, in bytes; default {@link DEFAULT_MAX_PAYLOAD_BYTES}. */
  maxPayloadBytes?: number;
  /** Default interceptor timeout; default {@link DEFAULT_INTERCEPTOR_TIMEOUT_MS}. */
  interceptorTimeoutMs?: number;
  /** Default `request()` timeout; default {@link DEFAULT_REQUEST_TIMEOUT_MS}. */
  requestTimeoutMs?: number;
  /** Topics whose routing is cached; the oldest is dropped beyond it; default 4,096. */
  matchCacheSize?: number;
  /** The prefix of message ids; default 8 random hex digits. */
  bootId?: string;
}

/** Options of {@link EventBus.publish}. */
export interface PublishOptions {
  /** The principal and source the kernel publishes for; never taken from the payload. */
  ctx: BusContext;
  /** Correlates a request with its replies. */
  request_id?: string;
  /** Where replies go; must be a valid topic. */
  reply_to?: string;
  /** Marks the last message of a stream. */
  end_of_stream?: boolean;
  /**
   * Runs the interceptor chain without the interceptors the publisher owns (same source kind
   * and name). A capsule re-publishing the message it is intercepting (the cache filling a
   * miss) then neither meets itself again nor needs a second instance of itself.
   */
  skip_own_interceptors?: boolean;
}

/** Options of {@link EventBus.request}. */
export interface RequestOptions {
  /** The principal and source the request is published for. */
  ctx: BusContext;
  /** How long to wait for the first reply; default the bus's `requestTimeoutMs`. */
  timeoutMs?: number;
  /** Aborting rejects the request with the signal's reason. */
  signal?: AbortSignal;
  /** The reply topic; default `astrid.v1.reply.<request_id>`. */
  reply_to?: string;
}

/** Options of {@link EventBus.subscribe}. */
export interface SubscribeOptions extends RouteOptions {
  /** Who subscribes; a capsule's subscribe list must cover the pattern. Default: the kernel. */
  ctx?: BusContext;
  /**
   * A queue of its own even when another subscription has the same subscriber, pattern and
   * principal (default false: such subscriptions share one queue). Each `ipc_subscribe` of a
   * guest is exclusive, so two concurrent turns never take each other's messages.
   */
  exclusive?: boolean;
}

/** Options of {@link EventBus.listen}. */
export interface ListenOptions {
  /** A name for logs; default `listener@<pattern>`. */
  name?: string;
}

/** A broadcast listener: a synchronous kernel callback. */
export interface Listener {
  /** Its name, for logs. */
  readonly name: string;
  /** The pattern (subscription semantics). */
  readonly pattern: string;
  /** True once removed. */
  readonly closed: boolean;
  /** Removes it. */
  close(): void;
}

/** What became of a publish. */
export type PublishResult =
  /**
   * Delivered to `recipients` listeners and routed subscriptions that took it (possibly none; a
   * subscription scoped to another principal does not count), after `handlers` interceptors
   * owned by a capsule or an uplink ran on it (kernel interceptors such as the budget and
   * security guards are not counted, nor interceptors scoped to another principal, which are
   * not in the chain; 0 when no interceptor is bound). A publish with 0 of both reached nobody.
   */
  | {
    readonly outcome: "delivered";
    readonly message: BusMessage;
    readonly recipients: number;
    readonly handlers: number;
  }
  /** Answered by interceptor `by`; not delivered. */
  | {
    readonly outcome: "final";
    readonly message: BusMessage;
    readonly reply?: BusMessage;
    readonly by: string;
  }
  /** Refused by interceptor `by` (or by a failed guard); not delivered. */
  | {
    readonly outcome: "denied";
    readonly message: BusMessage;
    readonly reason: string;
    readonly by: string;
  };

interface TopicPlan {
  readonly segments: readonly string[];
  readonly listeners: readonly ListenerEntry[];
  /** Subscriptions of every principal's messages. */
  readonly routes: readonly RoutedSubscription[];
  /** Principal-scoped subscriptions, by principal; undefined when there is none. */
  readonly scopedRoutes: ReadonlyMap<PrincipalId, RoutedSubscription[]> | undefined;
  /** Interceptors of every principal's messages, in chain order. */
  readonly interceptors: readonly InterceptorEntry[];
  /** Principal-scoped interceptors, by principal, each list in chain order; undefined when none. */
  readonly scopedInterceptors: ReadonlyMap<PrincipalId, InterceptorEntry[]> | undefined;
}

interface RouteEntry {
  readonly key: string;
  readonly pattern: TopicPattern;
  readonly sub: RoutedSubscription;
}

class ListenerEntry implements Listener {
  closed = false;
  constructor(
    readonly name: string,
    readonly parsed: TopicPattern,
    readonly callback: (msg: BusMessage) => void,
    readonly remove: (entry: ListenerEntry) => void,
  ) {}
  get pattern(): string {
    return this.parsed.source;
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.remove(this);
  }
}

const KERNEL_CTX: BusContext = {
  principal: DEFAULT_PRINCIPAL,
  source: { kind: "kernel", name: "kernel" },
};
const BUS_SOURCE: MessageSource = { kind: "kernel", name: "event_bus" };

/**
 * The kernel's IPC bus.
 *
 * @example
 * ```ts
 * import { EventBus } from "./mod.ts";
 * import { principalId } from "../identity/mod.ts";
 *
 * const bus = new EventBus();
 * const ctx = { principal: principalId("alice"), source: { kind: "kernel", name: "doc" } } as const;
 * bus.intercept("tool.v1.execute.*", (msg) =>
 *   msg.payload.kind === "json" && msg.payload.value === "rm -rf /"
 *     ? { action: "deny", reason: "policy" }
 *     : { action: "continue" }, { priority: 10 });
 * const sub = bus.subscribe("tool.v1.*");
 * const ok = await bus.publish("tool.v1.execute.shell", "ls", { ctx });
 * const no = await bus.publish("tool.v1.execute.shell", "rm -rf /", { ctx });
 * if (ok.outcome !== "delivered" || no.outcome !== "denied") throw new Error("unexpected");
 * if ((await sub.recv()).principal !== "alice") throw new Error("unexpected");
 * ```
 */
export class EventBus {
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #logger: BusLogger;
  readonly #auditSink: BusAuditSink | undefined;
  readonly #storm: Pick<StormMonitor, "record"> | undefined;
  readonly #maxPayload: number;
  readonly #interceptorTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #cacheSize: number;
  readonly #idPrefix: string;
  readonly #metrics = new BusMetrics();
  readonly #acl = new BusAcl();
  readonly #plans = new Map<string, TopicPlan>();
  #listeners: ListenerEntry[] = [];
  #interceptors: InterceptorEntry[] = [];
  readonly #routes = new Map<string, RouteEntry>();
  readonly #requests: PendingRequests;
  readonly #routeHost: RouteHost;
  readonly #chainEnv: ChainEnv;
  /** Per message id in a chain that has capsule handlers: how many of them ran so far. */
  readonly #handlerRuns = new Map<string, number>();
  #seq = 0;
  #subSeq = 0;
  #interceptorSeq = 0;
  #closed = false;

  /** Creates an empty bus. */
  constructor(options: EventBusOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#timers = options.timers ?? systemTimers;
    this.#logger = options.logger ?? stderrLogger;
    this.#auditSink = options.audit;
    this.#storm = options.stormMonitor;
    this.#maxPayload = positiveInt(
      "maxPayloadBytes",
      options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    );
    this.#interceptorTimeoutMs = positiveInt(
      "interceptorTimeoutMs",
      options.interceptorTimeoutMs ?? DEFAULT_INTERCEPTOR_TIMEOUT_MS,
    );
    this.#requestTimeoutMs = positiveInt(
      "requestTimeoutMs",
      options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    );
    this.#cacheSize = positiveInt("matchCacheSize", options.matchCacheSize ?? 4096);
    this.#idPrefix = `${options.bootId ?? randomHex(4)}-`;
    this.#requests = new PendingRequests(this.#timers, this.#metrics);
    this.#chainEnv = {
      timers: this.#timers,
      logger: this.#logger,
      metrics: this.#metrics,
      maxPayloadBytes: this.#maxPayload,
    };
    this.#routeHost = {
      metrics: this.#metrics,
      logger: this.#logger,
      now: () => this.#clock.now(),
      lagNotice: (sub, principal, info) => this.#lagNotice(sub, principal, info),
      closed: (sub) => this.#routeClosed(sub),
    };
  }

  /**
   * Publishes `data` on `topic` for `options.ctx`. Rejects with `BUS_INVALID_TOPIC`,
   * `BUS_ACL_DENIED` (also audited), `BUS_INVALID_PAYLOAD` or `BUS_CLOSED`; an interceptor's
   * Final or Deny is a result, not an error. A publisher that awaits each publish sees its
   * messages delivered in order.
   */
  publish(topic: string, data: PayloadInput, options: PublishOptions): Promise<PublishResult> {
    try {
      if (this.#closed) throw this.#closedError(topic);
      const ctx = options.ctx;
      const plan = this.#plan(topic);
      if (aclApplies(ctx.source) && !this.#acl.mayPublish(ctx.source.name, plan.segments)) {
        this.#deny(ctx, topic, "publish");
      }
      const replyTo = options.reply_to;
      if (replyTo !== undefined) validateTopic(replyTo);
      const size = payloadSize(data, topic, this.#maxPayload);
      const payload = wrapPayload(data);
      const msg: BusMessage = {
        id: this.#nextId(),
        topic,
        payload,
        size,
        principal: ctx.principal,
        source: ctx.source,
        timestamp: this.#clock.now(),
        request_id: options.request_id,
        reply_to: replyTo,
        end_of_stream: options.end_of_stream === true,
      };
      if (payload.kind === "json") this.#metrics.published.json++;
      else this.#metrics.published.bytes++;
      this.#metrics.publishedBySource[ctx.source.kind]++;
      if (this.#storm !== undefined) this.#storm.record(topic);
      const all = chainFor(plan, ctx.principal);
      const chain = options.skip_own_interceptors === true
        ? all.filter((ic) => ic.owner.kind !== ctx.source.kind || ic.owner.name !== ctx.source.name)
        : all;
      if (chain.length === 0) return Promise.resolve(this.#deliver(msg, plan, 0));
      return this.#intercepted(msg, chain);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Publishes a request with a fresh `request_id` and a `reply_to` topic, and resolves with the
   * first reply published on `reply_to` with that `request_id` and the request's principal (or
   * from the kernel), or with an interceptor's Final reply (a JSON `null` payload when it gave
   * none). Rejects with `BUS_DENIED` on Deny, `BUS_REQUEST_TIMEOUT` when no reply came in time,
   * the abort reason, or any error of {@link publish}.
   */
  request(topic: string, data: PayloadInput, options: RequestOptions): Promise<BusMessage> {
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    let timeoutMs: number;
    try {
      timeoutMs = positiveInt("timeoutMs", options.timeoutMs ?? this.#requestTimeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    const requestId = crypto.randomUUID();
    const replyTo = options.reply_to ?? `${REPLY_TOPIC_PREFIX}.${requestId}`;
    const { pending, promise } = this.#requests.open({
      requestId,
      topic,
      replyTo,
      principal: options.ctx.principal,
      timeoutMs,
      signal,
    });
    this.publish(topic, data, { ctx: options.ctx, request_id: requestId, reply_to: replyTo })
      .then((result) => {
        if (result.outcome === "denied") {
          pending.reject(
            new BusError(
              BusCode.BUS_DENIED,
              `Request on topic "${topic}" was denied by "${result.by}": ${result.reason}`,
              { data: { topic, reason: result.reason, by: result.by } },
            ),
          );
        } else if (result.outcome === "final") {
          pending.resolve(
            result.reply ??
              this.#replyMessage(result.message, { kind: "json", value: null }, 4, BUS_SOURCE),
          );
        }
      }, (err) => pending.reject(err));
    return promise;
  }

  /**
   * Registers a broadcast listener: `callback` runs synchronously inside `publish()` for every
   * delivered message matching `pattern` (subscription semantics). For kernel components only;
   * a throwing callback is logged and counted, never propagated.
   */
  listen(
    pattern: string,
    callback: (msg: BusMessage) => void,
    options: ListenOptions = {},
  ): Listener {
    const parsed = TopicPattern.parse(pattern, "subscription");
    const entry = new ListenerEntry(
      options.name ?? `listener@${pattern}`,
      parsed,
      callback,
      (e) => {
        this.#listeners = this.#listeners.filter((l) => l !== e);
        this.#plans.clear();
      },
    );
    this.#listeners = [...this.#listeners, entry];
    this.#plans.clear();
    return entry;
  }

  /**
   * Opens (or joins) the routed subscription keyed by subscriber, `pattern` (subscription
   * semantics) and optional principal scope; a second `subscribe()` with the same key returns
   * the same subscription (options of the first win) and each handle must be closed. Throws
   * `BUS_INVALID_PATTERN`, `BUS_INVALID_OPTION`, or `BUS_ACL_DENIED` (also audited).
   */
  subscribe(pattern: string, options: SubscribeOptions = {}): RoutedSubscription {
    if (this.#closed) throw this.#closedError();
    const ctx = options.ctx ?? KERNEL_CTX;
    const parsed = TopicPattern.parse(pattern, "subscription");
    if (aclApplies(ctx.source) && !this.#acl.maySubscribe(ctx.source.name, parsed)) {
      this.#deny(ctx, pattern, "subscribe");
    }
    if (options.principal !== undefined && !isPrincipalId(options.principal)) {
      throw optionError("principal", options.principal);
    }
    const budgetBytes = options.budgetBytes === undefined
      ? undefined
      : positiveInt("budgetBytes", options.budgetBytes);
    const quantumBytes = options.quantumBytes === undefined
      ? undefined
      : positiveInt("quantumBytes", options.quantumBytes);
    const shared = `${ctx.source.kind}:${ctx.source.name}\u0000${pattern}\u0000${
      options.principal ?? ""
    }`;
    const key = options.exclusive === true ? `${shared}\u0000#${this.#subSeq + 1}` : shared;
    const existing = this.#routes.get(key);
    if (existing !== undefined) return existing.sub.retain();
    const sub = new RoutedSubscription(`sub-${++this.#subSeq}`, {
      subscriber: ctx.source,
      pattern,
      host: this.#routeHost,
      budgetBytes,
      quantumBytes,
      principal: options.principal,
      onEvict: options.onEvict,
    });
    this.#routes.set(key, { key, pattern: parsed, sub });
    this.#plans.clear();
    return sub;
  }

  /**
   * Binds `handler` to `pattern` (strict semantics: every `*` is one segment). Throws
   * `BUS_INVALID_PATTERN`, `BUS_INVALID_OPTION`, or `BUS_ACL_DENIED` (also audited) when the
   * owner is a capsule whose subscribe list does not cover the pattern.
   */
  intercept(
    pattern: string,
    handler: InterceptorHandler,
    options: InterceptOptions = {},
  ): Interceptor {
    const ctx = options.ctx ?? KERNEL_CTX;
    const parsed = TopicPattern.parse(pattern, "strict");
    if (aclApplies(ctx.source) && !this.#acl.maySubscribe(ctx.source.name, parsed)) {
      this.#deny(ctx, pattern, "subscribe");
    }
    const priority = options.priority ?? DEFAULT_PRIORITY;
    if (!Number.isFinite(priority)) throw optionError("priority", priority);
    if (options.principal !== undefined && !isPrincipalId(options.principal)) {
      throw optionError("principal", options.principal);
    }
    const timeoutMs = positiveInt("timeoutMs", options.timeoutMs ?? this.#interceptorTimeoutMs);
    // A capsule's handler counts its runs per message, for the delivered result's `handlers`.
    const counted: InterceptorHandler = aclApplies(ctx.source)
      ? (msg, call) => {
        const n = this.#handlerRuns.get(msg.id);
        if (n !== undefined) this.#handlerRuns.set(msg.id, n + 1);
        return handler(msg, call);
      }
      : handler;
    const entry = new InterceptorEntry(
      options.name ?? `${ctx.source.kind}:${ctx.source.name}@${pattern}`,
      parsed,
      ctx.source,
      priority,
      options.guard ?? priority < DEFAULT_PRIORITY,
      timeoutMs,
      ++this.#interceptorSeq,
      counted,
      (e) => {
        this.#interceptors = this.#interceptors.filter((i) => i !== e);
        this.#plans.clear();
      },
      options.principal,
    );
    this.#interceptors = [...this.#interceptors, entry];
    this.#plans.clear();
    return entry;
  }

  /**
   * Sets `capsule`'s allow lists (manifest `[publish]`/`[subscribe]` keys) and closes its
   * subscriptions and interceptors the new lists no longer cover, logging each.
   */
  setAcl(capsule: string, lists: AclLists): void {
    this.#acl.set(capsule, lists);
    this.#revalidate(capsule);
  }

  /** Removes `capsule`'s allow lists (it may do nothing) and closes what it had open. */
  removeAcl(capsule: string): void {
    this.#acl.delete(capsule);
    this.#revalidate(capsule);
  }

  /** The allow lists set for `capsule`, or `undefined`. */
  acl(capsule: string): AclLists | undefined {
    return this.#acl.get(capsule);
  }

  /** Closes every subscription and interceptor owned by `source` (capsule unload); returns how many. */
  closeOwner(source: MessageSource): number {
    let n = 0;
    for (const r of [...this.#routes.values()]) {
      if (sameSource(r.sub.subscriber, source)) {
        r.sub.closeAll();
        n++;
      }
    }
    for (const i of [...this.#interceptors]) {
      if (sameSource(i.owner, source)) {
        i.close();
        n++;
      }
    }
    return n;
  }

  /** A snapshot of counters and gauges. */
  stats(): BusStats {
    const subscriptions = [...this.#routes.values()].map((r) => r.sub.stats());
    let activePrincipals = 0;
    let queuedMessages = 0;
    let queuedBytes = 0;
    for (const s of subscriptions) {
      activePrincipals += s.activePrincipals;
      queuedMessages += s.queuedMessages;
      queuedBytes += s.queuedBytes;
    }
    return {
      counters: this.#metrics.snapshot(),
      gauges: {
        listeners: this.#listeners.length,
        interceptors: this.#interceptors.length,
        subscriptions: subscriptions.length,
        activePrincipals,
        queuedMessages,
        queuedBytes,
        pendingRequests: this.#requests.size,
      },
      subscriptions,
    };
  }

  /** Closes the bus: refuses further publishes, closes subscriptions, rejects pending requests. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const r of [...this.#routes.values()]) r.sub.closeAll();
    this.#requests.rejectAll((topic) => this.#closedError(topic));
    for (const l of [...this.#listeners]) l.close();
    for (const i of [...this.#interceptors]) i.close();
  }

  #plan(topic: string): TopicPlan {
    const cached = this.#plans.get(topic);
    if (cached !== undefined) return cached;
    validateTopic(topic);
    const segments = topic.split(".");
    const listeners = this.#listeners.filter((l) => l.parsed.matchesSegments(segments));
    const routes: RoutedSubscription[] = [];
    let scopedRoutes: Map<PrincipalId, RoutedSubscription[]> | undefined;
    for (const r of this.#routes.values()) {
      if (!r.pattern.matchesSegments(segments)) continue;
      const p = r.sub.principal;
      if (p === undefined) routes.push(r.sub);
      else addTo(scopedRoutes ??= new Map(), p, r.sub);
    }
    const interceptors: InterceptorEntry[] = [];
    let scopedInterceptors: Map<PrincipalId, InterceptorEntry[]> | undefined;
    const matching = this.#interceptors
      .filter((i) => i.parsed.matchesSegments(segments))
      .sort(chainOrder);
    for (const i of matching) {
      if (i.principal === undefined) interceptors.push(i);
      else addTo(scopedInterceptors ??= new Map(), i.principal, i);
    }
    const plan: TopicPlan = {
      segments,
      listeners,
      routes,
      scopedRoutes,
      interceptors,
      scopedInterceptors,
    };
    if (this.#plans.size >= this.#cacheSize) {
      this.#plans.delete(this.#plans.keys().next().value as string);
    }
    this.#plans.set(topic, plan);
    return plan;
  }

  #deliver(msg: BusMessage, plan: TopicPlan, handlers: number): PublishResult {
    const listeners = plan.listeners;
    let recipients = 0;
    for (let i = 0; i < listeners.length; i++) {
      const l = listeners[i];
      if (l.closed) continue;
      recipients++;
      try {
        l.callback(msg);
        this.#metrics.delivered++;
      } catch (err) {
        this.#metrics.listenerErrors++;
        this.#logger.error(`Listener "${l.name}" threw on topic "${msg.topic}"`, {
          listener: l.name,
          topic: msg.topic,
          message_id: msg.id,
          error: String(err),
        });
      }
    }
    // Only subscriptions that queued the message (or handed it to a waiting recv) count.
    const routes = plan.routes;
    for (let i = 0; i < routes.length; i++) if (routes[i].enqueue(msg)) recipients++;
    const own = plan.scopedRoutes?.get(msg.principal);
    if (own !== undefined) {
      for (let i = 0; i < own.length; i++) if (own[i].enqueue(msg)) recipients++;
    }
    if (msg.request_id !== undefined && this.#requests.size > 0) this.#requests.match(msg);
    return { outcome: "delivered", message: msg, recipients, handlers };
  }

  async #intercepted(
    first: BusMessage,
    chain: readonly InterceptorEntry[],
  ): Promise<PublishResult> {
    const counting = chain.some((ic) => aclApplies(ic.owner));
    if (counting) this.#handlerRuns.set(first.id, 0);
    let r: ChainResult;
    let handlers = 0;
    try {
      r = await runChain(first, chain, this.#chainEnv);
    } finally {
      if (counting) {
        handlers = this.#handlerRuns.get(first.id) ?? 0;
        this.#handlerRuns.delete(first.id);
      }
    }
    if (r.outcome === "denied") {
      this.#metrics.denied.interceptor++;
      return { outcome: "denied", message: r.message, reason: r.reason, by: r.by.name };
    }
    if (r.outcome === "final") {
      this.#metrics.final++;
      const reply = r.reply;
      return {
        outcome: "final",
        message: r.message,
        reply: reply === undefined
          ? undefined
          : this.#replyMessage(r.message, reply.payload, reply.size, r.by.owner),
        by: r.by.name,
      };
    }
    if (this.#closed) throw this.#closedError(r.message.topic);
    return this.#deliver(r.message, this.#plan(r.message.topic), handlers);
  }

  #replyMessage(
    request: BusMessage,
    payload: Payload,
    size: number,
    source: MessageSource,
  ): BusMessage {
    return {
      id: this.#nextId(),
      topic: request.reply_to ?? request.topic,
      payload,
      size,
      principal: request.principal,
      source,
      timestamp: this.#clock.now(),
      request_id: request.request_id,
      reply_to: undefined,
      end_of_stream: false,
    };
  }

  #lagNotice(sub: RoutedSubscription, principal: PrincipalId, info: LagInfo): BusMessage {
    const { payload, size } = toPayload(
      {
        subscription: sub.id,
        subscriber: `${sub.subscriber.kind}:${sub.subscriber.name}`,
        pattern: sub.pattern,
        principal,
        dropped: info.dropped,
        topics: info.topics,
        ...(info.overflow ? { overflow: true } : {}),
      },
      LAGGED_TOPIC,
      Number.POSITIVE_INFINITY,
    );
    return {
      id: this.#nextId(),
      topic: LAGGED_TOPIC,
      payload,
      size,
      principal,
      source: BUS_SOURCE,
      timestamp: this.#clock.now(),
      request_id: undefined,
      reply_to: undefined,
      end_of_stream: false,
    };
  }

  #routeClosed(sub: RoutedSubscription): void {
    for (const [key, r] of this.#routes) {
      if (r.sub === sub) {
        this.#routes.delete(key);
        this.#plans.clear();
        return;
      }
    }
  }

  #revalidate(capsule: string): void {
    for (const r of [...this.#routes.values()]) {
      const s = r.sub.subscriber;
      if (!aclApplies(s) || s.name !== capsule || this.#acl.maySubscribe(capsule, r.pattern)) {
        continue;
      }
      this.#logger.error(
        `Closed subscription of capsule "${capsule}" to "${r.sub.pattern}": its subscribe list no longer covers it`,
        { capsule, pattern: r.sub.pattern, subscription: r.sub.id },
      );
      r.sub.closeAll();
    }
    for (const i of [...this.#interceptors]) {
      if (!aclApplies(i.owner) || i.owner.name !== capsule) continue;
      if (this.#acl.maySubscribe(capsule, i.parsed)) continue;
      this.#logger.error(
        `Removed interceptor "${i.name}" of capsule "${capsule}": its subscribe list no longer covers "${i.pattern}"`,
        { capsule, pattern: i.pattern, interceptor: i.name },
      );
      i.close();
    }
  }

  #deny(ctx: BusContext, topic: string, op: "publish" | "subscribe"): never {
    this.#metrics.denied.acl++;
    const capsule = ctx.source.name;
    const event: BusDenial = { principal: ctx.principal, capsule, source: ctx.source, topic, op };
    const message =
      `Capsule "${capsule}" may not ${op} "${topic}": not covered by its [${op}] list`;
    if (this.#auditSink === undefined) {
      this.#logger.error(`${message} (no audit sink wired)`, { ...event });
    } else {
      try {
        const r = this.#auditSink.denied(event);
        if (isThenable(r)) {
          r.then(
            undefined,
            (err) =>
              this.#logger.error("Audit sink failed to record a bus ACL denial", {
                ...event,
                error: errorText(err),
              }),
          );
        }
      } catch (err) {
        this.#logger.error("Audit sink failed to record a bus ACL denial", {
          ...event,
          error: errorText(err),
        });
      }
    }
    throw new BusError(BusCode.BUS_ACL_DENIED, message, {
      data: { capsule, principal: ctx.principal, topic, op },
    });
  }

  #nextId(): string {
    return this.#idPrefix + this.#seq++;
  }

  #closedError(topic?: string): BusError {
    return new BusError(BusCode.BUS_CLOSED, "The event bus is closed", {
      data: topic === undefined ? {} : { topic },
    });
  }
}

function chainOrder(a: InterceptorEntry, b: InterceptorEntry): number {
  return a.priority - b.priority || a.seq - b.seq;
}

function addTo<T>(map: Map<PrincipalId, T[]>, key: PrincipalId, value: T): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

/**
 * The interceptor chain of `plan` for a message of `principal`: the unscoped interceptors merged
 * with that principal's own, in chain order. Costs nothing per other principal's interceptor.
 */
function chainFor(plan: TopicPlan, principal: PrincipalId): readonly InterceptorEntry[] {
  const own = plan.scopedInterceptors?.get(principal);
  if (own === undefined) return plan.interceptors;
  const all = plan.interceptors;
  if (all.length === 0) return own;
  const out: InterceptorEntry[] = [];
  let i = 0;
  let j = 0;
  while (i < all.length && j < own.length) {
    out.push(chainOrder(all[i], own[j]) <= 0 ? all[i++] : own[j++]);
  }
  while (i < all.length) out.push(all[i++]);
  while (j < own.length) out.push(own[j++]);
  return out;
}

function isThenable<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

function sameSource(a: MessageSource, b: MessageSource): boolean {
  return a.kind === b.kind && a.name === b.name;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function positiveInt(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw optionError(field, value);
  return value;
}

function optionError(field: string, value: number | string): BusError {
  return new BusError(
    BusCode.BUS_INVALID_OPTION,
    `Invalid bus option ${field} "${value}": must be ${
      field === "principal"
        ? "a principal id"
        : field === "priority"
        ? "a finite number"
        : "a positive integer"
    }`,
    { data: { field, value } },
  );
}

function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
