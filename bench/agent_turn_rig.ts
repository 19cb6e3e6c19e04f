/**
 * A real agent stack for the concurrency acceptance (`tests/concurrency_test.ts`) and the turn
 * bench (`bench/agent_turn_latency.ts`): the real kernel booted in-process (`bootDaemon`) with
 * the real `orchestrator`, `session` (the history) and `provider-openai-compat` capsules (built
 * from `capsules/`, cached) installed by the operator, against the scripted OpenAI fake (`tests/fakes/`, script
 * `echo.json`: each answer is `echo: <the prompt>`, so every answer proves whose prompt it
 * answers).
 *
 * The provider is a copy whose `net` list is `["127.0.0.1:*"]` (the shipped manifest allows only
 * real hosts; loopback needs an exact `net` entry): `tests/fixtures/loopback_capsule.ts`. No
 * prompt builder is installed: it would spend `DESCRIBE_WAIT_MS` on an empty tool fan-out in
 * every turn, and the orchestrator goes on without one after `ASSEMBLE_TIMEOUT_MS` (set to 1).
 * The operator's `[env]` values serve every principal (system-scope capsules), so the 1,000
 * principals need no files of their own.
 *
 * Prompts go in two ways: {@link AgentRig.promptOnBus} publishes `user.v1.prompt` on the bus
 * with the principal stamped (as an uplink's message is), and {@link AgentRig.connect} opens a
 * daemon socket connection as a principal (one connection per principal) for
 * {@link promptThroughClient}.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bootDaemon, type Daemon, DaemonClient } from "../kernel/daemon/mod.ts";
import type { BusMessage, JsonValue } from "../kernel/events/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";
import { type FakeServer, startOpenAiFake } from "../tests/fakes/mod.ts";
import { type BuiltCapsule, installBuilt } from "../tests/fixtures/install_built.ts";
import { loopbackCopy } from "../tests/fixtures/loopback_capsule.ts";

/** The API key the fake demands and the provider's `[env]` carries. */
const KEY = "sk-agent-turn-rig-0123456789";
const ROOT = new URL("..", import.meta.url);

/** Options of {@link AgentRig.start}. */
export interface AgentRigOptions {
  /** `runtime.max_instances`: instances per capsule at most (0 = the host default). */
  maxInstances?: number;
  /** The orchestrator's `STEP_TIMEOUT_MS` (default 60 000). */
  stepTimeoutMs?: number;
  /** Also install the `session` capsule, which keeps each session's history (default true). */
  session?: boolean;
}

/** One answered turn. */
export interface TurnResult {
  /** The principal the response was stamped with. */
  readonly principal: string;
  /** The response's `text`. */
  readonly text: string;
  /** The response's `stop_reason`. */
  readonly stopReason: string;
  /** The response's `error.message`, when it carried one. */
  readonly error?: string;
  /** Ms from publishing the prompt to receiving `agent.v1.response`. */
  readonly ms: number;
  /**
   * Responses to other prompts, or of other principals, that reached this prompt's connection
   * before its own (through the daemon; always 0 on the bus, where the listener sees all).
   */
  readonly foreign: number;
}

function payloadOf(msg: BusMessage): Record<string, JsonValue> {
  if (msg.payload.kind !== "json") return {};
  return msg.payload.value as Record<string, JsonValue>;
}

function resultOf(
  p: Record<string, JsonValue>,
  principal: string,
  timing: { ms: number; foreign: number },
): TurnResult {
  const error = (p.error as { message?: string } | null | undefined)?.message;
  return {
    principal,
    text: typeof p.text === "string" ? p.text : "",
    stopReason: typeof p.stop_reason === "string" ? p.stop_reason : "",
    ...(error !== undefined ? { error } : {}),
    ...timing,
  };
}

let seq = 0;

/** The kernel, its capsules and the fake; see the module doc. */
export class AgentRig implements AsyncDisposable {
  /** The temporary `ASTRID_HOME`. */
  readonly root: string;
  /** The booted kernel. */
  readonly daemon: Daemon;
  /** The OpenAI fake the provider talks to. */
  readonly fake: FakeServer;
  readonly #token: string;

  private constructor(root: string, daemon: Daemon, fake: FakeServer, token: string) {
    this.root = root;
    this.daemon = daemon;
    this.fake = fake;
    this.#token = token;
  }

