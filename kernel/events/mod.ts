/**
 * The IPC event bus: topics and the one pattern matcher, the message envelope, broadcast
 * listeners for kernel components, routed subscriptions with per-principal fair queues and
 * byte budgets, interceptor chains, per-capsule ACLs, counters and the storm monitor.
 *
 * It leaves to others: what topics mean (`docs/bus_topics.md`), the audit log behind
 * {@link BusAuditSink}, the host ABI that turns guest calls into `publish`/`subscribe` with a
 * kernel-built {@link BusContext}, and the manifest parser that yields {@link AclLists}.
 *
 * @module
 */
export {
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  EventBus,
  type EventBusOptions,
  type Listener,
  type ListenOptions,
  type PublishOptions,
  type PublishResult,
  REPLY_TOPIC_PREFIX,
  type RequestOptions,
  type SubscribeOptions,
} from "./event_bus.ts";
export type { BusContext, BusMessage, MessageSource } from "./bus_message.ts";
export {
  type JsonValue,
  type Payload,
  payloadData,
  type PayloadInput,
  type SizedPayload,
  toPayload,
  utf8Length,
} from "./payload.ts";
export {
  isValidTopic,
  type MatchSemantics,
  matchTopic,
  MAX_TOPIC_BYTES,
  MAX_TOPIC_SEGMENTS,
  patternCovers,
  TopicPattern,
  topicProblem,
  validatePattern,
  validateTopic,
} from "./topic.ts";
export {
  DEFAULT_BUDGET_BYTES,
  DEFAULT_QUANTUM_BYTES,
  LAGGED_TOPIC,
  type RecvOptions,
  RoutedSubscription,
  type RouteOptions,
} from "./routed_subscription.ts";
export { MESSAGE_OVERHEAD_BYTES } from "./_principal_queue.ts";
export {
  DEFAULT_INTERCEPTOR_TIMEOUT_MS,
  DEFAULT_PRIORITY,
  type InterceptOptions,
  type Interceptor,
  type InterceptorCall,
  type InterceptorHandler,
  type InterceptorOutcome,
} from "./interceptor.ts";
export { aclApplies, type AclLists, BusAcl, type BusAuditSink, type BusDenial } from "./bus_acl.ts";
export type { BusCounters, BusStats, SubscriptionStats } from "./bus_metrics.ts";
export { type BusLogger, stderrLogger } from "./bus_logger.ts";
export { StormMonitor, type StormMonitorOptions, type StormReport } from "./storm_monitor.ts";
export { ManualTimers, systemTimers, type TimerHandle, type Timers } from "./timers.ts";
export { BusCode, BusError, type BusErrorData } from "./errors.ts";
