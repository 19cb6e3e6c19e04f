/**
 * Per-capsule publish/subscribe allow lists, from a manifest's `[publish]`/`[subscribe]` keys.
 *
 * Fail-closed: a capsule with no lists, or empty ones, may neither publish nor subscribe. Allow
 * patterns use subscription semantics (a trailing `*` covers a subtree). A subscription or an
 * interceptor binding is allowed only when one allow pattern covers every topic it can match.
 *
 * @module
 */
import type { PrincipalId } from "../identity/mod.ts";
import type { MessageSource } from "./bus_message.ts";
import { type MatchSemantics, TopicPattern } from "./topic.ts";

/** A capsule's allow lists: topic patterns it may publish to and subscribe to. */
export interface AclLists {
  /** Patterns of topics the capsule may publish. */
  readonly publish: readonly string[];
  /** Patterns the capsule may subscribe to or bind interceptors under. */
  readonly subscribe: readonly string[];
}

/** A refused publish or subscribe, as reported to the {@link BusAuditSink}. */
export interface BusDenial {
  /** The principal the operation was made for. */
  readonly principal: PrincipalId;
  /** The capsule (or uplink) whose lists refused it. */
  readonly capsule: string;
  /** The full source of the caller. */
  readonly source: MessageSource;
  /** The topic published, or the pattern subscribed to. */
  readonly topic: string;
  /** The refused operation. */
  readonly op: "publish" | "subscribe";
}

/** Receives every ACL denial; the kernel wires it to the audit log. */
export interface BusAuditSink {
  /** Records one denial; a rejected promise is logged, never thrown to the caller. */
  denied(event: BusDenial): void | Promise<void>;
}

/** True when `source` is checked against allow lists (capsules and uplinks). */
export function aclApplies(source: MessageSource): boolean {
  return source.kind === "capsule" || source.kind === "uplink";
}

interface Entry {
  readonly publish: readonly TopicPattern[];
  readonly subscribe: readonly TopicPattern[];
}

/** The allow lists of every loaded capsule. */
export class BusAcl {
  readonly #entries = new Map<string, Entry>();

  /** Sets `capsule`'s lists, replacing earlier ones; throws `BUS_INVALID_PATTERN` on a bad one. */
  set(capsule: string, lists: AclLists): void {
    const entry: Entry = {
      publish: lists.publish.map((p) => TopicPattern.parse(p)),
      subscribe: lists.subscribe.map((p) => TopicPattern.parse(p)),
    };
    this.#entries.set(capsule, entry);
  }

  /** Forgets `capsule`'s lists, so it may do nothing. */
  delete(capsule: string): void {
    this.#entries.delete(capsule);
  }

  /** The lists set for `capsule`, as written, or `undefined`. */
  get(capsule: string): AclLists | undefined {
    const e = this.#entries.get(capsule);
    if (e === undefined) return undefined;
    return {
      publish: e.publish.map((p) => p.source),
      subscribe: e.subscribe.map((p) => p.source),
    };
  }

  /** True when `capsule` may publish the valid topic split into `segments`. */
  mayPublish(capsule: string, segments: readonly string[]): boolean {
    const e = this.#entries.get(capsule);
    if (e === undefined) return false;
    for (const p of e.publish) if (p.matchesSegments(segments)) return true;
    return false;
  }

  /** True when `capsule` may subscribe to (or bind an interceptor under) `pattern`. */
  maySubscribe(capsule: string, pattern: TopicPattern): boolean {
    const e = this.#entries.get(capsule);
    if (e === undefined) return false;
    for (const p of e.subscribe) if (p.covers(pattern)) return true;
    return false;
  }

  /** Like {@link maySubscribe} for a pattern string under `semantics`. */
  maySubscribePattern(
    capsule: string,
    pattern: string,
    semantics: MatchSemantics = "subscription",
  ): boolean {
    return this.maySubscribe(capsule, TopicPattern.parse(pattern, semantics));
  }
}
