/**
 * `LoadedCapsule`: one capsule bound to the bus in one scope — its `[subscribe]` interceptors,
 * its tools (`tool.v1.execute.<name>` and `tool.v1.request.describe`), its `[[cron]]` jobs, its
 * run loop (restarted with backoff when it fails), its readiness (uplinks) and its health.
 * The registry creates, binds and stops it; the encodings are `capsule_dispatch.ts`.
 *
 * - A `[subscribe]` handler is a bus interceptor at its priority. When its invocation fails
 *   (trap, timeout, malformed reply) a guard fails closed (the message is denied) and any other
 *   interceptor is skipped; the entry's `guard` says which (absent: below priority 100 is a guard).
 *   It invokes the export with the message's principal and decodes the reply into
 *   Continue / Final / Deny; a message the scope does not serve continues untouched.
 * - A `[subscribe]` handler with `detach = true` is no interceptor: like a tool it is a routed
 *   subscription (every principal's messages, or its own principal's in a principal scope), so
 *   the publisher does not wait for it and the delivered publish counts it as a recipient. Each
 *   message is invoked in the background for its principal (same context as an interceptor's),
 *   at most `maxInFlight` at once (the rest wait in the subscription's fair queue, under a byte
 *   budget of `maxInFlight` × 64 KiB, at least 1 MiB: 4 MiB at the default 64); the reply is
 *   ignored (anything but Continue is logged once), failures are logged and counted in the
 *   health, and each message its queue evicts (over budget) is announced at once on
 *   {@link HANDLER_FAILED_TOPIC} with code `EVICTED`, so its publisher need not wait it out.
 * - A tool is a routed subscription: it runs only once every interceptor let the call through,
 *   at most `maxInFlight` calls at once per tool (the rest wait in the subscription's fair
 *   per-principal queue), and its result (or error) is published on `….result`.
 * - Health: consecutive invocation failures (traps, timeouts, dead workers, malformed replies)
 *   past `unhealthyAfter` mark the capsule unhealthy until the next success.
 * - A failed `[subscribe]` handler (interceptor or detached) is announced on
 *   {@link HANDLER_FAILED_TOPIC} for the message's principal, so whoever published the message —
 *   a frontend waiting for its prompt's answer — learns at once; the notice says `guard`,
 *   `outcome` (`denied`: a guard refused the message; `skipped`: the chain went on without it;
 *   `failed`: a detached handler failed or lost it) and `answers` (the capsule may publish
 *   `agent.v1.response`, i.e. it answers user turns), so a frontend ends a turn only when no
 *   answer can come.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type {
  BusContext,
  BusMessage,
  EventBus,
  Interceptor,
  InterceptorOutcome,
  JsonValue,
  MessageSource,
  RoutedSubscription,
  Timers,
} from "../events/mod.ts";
import { DEFAULT_BUDGET_BYTES, LAGGED_TOPIC, TopicPattern } from "../events/mod.ts";
import { AstridError } from "../errors.ts";
import {
  type CapsuleInvocation,
  decodeInterceptorReply,
  decodeToolReply,
  describePayload,
  invocationContext,
  invocationPayload,
  TOOL_DESCRIBE_RESPONSE_PREFIX,
  TOOL_EXECUTE_PREFIX,
  type ToolReply,
  toolRequestId,
  toolResultPayload,
} from "./capsule_dispatch.ts";
import { type CapsuleScopeRef, scopeServes } from "./capsule_scope.ts";
import { CronRunner } from "./cron_runner.ts";
import { CronSchedule } from "./cron_schedule.ts";
import type { RunLoop, WasmCapsule } from "./engine/wasm/mod.ts";
import { CapsuleCode, CapsuleError } from "./errors.ts";
import type { DiscoveredCapsule } from "./discovery.ts";
import { HANDLER_FAILED_TOPIC, manifestAcl, TOOL_DESCRIBE_TOPIC } from "./manifest_acl.ts";
import { type CapsuleManifest, DEFAULT_HANDLER_PRIORITY, type ToolEntry } from "./manifest.ts";

/** Where the runtime reports what happens (the daemon log in the daemon). */
export interface RuntimeLog {
  /** An informational line. */
  info(message: string, data?: Record<string, unknown>): void;
  /** A warning. */
  warn(message: string, data?: Record<string, unknown>): void;
  /** An error. */
  error(message: string, data?: Record<string, unknown>): void;
}

