/**
 * The bus's counters and the shape of its `stats()` snapshot.
 *
 * @module
 */

/** Monotonic counters since the bus was created. */
export interface BusCounters {
  /** Messages accepted for publishing (after topic, ACL and payload checks), by payload kind. */
  readonly published: { readonly json: number; readonly bytes: number };
  /** The same, by the publisher's source kind. */
  readonly publishedBySource: {
    readonly capsule: number;
    readonly uplink: number;
    readonly kernel: number;
    readonly client: number;
  };
  /** Messages handed to a consumer: a listener call, or a `recv()`/`poll()` that returned one. */
  readonly delivered: number;
  /** Messages dropped from routed subscriptions to stay within their byte budget. */
  readonly evicted: number;
  /** `astrid.v1.event_bus.lagged` notices handed to subscribers that lost messages. */
  readonly lagged: number;
  /** Operations refused: by an ACL (publish or subscribe), or by an interceptor's Deny. */
  readonly denied: { readonly acl: number; readonly interceptor: number };
  /** Publishes that an interceptor answered Final. */
  readonly final: number;
  /** Interceptors that threw, timed out or returned a malformed outcome. */
  readonly interceptorFailures: number;
  /** Broadcast listeners that threw. */
  readonly listenerErrors: number;
  /** `request()` calls that timed out. */
  readonly requestTimeouts: number;
}

/** Gauges of one routed subscription. */
export interface SubscriptionStats {
  /** The subscription id. */
  readonly id: string;
  /** `<kind>:<name>` of the subscriber. */
  readonly subscriber: string;
  /** The subscribed pattern. */
  readonly pattern: string;
  /** The only principal it receives, when scoped to one. */
  readonly principal?: string;
  /** Messages queued now. */
  readonly queuedMessages: number;
  /** Bytes queued now, as charged against the budget. */
  readonly queuedBytes: number;
  /** The byte budget. */
  readonly budgetBytes: number;
  /** Principals with queued messages now. */
  readonly activePrincipals: number;
  /** Messages this subscription handed to its consumer. */
  readonly delivered: number;
  /** Messages it evicted. */
  readonly evicted: number;
  /** Lagged notices it handed to its consumer. */
  readonly lagged: number;
}

/** A snapshot of the bus: counters, gauges and per-subscription gauges. */
export interface BusStats {
  /** Counters since the bus was created. */
  readonly counters: BusCounters;
  /** Totals at the time of the snapshot. */
  readonly gauges: {
    /** Broadcast listeners registered. */
    readonly listeners: number;
    /** Interceptors registered. */
    readonly interceptors: number;
    /** Routed subscriptions open. */
    readonly subscriptions: number;
    /** Sum over subscriptions of principals with queued messages. */
    readonly activePrincipals: number;
    /** Messages queued across all subscriptions. */
    readonly queuedMessages: number;
    /** Bytes queued across all subscriptions. */
    readonly queuedBytes: number;
    /** `request()` calls waiting for a reply. */
    readonly pendingRequests: number;
  };
  /** Per-subscription gauges, in subscription order. */
  readonly subscriptions: readonly SubscriptionStats[];
}

/** Folder-internal: the mutable counters the bus and its subscriptions increment. */
export class BusMetrics {
  /** See {@link BusCounters.published}. */
  readonly published = { json: 0, bytes: 0 };
  /** See {@link BusCounters.publishedBySource}. */
  readonly publishedBySource = { capsule: 0, uplink: 0, kernel: 0, client: 0 };
  /** See {@link BusCounters.delivered}. */
  delivered = 0;
  /** See {@link BusCounters.evicted}. */
  evicted = 0;
  /** See {@link BusCounters.lagged}. */
  lagged = 0;
  /** See {@link BusCounters.denied}. */
  readonly denied = { acl: 0, interceptor: 0 };
  /** See {@link BusCounters.final}. */
  final = 0;
  /** See {@link BusCounters.interceptorFailures}. */
  interceptorFailures = 0;
  /** See {@link BusCounters.listenerErrors}. */
  listenerErrors = 0;
  /** See {@link BusCounters.requestTimeouts}. */
  requestTimeouts = 0;

  /** A frozen copy of the counters. */
  snapshot(): BusCounters {
    return {
      published: { ...this.published },
      publishedBySource: { ...this.publishedBySource },
      delivered: this.delivered,
      evicted: this.evicted,
      lagged: this.lagged,
      denied: { ...this.denied },
      final: this.final,
      interceptorFailures: this.interceptorFailures,
      listenerErrors: this.listenerErrors,
      requestTimeouts: this.requestTimeouts,
    };
  }
}
