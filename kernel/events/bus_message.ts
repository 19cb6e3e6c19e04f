/**
 * The envelope every bus message travels in, and the context the kernel publishes it under.
 *
 * @module
 */
import type { PrincipalId } from "../identity/mod.ts";
import type { Payload } from "./payload.ts";

/** Who put a message on the bus, or who subscribes: a capsule, an uplink, the kernel, a client. */
export interface MessageSource {
  /** The kind of party; ACLs apply to `capsule` and `uplink`. */
  readonly kind: "capsule" | "uplink" | "kernel" | "client";
  /** Its name: the capsule or uplink name, a kernel component, a client connection id. */
  readonly name: string;
}

/**
 * What the kernel knows about a publisher or subscriber: the acting principal and the source.
 * The kernel builds it from the invocation (a capsule never chooses its principal); the bus
 * stamps both on every message it publishes.
 */
export interface BusContext {
  /** The principal the message is published for. */
  readonly principal: PrincipalId;
  /** The party publishing or subscribing. */
  readonly source: MessageSource;
}

/**
 * A message on the bus. Its fields are stamped by the bus; payload objects are shared by
 * every recipient and must be treated as read-only.
 *
 * @example
 * ```ts
 * import { EventBus } from "./mod.ts";
 * import { DEFAULT_PRINCIPAL } from "../identity/mod.ts";
 *
 * const bus = new EventBus();
 * const sub = bus.subscribe("agent.v1.*");
 * await bus.publish("agent.v1.response", { text: "hi" }, {
 *   ctx: { principal: DEFAULT_PRINCIPAL, source: { kind: "kernel", name: "doc" } },
 * });
 * const msg = sub.poll()!;
 * if (msg.topic !== "agent.v1.response" || msg.size !== 13) throw new Error("unexpected");
 * ```
 */
export interface BusMessage {
  /** Unique within this bus run: `<boot id>-<sequence>`. */
  readonly id: string;
  /** The topic it was published on. */
  readonly topic: string;
  /** The payload, after any interceptor changed it. */
  readonly payload: Payload;
  /** The payload's size in bytes (UTF-8 JSON text for `json`). */
  readonly size: number;
  /** The principal it acts for, stamped from the publisher's {@link BusContext}. */
  readonly principal: PrincipalId;
  /** Who published it, stamped from the publisher's {@link BusContext}. */
  readonly source: MessageSource;
  /** When it was published, in milliseconds since the epoch, from the bus's clock. */
  readonly timestamp: number;
  /** Correlates a request with its replies. */
  readonly request_id?: string;
  /** The topic a reply to this request should be published on. */
  readonly reply_to?: string;
  /** True on the last message of a stream (a terminator); eviction keeps it behind its prefix. */
  readonly end_of_stream: boolean;
}