/** A capsule's health as `list()` reports it. */
export interface CapsuleHealth {
  /** `ok`, or `unhealthy` after `unhealthyAfter` consecutive failures. */
  readonly status: "ok" | "unhealthy";
  /** Failures since the last success. */
  readonly consecutiveFailures: number;
  /** Failures since load. */
  readonly failures: number;
  /** Successful invocations since load. */
  readonly successes: number;
  /** The last failure's message. */
  readonly lastError?: string;
  /** When it happened, ms since the epoch. */
  readonly lastErrorAt?: number;
}

/** State of a run loop. */
export type RunLoopState = "none" | "running" | "restarting" | "returned" | "failed" | "stopped";

/** What a {@link LoadedCapsule} needs from the registry. */
export interface LoadedCapsuleDeps {
  /** The bus. */
  readonly bus: EventBus;
  /** Time. */
  readonly clock: Clock;
  /** Restart backoff timers. */
  readonly timers: Timers;
  /** Where events go. */
  readonly log: RuntimeLog;
  /** True when `principal` loaded its own capsule named `name` (system capsules skip it). */
  readonly shadowed: (name: string, principal: string) => boolean;
  /** Consecutive failures that make a capsule unhealthy. */
  readonly unhealthyAfter: number;
  /** Concurrent tool calls per tool. */
  readonly maxInFlight: number;
  /** Time an interceptor invocation may take, ms. */
  readonly handlerTimeoutMs: number;
  /** Run-loop restarts before giving up (counted within `restartWindowMs`). */
  readonly maxRestarts: number;
  /** First restart delay, ms, doubled each time. */
  readonly restartBackoffMs: number;
  /** A loop that ran this long resets the restart count, ms. */
  readonly restartWindowMs: number;
}

/** Codes of engine failures that count against a capsule's health. */
const FAILURE_CODES: ReadonlySet<string> = new Set([
  "WASM_TRAP",
  "WASM_TIMEOUT",
  "WASM_ABORTED",
  "WASM_BAD_REPLY",
  "WASM_BAD_REQUEST",
  "WASM_BAD_ALLOC",
  "WASM_WORKER_FAILED",
  "WASM_LIMIT_EXCEEDED",
  "WASM_NO_EXPORT",
  CapsuleCode.CAPSULE_BAD_REPLY,
]);

/**
 * The topic a user turn's answer is published on (`docs/bus_topics.md`): a capsule allowed to
 * publish it answers prompts (an orchestrator), so its failure leaves a turn unanswered.
 */
const TURN_ANSWER_TOPIC = "agent.v1.response";

/**
 * A typical payload a detached handler takes (a prompt with its context, a provider request).
 * A detached handler's queue holds `maxInFlight` of them beyond the ones it runs (4 MiB at the
 * registry's default 64), and never less than the bus default {@link DEFAULT_BUDGET_BYTES}.
 */
const DETACHED_PAYLOAD_BYTES = 64 * 1024;

/** The byte budget of a detached handler's routed subscription (see {@link DETACHED_PAYLOAD_BYTES}). */
function detachedBudgetBytes(maxInFlight: number): number {
  return Math.max(DEFAULT_BUDGET_BYTES, maxInFlight * DETACHED_PAYLOAD_BYTES);
}

/** What became of a message whose handler failed, as {@link HANDLER_FAILED_TOPIC} says. */
interface FailureHow {
  /** The handler fails closed. */
  readonly guard: boolean;
  /** `denied` (a guard: not delivered), `skipped` (the chain went on), `failed` (detached). */
  readonly outcome: "denied" | "skipped" | "failed";
}