  /** Builds (cached) and installs the capsules, starts the fake and boots the kernel. */
  static async start(options: AgentRigOptions = {}): Promise<AgentRig> {
    const root = await Deno.makeTempDir({ dir: "/tmp", prefix: "at" });
    const fake = await startOpenAiFake({ script: "echo", apiKey: KEY });
    try {
      const home = await AstridHome.open(root);
      const capsules: BuiltCapsule[] = [
        [fileURLToPath(new URL("capsules/orchestrator", ROOT)), {
          PROVIDER: "openai",
          MODEL: "fake-model",
          MAX_STEPS: "2",
          ASSEMBLE_TIMEOUT_MS: "1",
          STEP_TIMEOUT_MS: String(options.stepTimeoutMs ?? 60_000),
        }],
      ];
      if (options.session ?? true) {
        capsules.push([fileURLToPath(new URL("capsules/session", ROOT)), {}]);
      }
      capsules.push([await loopbackCopy("provider-openai-compat", join(root, "src")), {
        API_KEY: KEY,
        BASE_URL: fake.baseUrl,
        MODEL: "fake-model",
      }]);
      await installBuilt(home, capsules);
      await Deno.writeTextFile(
        join(root, "etc", "config.toml"),
        [
          "[security]",
          'mode = "autonomous"',
          "[runtime]",
          `max_instances = ${options.maxInstances ?? 0}`,
          '[pricing."openai/fake-model"]',
          "input_per_mtok = 0.001",
          "output_per_mtok = 0.001",
          "",
        ].join("\n"),
      );
      const daemon = await bootDaemon({
        home: root,
        env: { get: () => undefined },
        echoLog: false,
        idleTimeoutSecs: 3600,
        // 1,000 hellos at once each record a new principal (an audited identity write).
        helloTimeoutMs: 60_000,
      });
      const token = (await Deno.readTextFile(daemon.paths.token)).trim();
      return new AgentRig(root, daemon, fake, token);
    } catch (err) {
      await fake.close();
      await Deno.remove(root, { recursive: true }).catch(() => {});
      throw err;
    }
  }

  /**
   * Publishes `user.v1.prompt` `{text, request_id, session}` on the bus for `principal` (stamped
   * as the kernel stamps an uplink's turn) and resolves with its `agent.v1.response`; rejects
   * after `timeoutMs`.
   */
  async promptOnBus(principal: string, text: string, timeoutMs: number): Promise<TurnResult> {
    const requestId = `r-${++seq}`;
    const bus = this.daemon.bus;
    let listener: { close(): void } | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const t0 = performance.now();
    try {
      const done = new Promise<TurnResult>((resolve, reject) => {
        listener = bus.listen("agent.v1.response", (msg) => {
          const p = payloadOf(msg);
          if (p.request_id !== requestId) return;
          resolve(resultOf(p, msg.principal, { ms: performance.now() - t0, foreign: 0 }));
        });
        timer = setTimeout(
          () => reject(new Error(`No agent.v1.response for ${principal} within ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      const published = bus.publish("user.v1.prompt", {
        text,
        request_id: requestId,
        session: `s-${principal}`,
      }, {
        ctx: { principal: principalId(principal), source: { kind: "kernel", name: "bench" } },
        request_id: requestId,
      });
      const result = await done;
      await published;
      return result;
    } finally {
      listener?.close();
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  /** A daemon socket connection acting as `principal` (created on first use). */
  async connect(principal: string): Promise<DaemonClient> {
    return await DaemonClient.connect(this.daemon.paths.socket, {
      token: this.#token,
      client: "bench",
      principal,
      timeoutMs: 60_000,
    });
  }

  /** One connection per principal of `principals`, opened `batch` at a time (default 100). */
  async connectAll(principals: readonly string[], batch = 100): Promise<DaemonClient[]> {
    const clients: DaemonClient[] = [];
    try {
      for (let i = 0; i < principals.length; i += batch) {
        clients.push(
          ...await Promise.all(principals.slice(i, i + batch).map((p) => this.connect(p))),
        );
      }
      return clients;
    } catch (err) {
      await Promise.allSettled(clients.map((c) => c.close()));
      throw err;
    }
  }

  /** Stops the kernel and the fake and deletes the home. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.daemon.shutdown("agent turn rig done").catch(() => {});
    await this.fake.close();
    await Deno.remove(this.root, { recursive: true }).catch(() => {});
  }
}

/**
 * Sends `text` as a user turn on `client`'s connection (its principal and session, stamped by
 * the daemon) and resolves with the turn's `agent.v1.response`; rejects after `timeoutMs`.
 */
export async function promptThroughClient(
  client: DaemonClient,
  text: string,
  timeoutMs: number,
): Promise<TurnResult> {
  const requestId = `c-${++seq}`;
  const sub = await client.subscribe("agent.v1.response");
  const t0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`No agent.v1.response within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    const answer = (async () => {
      let foreign = 0;
      for (;;) {
        const ev = await sub.next();
        if (ev === undefined) throw new Error("The subscription ended before the response");
        const p = (ev.payload ?? {}) as Record<string, JsonValue>;
        if (p.request_id !== requestId || ev.principal !== client.welcome.principal) {
          foreign++;
          continue;
        }
        return resultOf(p, ev.principal, { ms: performance.now() - t0, foreign });
      }
    })();
    await Promise.race([
      client.call("publish", {
        topic: "user.v1.prompt",
        payload: { text, request_id: requestId },
        request_id: requestId,
      }),
      timeout,
    ]);
    return await Promise.race([answer, timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    await sub.close().catch(() => {});
  }
}

/** The `q`-quantile (0..1) of `values` (nearest rank). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
