/**
 * Folder-private helpers shared by the bus's tests.
 *
 * @module
 */
import { principalId } from "../identity/mod.ts";
import type { BusContext, BusLogger, MessageSource } from "./mod.ts";

/** A logger that records entries instead of writing them. */
export class MemoryLogger implements BusLogger {
  /** Every entry, in order. */
  readonly entries: { level: "warn" | "error"; message: string; data?: Record<string, unknown> }[] =
    [];
  /** Records a warning. */
  warn(message: string, data?: Record<string, unknown>): void {
    this.entries.push({ level: "warn", message, data });
  }
  /** Records an error. */
  error(message: string, data?: Record<string, unknown>): void {
    this.entries.push({ level: "error", message, data });
  }
  /** Entries of one level. */
  of(level: "warn" | "error"): { message: string; data?: Record<string, unknown> }[] {
    return this.entries.filter((e) => e.level === level);
  }
}

/** A context for `principal`, published by `source` (the kernel by default). */
export function ctxOf(
  principal: string,
  source: MessageSource = { kind: "kernel", name: "test" },
): BusContext {
  return { principal: principalId(principal), source };
}

/** A context for a capsule named `capsule` acting for `principal`. */
export function capsuleCtx(capsule: string, principal = "default"): BusContext {
  return ctxOf(principal, { kind: "capsule", name: capsule });
}