/** A bounded count of concurrent work. */
class Slots {
  #free: number;
  readonly #waiters: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  release(): void {
    const next = this.#waiters.shift();
    if (next !== undefined) next();
    else this.#free++;
  }
}

/** One capsule bound in one scope; see the module doc. */
export class LoadedCapsule {
  /** The key: its bus source name, unique across scopes. */
  readonly key: string;
  /** The capsule's name. */
  readonly name: string;
  /** The scope it serves. */
  readonly scope: CapsuleScopeRef;
  /** Its install record. */
  readonly record: DiscoveredCapsule;
  /** Its bus identity. */
  readonly source: MessageSource;
  /** When it was loaded, ms since the epoch. */
  readonly loadedAt: number;
  readonly #deps: LoadedCapsuleDeps;
  readonly #wasm: WasmCapsule<CapsuleInvocation> | undefined;
  readonly #abort = new AbortController();
  readonly #interceptors: Interceptor[] = [];
  readonly #subs: RoutedSubscription[] = [];
  /** True when its `[publish]` list covers {@link TURN_ANSWER_TOPIC}. */
  readonly #answers: boolean;
  /** Detached handlers whose ignored Final or Deny was already logged. */
  readonly #ignoredReply = new Set<string>();
  #cron: CronRunner | undefined;
  #loop: RunLoop | undefined;
  #loopState: RunLoopState = "none";
  #loopStartedAt = 0;
  #restarts = 0;
  #restartTimer: unknown;
  #ready = false;
  #notReadyReason: string | undefined;
  #readyWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  #closed = false;
  #consecutive = 0;
  #failures = 0;
  #successes = 0;
  #lastError: string | undefined;
  #lastErrorAt: number | undefined;
  #unhealthy = false;

