/**
 * Topic names and the one pattern matcher the whole kernel uses.
 *
 * A topic is dot-separated segments of `[a-zA-Z0-9_-]`, at most {@link MAX_TOPIC_BYTES} bytes
 * and {@link MAX_TOPIC_SEGMENTS} segments: `tool.v1.execute.read_file`. A pattern may also
 * hold `*` segments, with one of two semantics:
 *
 * - `"subscription"` (subscriptions and ACLs): a `*` segment matches exactly one segment,
 *   except a trailing `*`, which matches one or more further segments (a subtree).
 * - `"strict"` (interceptor bindings): every `*` matches exactly one segment.
 *
 * A `*` that is not a whole segment (`tool.v1.exec*`, `a.**`) is refused at declaration.
 *
 * @module
 */
import { BusCode, BusError } from "./errors.ts";

/** The longest topic or pattern, in bytes (all allowed characters are one byte). */
export const MAX_TOPIC_BYTES = 256;
/** The most segments a topic or pattern may have. */
export const MAX_TOPIC_SEGMENTS = 32;

/** How `*` segments of a pattern match: see the module doc. */
export type MatchSemantics = "subscription" | "strict";

const SEGMENT_RE = /^[a-zA-Z0-9_-]+$/;
const TOPIC_RE = /^[a-zA-Z0-9_-]+(?:\.[a-zA-Z0-9_-]+)*$/;

/** Returns why `topic` is not a valid topic name, or `undefined` when it is. */
export function topicProblem(topic: string): string | undefined {
  if (typeof topic !== "string") return "a topic must be a string";
  if (topic.length > MAX_TOPIC_BYTES) {
    return `${topic.length} bytes, the limit is ${MAX_TOPIC_BYTES}`;
  }
  if (TOPIC_RE.test(topic)) {
    return segmentCount(topic) > MAX_TOPIC_SEGMENTS
      ? `${segmentCount(topic)} segments, the limit is ${MAX_TOPIC_SEGMENTS}`
      : undefined;
  }
  const segments = topic.split(".");
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    if (s === "") return `segment ${i + 1} is empty`;
    if (s.includes("*")) return `"*" belongs in patterns, not in a published topic`;
    if (!SEGMENT_RE.test(s)) {
      return `segment "${s}" has a character outside a-z, A-Z, 0-9, "_" and "-"`;
    }
  }
  return "malformed";
}

/** True when `topic` is a valid topic name (no wildcard). */
export function isValidTopic(topic: string): boolean {
  return topicProblem(topic) === undefined;
}

/** Throws `BUS_INVALID_TOPIC` naming the topic and the rule it breaks. */
export function validateTopic(topic: string): void {
  const problem = topicProblem(topic);
  if (problem !== undefined) {
    throw new BusError(BusCode.BUS_INVALID_TOPIC, `Invalid topic "${topic}": ${problem}`, {
      data: { topic: String(topic), reason: problem },
    });
  }
}

/** Throws `BUS_INVALID_PATTERN` unless `pattern` is a valid topic pattern. */
export function validatePattern(pattern: string): void {
  TopicPattern.parse(pattern);
}

/** A parsed, validated topic pattern with its matching semantics. */
export class TopicPattern {
  /** The pattern as written. */
  readonly source: string;
  /** How its `*` segments match. */
  readonly semantics: MatchSemantics;
  /** True when the pattern holds no `*` and so matches only the topic equal to it. */
  readonly literal: boolean;
  /** True when the last segment is a subtree wildcard (subscription semantics only). */
  readonly subtree: boolean;
  readonly #segments: readonly string[];

  private constructor(source: string, semantics: MatchSemantics, segments: string[]) {
    this.source = source;
    this.semantics = semantics;
    this.#segments = segments;
    this.literal = !segments.includes("*");
    this.subtree = semantics === "subscription" && segments[segments.length - 1] === "*";
  }

  /** Parses `pattern`, or throws `BUS_INVALID_PATTERN` naming it and the rule it breaks. */
  static parse(pattern: string, semantics: MatchSemantics = "subscription"): TopicPattern {
    const fail = (reason: string): never => {
      throw new BusError(BusCode.BUS_INVALID_PATTERN, `Invalid pattern "${pattern}": ${reason}`, {
        data: { pattern: String(pattern), reason },
      });
    };
    if (typeof pattern !== "string") return fail("a pattern must be a string");
    if (pattern.length > MAX_TOPIC_BYTES) {
      fail(`${pattern.length} bytes, the limit is ${MAX_TOPIC_BYTES}`);
    }
    const segments = pattern.split(".");
    if (segments.length > MAX_TOPIC_SEGMENTS) {
      fail(`${segments.length} segments, the limit is ${MAX_TOPIC_SEGMENTS}`);
    }
    for (let i = 0; i < segments.length; i++) {
      const s = segments[i];
      if (s === "") fail(`segment ${i + 1} is empty`);
      if (s === "*") continue;
      if (s.includes("*")) fail(`"*" must be a whole segment, got "${s}"`);
      if (!SEGMENT_RE.test(s)) {
        fail(`segment "${s}" has a character outside a-z, A-Z, 0-9, "_" and "-"`);
      }
    }
    return new TopicPattern(pattern, semantics, segments);
  }

  /** True when the valid topic `topic` matches; an invalid topic never matches. */
  matches(topic: string): boolean {
    if (this.literal) return topic === this.source;
    if (!isValidTopic(topic)) return false;
    return this.matchesSegments(topic.split("."));
  }

  /** True when the topic already split into `segments` matches (no validation). */
  matchesSegments(segments: readonly string[]): boolean {
    const p = this.#segments;
    const n = p.length;
    let fixed = n;
    if (this.subtree) {
      if (segments.length < n) return false;
      fixed = n - 1;
    } else if (segments.length !== n) {
      return false;
    }
    for (let i = 0; i < fixed; i++) {
      const s = p[i];
      if (s !== "*" && s !== segments[i]) return false;
    }
    return true;
  }

  /** True when every topic `inner` can match is matched by this pattern too. */
  covers(inner: TopicPattern): boolean {
    const a = this.#segments;
    const s = inner.#segments;
    let fixed = a.length;
    if (this.subtree) {
      if (s.length < a.length) return false;
      fixed = a.length - 1;
    } else if (inner.subtree || s.length !== a.length) {
      return false;
    }
    for (let i = 0; i < fixed; i++) {
      if (a[i] !== "*" && a[i] !== s[i]) return false;
    }
    return true;
  }

  /** The pattern as written. */
  toString(): string {
    return this.source;
  }
}

/** True when `topic` matches `pattern` under `semantics`; throws on an invalid pattern. */
export function matchTopic(
  pattern: string,
  topic: string,
  semantics: MatchSemantics = "subscription",
): boolean {
  return TopicPattern.parse(pattern, semantics).matches(topic);
}

/** True when the allow-list pattern `outer` (subscription semantics) covers all of `inner`. */
export function patternCovers(
  outer: string,
  inner: string,
  innerSemantics: MatchSemantics = "subscription",
): boolean {
  return TopicPattern.parse(outer).covers(TopicPattern.parse(inner, innerSemantics));
}

function segmentCount(topic: string): number {
  let n = 1;
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 46) n++;
  return n;
}