  /** Wraps a capsule; {@link bind} connects it to the bus. */
  constructor(
    init: {
      key: string;
      scope: CapsuleScopeRef;
      record: DiscoveredCapsule;
      wasm?: WasmCapsule<CapsuleInvocation>;
    },
    deps: LoadedCapsuleDeps,
  ) {
    this.key = init.key;
    this.name = init.record.manifest.package.name;
    this.scope = init.scope;
    this.record = init.record;
    this.#wasm = init.wasm;
    this.#deps = deps;
    this.loadedAt = deps.clock.now();
    this.#answers = manifestAcl(init.record.manifest).publish.some((p) => {
      try {
        return TopicPattern.parse(p).matches(TURN_ANSWER_TOPIC);
      } catch {
        return false;
      }
    });
    this.source = {
      kind: init.record.manifest.capabilities.uplink ? "uplink" : "capsule",
      name: init.key,
    };
  }

  /** Its manifest. */
  get manifest(): CapsuleManifest {
    return this.record.manifest;
  }

  /** Its WebAssembly capsule, when it has `[wasm]`. */
  get wasm(): WasmCapsule<CapsuleInvocation> | undefined {
    return this.#wasm;
  }

  /** The context it publishes its own messages under (cron, describe answers). */
  get ownCtx(): BusContext {
    return { principal: this.scope.principal, source: this.source };
  }

  /** True when it serves `msg` (see `capsule_scope.ts`). */
  serves(msg: BusMessage): boolean {
    return scopeServes(this.scope, msg, (p) => this.#deps.shadowed(this.name, p));
  }

  /**
   * Binds interceptors, tools, describe and cron. Throws `CAPSULE_LOAD_FAILED` when a handler
   * the manifest names is not an export of the module, and whatever the bus throws (ACL).
   */
  bind(): void {
    const m = this.manifest;
    const wasm = this.#wasm;
    const needed = [
      ...m.subscribe.filter((s) => s.handler !== undefined).map((s) => ({
        what: `[subscribe] "${s.topic}"`,
        handler: s.handler!,
      })),
      ...m.tool.map((t) => ({ what: `[[tool]] "${t.name}"`, handler: t.handler })),
      ...m.command.filter((c) => c.handler !== undefined).map((c) => ({
        what: `[[command]] "${c.name}"`,
        handler: c.handler!,
      })),
    ];
    for (const n of needed) {
      if (wasm !== undefined && wasm.handlers.has(n.handler)) continue;
      throw new CapsuleError(
        CapsuleCode.CAPSULE_LOAD_FAILED,
        `Cannot load capsule "${this.name}": ${n.what} names handler "${n.handler}", which the module does not export; export a function (i32, i32) -> i64 named "${n.handler}" or fix the manifest`,
        { data: { name: this.name, reason: `handler "${n.handler}" is not exported` } },
      );
    }
    if (m.capabilities.uplink && !(wasm?.hasRunLoop ?? false)) {
      throw new CapsuleError(
        CapsuleCode.CAPSULE_LOAD_FAILED,
        `Cannot load uplink capsule "${this.name}": it does not export astrid_run; an uplink runs a loop that calls signal_ready once it is listening`,
        { data: { name: this.name, reason: "uplink without astrid_run" } },
      );
    }
    const bus = this.#deps.bus;
    const ctx = this.ownCtx;
    const principal = this.scope.kind === "principal" ? this.scope.principal : undefined;
    for (const s of m.subscribe) {
      if (s.handler === undefined) continue;
      const handler = s.handler;
      if (s.detach) {
        const sub = bus.subscribe(s.topic, {
          ctx,
          principal,
          budgetBytes: detachedBudgetBytes(this.#deps.maxInFlight),
          onEvict: (msg) => this.#evicted(msg, handler, sub.budgetBytes),
        });
        this.#subs.push(sub);
        void this.#pump(sub, (msg) => this.#runDetached(msg, handler));
        continue;
      }
      const priority = s.priority ?? DEFAULT_HANDLER_PRIORITY;
      const guard = s.guard ?? priority < DEFAULT_HANDLER_PRIORITY;
      this.#interceptors.push(
        bus.intercept(
          s.topic,
          (msg, call) => this.#intercept(msg, handler, guard, call.signal),
          {
            ctx,
            name: `${this.key}.${handler}`,
            priority,
            guard,
            timeoutMs: this.#deps.handlerTimeoutMs,
            // A principal scope serves its own principal only (`scopeServes`): out of the chain
            // for everyone else's messages, neither invoked nor counted.
            ...(principal !== undefined ? { principal } : {}),
          },
        ),
      );
    }
    for (const tool of m.tool) {
      const sub = bus.subscribe(`${TOOL_EXECUTE_PREFIX}.${tool.name}`, { ctx, principal });
      this.#subs.push(sub);
      void this.#pump(sub, (msg) => this.#runTool(msg, tool));
    }
    if (m.tool.length > 0) {
      const sub = bus.subscribe(TOOL_DESCRIBE_TOPIC, { ctx, principal });
      this.#subs.push(sub);
      void this.#pump(sub, (msg) => this.#describe(msg));
    }
    if (m.cron.length > 0) {
      const cron = new CronRunner(this.#deps.clock, this.#deps.timers, {
        onError: (job, err) =>
          this.#deps.log.error("Cron job failed", {
            capsule: this.key,
            job,
            error: errorText(err),
          }),
      });
      this.#cron = cron;
      for (const c of m.cron) {
        const schedule = CronSchedule.parse(c.schedule);
        cron.add(c.name, schedule, async () => {
          await bus.publish(c.topic, c.payload, { ctx });
        });
      }
    }
  }

  /** Starts `astrid_run` when the module exports it (restarted with backoff on failure). */
  startRunLoop(): void {
    if (this.#wasm?.hasRunLoop !== true || this.#closed) return;
    this.#startLoop();
  }

  /** The run loop's state. */
  get runLoopState(): RunLoopState {
    return this.#loopState;
  }

  /** True while a run loop or a cron job keeps it working without clients. */
  get keepsAlive(): boolean {
    return this.#loopState === "running" || this.#loopState === "restarting" ||
      (this.#cron?.size ?? 0) > 0;
  }

  /** The cron jobs and their next due times. */
  cronJobs(): { name: string; next?: number }[] {
    return this.#cron?.jobs() ?? [];
  }

  /** Marks it ready (its guest called `signal_ready`). */
  markReady(): void {
    if (this.#ready) return;
    this.#ready = true;
    for (const w of this.#readyWaiters.splice(0)) w.resolve();
  }

  /** True once it signalled ready. */
  get ready(): boolean {
    return this.#ready;
  }

  /**
   * Resolves when it signals ready; rejects with `CAPSULE_NOT_READY` after `timeoutMs`, or at
   * once when its run loop ends first.
   */
  whenReady(timeoutMs: number): Promise<void> {
    if (this.#ready) return Promise.resolve();
    if (this.#notReadyReason !== undefined) {
      return Promise.reject(this.#notReady(this.#notReadyReason, 0));
    }
    return new Promise((resolve, reject) => {
      const timers = this.#deps.timers;
      const waiter = {
        resolve: () => {
          timers.clearTimeout(timer);
          resolve();
        },
        reject: (err: Error) => {
          timers.clearTimeout(timer);
          reject(err);
        },
      };
      const timer = timers.setTimeout(() => {
        this.#readyWaiters = this.#readyWaiters.filter((w) => w !== waiter);
        reject(this.#notReady(`it did not call signal_ready within ${timeoutMs} ms`, timeoutMs));
      }, timeoutMs);
      this.#readyWaiters.push(waiter);
    });
  }

  /** Its health. */
  health(): CapsuleHealth {
    return {
      status: this.#unhealthy ? "unhealthy" : "ok",
      consecutiveFailures: this.#consecutive,
      failures: this.#failures,
      successes: this.#successes,
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
      ...(this.#lastErrorAt !== undefined ? { lastErrorAt: this.#lastErrorAt } : {}),
    };
  }

  /**
   * Runs a handler-backed `[[command]]` for `context`'s principal: the export receives
   * `{ command, arguments, principal, session?, workspace_id? }` and answers like a tool.
   */
  async runCommand(
    name: string,
    args: JsonValue,
    context: Omit<CapsuleInvocation, "capsuleKey">,
  ): Promise<ToolReply> {
    const cmd = this.manifest.command.find((c) => c.name === name && c.handler !== undefined);
    if (cmd === undefined || this.#wasm === undefined) {
      throw new CapsuleError(
        CapsuleCode.CAPSULE_NOT_FOUND,
        `Capsule "${this.name}" has no handler command "${name}"`,
        { data: { name } },
      );
    }
    const payload: Record<string, JsonValue> = {
      command: name,
      arguments: args,
      principal: context.principal,
    };
    if (context.session !== undefined) payload.session = context.session;
    if (context.workspaceId !== undefined) payload.workspace_id = context.workspaceId;
    const who = `${this.name}.${cmd.handler}`;
    try {
      const bytes = await this.#wasm.invoke(
        cmd.handler!,
        new TextEncoder().encode(JSON.stringify(payload)),
        { context: { ...context, capsuleKey: this.key }, signal: this.#abort.signal },
      );
      const reply = decodeToolReply(bytes, who);
      this.#succeeded();
      return reply;
    } catch (err) {
      this.#failed(err);
      return { isError: true, content: errorText(err), code: errorCode(err) };
    }
  }

  /** Unbinds everything and stops the run loop (the registry releases the wasm capsule). */
  stop(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort(
      new CapsuleError(CapsuleCode.CAPSULE_NOT_FOUND, `Capsule "${this.key}" was unloaded`, {
        data: { name: this.name },
      }),
    );
    for (const i of this.#interceptors) i.close();
    for (const s of this.#subs) s.close();
    this.#deps.bus.closeOwner(this.source);
    this.#cron?.stop();
    if (this.#restartTimer !== undefined) this.#deps.timers.clearTimeout(this.#restartTimer);
    this.#loop?.stop();
    if (this.#loopState === "running" || this.#loopState === "restarting") {
      this.#loopState = "stopped";
    }
    for (const w of this.#readyWaiters.splice(0)) {
      w.reject(this.#notReady("it was unloaded before it signalled ready", 0));
    }
  }

  /** True once stopped. */
  get closed(): boolean {
    return this.#closed;
  }

  async #intercept(
    msg: BusMessage,
    handler: string,
    guard: boolean,
    signal: AbortSignal,
  ): Promise<InterceptorOutcome> {
    if (!this.serves(msg)) return { action: "continue" };
    const wasm = this.#wasm!;
    const who = `${this.name}.${handler}`;
    try {
      const reply = await wasm.invoke(handler, invocationPayload(msg), {
        context: invocationContext(msg, this.key),
        signal: anySignal(signal, this.#abort.signal),
      });
      const outcome = decodeInterceptorReply(reply, who);
      this.#succeeded();
      return outcome;
    } catch (err) {
      this.#failed(err);
      if (!this.#closed) {
        this.#announceFailure(msg, handler, failure(err), {
          guard,
          outcome: guard ? "denied" : "skipped",
        });
      }
      throw err;
    }
  }

  /**
   * Publishes {@link HANDLER_FAILED_TOPIC} for `msg`'s principal: which capsule's handler failed
   * on which message (topic, `request_id`, `session`), why, and what became of the message
   * (`how`). Not for a failure on that topic itself (no loop).
   */
  #announceFailure(
    msg: BusMessage,
    handler: string,
    error: { code: string; message: string },
    how: FailureHow,
  ): void {
    if (msg.topic === HANDLER_FAILED_TOPIC) return;
    const p = msg.payload.kind === "json" && typeof msg.payload.value === "object" &&
        msg.payload.value !== null && !Array.isArray(msg.payload.value)
      ? msg.payload.value as Record<string, JsonValue>
      : {};
    const requestId = typeof p.request_id === "string" ? p.request_id : msg.request_id;
    const notice: Record<string, JsonValue> = {
      capsule: this.name,
      handler,
      topic: msg.topic,
      guard: how.guard,
      outcome: how.outcome,
      answers: this.#answers,
      error,
    };
    if (requestId !== undefined) notice.request_id = requestId;
    if (typeof p.session === "string") notice.session = p.session;
    if (typeof p.workspace_id === "string") notice.workspace_id = p.workspace_id;
    this.#deps.bus.publish(HANDLER_FAILED_TOPIC, notice, {
      ctx: { principal: msg.principal, source: { kind: "kernel", name: "capsule_runtime" } },
      ...(requestId !== undefined ? { request_id: requestId } : {}),
    }).catch((e) =>
      this.#deps.log.error("Cannot announce a handler failure", {
        capsule: this.key,
        topic: msg.topic,
        error: errorText(e),
      })
    );
  }

  async #pump(sub: RoutedSubscription, handle: (msg: BusMessage) => Promise<void>): Promise<void> {
    const slots = new Slots(this.#deps.maxInFlight);
    for (;;) {
      await slots.acquire();
      let msg: BusMessage;
      try {
        msg = await sub.recv({ signal: this.#abort.signal });
      } catch {
        slots.release();
        return; // closed or unloaded
      }
      handle(msg).catch((err) =>
        this.#deps.log.error("Capsule dispatch failed", {
          capsule: this.key,
          topic: msg.topic,
          error: errorText(err),
        })
      ).finally(() => slots.release());
    }
  }

  /**
   * A detached handler's queue evicted `msg` (over its byte budget): it will never run on it, so
   * its publisher is told at once ({@link HANDLER_FAILED_TOPIC}, code `EVICTED`, for the
   * message's principal) instead of waiting out its own timeout.
   */
  #evicted(msg: BusMessage, handler: string, budgetBytes: number): void {
    if (this.#closed || msg.topic === LAGGED_TOPIC || !this.serves(msg)) return;
    this.#announceFailure(msg, handler, {
      code: "EVICTED",
      message:
        `Detached handler "${this.name}.${handler}" dropped the message: its queue was over its byte budget (${budgetBytes} bytes)`,
    }, { guard: false, outcome: "failed" });
  }

  async #runDetached(msg: BusMessage, handler: string): Promise<void> {
    if (msg.topic === LAGGED_TOPIC) {
      this.#deps.log.error("Detached handler lost messages: its queue was over budget", {
        capsule: this.key,
        handler,
        ...(msg.payload.kind === "json" && typeof msg.payload.value === "object"
          ? { lag: msg.payload.value }
          : {}),
      });
      return;
    }
    if (!this.serves(msg)) return;
    const who = `${this.name}.${handler}`;
    let outcome: InterceptorOutcome;
    try {
      const reply = await this.#wasm!.invoke(handler, invocationPayload(msg), {
        context: invocationContext(msg, this.key),
        signal: this.#abort.signal,
        timeoutMs: this.#deps.handlerTimeoutMs,
      });
      outcome = decodeInterceptorReply(reply, who);
      this.#succeeded();
    } catch (err) {
      if (this.#closed) return; // unloading: aborted on purpose
      this.#failed(err);
      this.#announceFailure(msg, handler, failure(err), { guard: false, outcome: "failed" });
      this.#deps.log.error("Detached handler failed", {
        capsule: this.key,
        handler,
        topic: msg.topic,
        principal: msg.principal,
        code: errorCode(err),
        error: errorText(err),
      });
      return;
    }
    if (outcome.action !== "continue" && !this.#ignoredReply.has(handler)) {
      this.#ignoredReply.add(handler);
      this.#deps.log.warn(
        `Detached handler "${who}" answered ${outcome.action}: ignored, the message was delivered before it ran (logged once)`,
        { capsule: this.key, handler, topic: msg.topic },
      );
    }
  }

  async #runTool(msg: BusMessage, tool: ToolEntry): Promise<void> {
    if (!this.serves(msg)) return;
    const requestId = toolRequestId(msg);
    const who = `${this.name}.${tool.handler}`;
    let reply: ToolReply;
    try {
      const bytes = await this.#wasm!.invoke(
        tool.handler,
        invocationPayload(msg, { tool: tool.name }),
        {
          context: invocationContext(msg, this.key),
          signal: this.#abort.signal,
        },
      );
      reply = decodeToolReply(bytes, who);
      this.#succeeded();
    } catch (err) {
      this.#failed(err);
      reply = {
        isError: true,
        content: `Tool "${tool.name}" failed: ${errorText(err)}`,
        code: errorCode(err),
      };
    }
    if (this.#closed && reply.isError) return; // unloading: nobody should see a half answer
    await this.#deps.bus.publish(
      `${TOOL_EXECUTE_PREFIX}.${tool.name}.result`,
      toolResultPayload(msg, { ...reply, tool: tool.name, capsule: this.name, requestId }),
      { ctx: { principal: msg.principal, source: this.source }, request_id: requestId },
    );
  }

  async #describe(msg: BusMessage): Promise<void> {
    if (!this.serves(msg)) return;
    await this.#deps.bus.publish(
      `${TOOL_DESCRIBE_RESPONSE_PREFIX}.${this.name}`,
      describePayload(msg, this.name, this.manifest.tool),
      { ctx: { principal: msg.principal, source: this.source }, request_id: msg.request_id },
    );
  }

  #startLoop(): void {
    const wasm = this.#wasm!;
    let loop: RunLoop;
    try {
      loop = wasm.startRunLoop({
        context: { principal: this.scope.principal, capsuleKey: this.key },
      });
    } catch (err) {
      this.#loopEnded({ outcome: "failed", error: err });
      return;
    }
    this.#loop = loop;
    this.#loopState = "running";
    this.#loopStartedAt = this.#deps.clock.now();
    loop.done.then((exit) =>
      this.#loopEnded(
        exit.outcome === "failed" ? { outcome: "failed", error: exit.error } : exit,
      )
    );
  }

  #loopEnded(
    exit: { outcome: "returned" | "stopped" } | { outcome: "failed"; error: unknown },
  ): void {
    this.#loop = undefined;
    if (this.#closed) return;
    const log = this.#deps.log;
    if (!this.#ready) {
      const why = exit.outcome === "failed"
        ? `its run loop failed before it signalled ready: ${errorText(exit.error)}`
        : `its run loop ended (${exit.outcome}) before it signalled ready`;
      this.#notReadyReason ??= why;
      for (const w of this.#readyWaiters.splice(0)) w.reject(this.#notReady(why, 0));
    }
    if (exit.outcome !== "failed") {
      this.#loopState = exit.outcome;
      log.info("Capsule run loop ended", { capsule: this.key, outcome: exit.outcome });
      return;
    }
    this.#failed(exit.error);
    const now = this.#deps.clock.now();
    if (now - this.#loopStartedAt >= this.#deps.restartWindowMs) this.#restarts = 0;
    if (this.#restarts >= this.#deps.maxRestarts) {
      this.#loopState = "failed";
      this.#markUnhealthy(`its run loop failed ${this.#restarts + 1} times`);
      log.error("Capsule run loop failed; not restarting", {
        capsule: this.key,
        restarts: this.#restarts,
        error: errorText(exit.error),
      });
      return;
    }
    const delay = this.#deps.restartBackoffMs * 2 ** this.#restarts;
    this.#restarts++;
    this.#loopState = "restarting";
    log.warn("Capsule run loop failed; restarting", {
      capsule: this.key,
      attempt: this.#restarts,
      delay_ms: delay,
      error: errorText(exit.error),
    });
    this.#restartTimer = this.#deps.timers.setTimeout(() => {
      this.#restartTimer = undefined;
      if (!this.#closed) this.#startLoop();
    }, delay);
  }

  #succeeded(): void {
    this.#successes++;
    this.#consecutive = 0;
    if (this.#unhealthy && this.#loopState !== "failed") {
      this.#unhealthy = false;
      this.#deps.log.info("Capsule is healthy again", { capsule: this.key });
    }
  }

  #failed(err: unknown): void {
    if (this.#closed) return;
    const code = errorCode(err);
    if (!FAILURE_CODES.has(code)) return;
    this.#failures++;
    this.#consecutive++;
    this.#lastError = errorText(err);
    this.#lastErrorAt = this.#deps.clock.now();
    if (this.#consecutive >= this.#deps.unhealthyAfter) {
      this.#markUnhealthy(`${this.#consecutive} invocations failed in a row`);
    }
  }

  #markUnhealthy(why: string): void {
    if (this.#unhealthy) return;
    this.#unhealthy = true;
    this.#deps.log.error("Capsule is unhealthy", {
      capsule: this.key,
      reason: why,
      last_error: this.#lastError,
    });
  }

  #notReady(why: string, limit: number): CapsuleError {
    return new CapsuleError(
      CapsuleCode.CAPSULE_NOT_READY,
      `Uplink capsule "${this.name}" is not ready: ${why}`,
      { data: { name: this.name, limit, reason: why } },
    );
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function failure(err: unknown): { code: string; message: string } {
  return { code: errorCode(err), message: errorText(err) };
}

function errorCode(err: unknown): string {
  return err instanceof AstridError ? err.code : "INTERNAL";
}

/** A signal aborted when either `a` or `b` aborts. */
function anySignal(a: AbortSignal, b: AbortSignal): AbortSignal {
  return AbortSignal.any([a, b]);
}
