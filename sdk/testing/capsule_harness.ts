/**
 * `testCapsule()`: boots a real, in-process Astrid kernel (the daemon, with its capsule runtime,
 * host ABI, security pipeline and audit log) in a temporary `ASTRID_HOME`, with the capsule
 * built (`astrid build`, cached) and installed, so a capsule's tests run against the real
 * host ABI. The scaffolded `tests/*_test.ts` of `astrid capsule new` use it; `astrid capsule
 * test` runs them with `astrid/testing` mapped here.
 *
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { testCapsule } from "astrid/testing";
 *
 * Deno.test("greet greets", async () => {
 *   await using capsule = await testCapsule(new URL("..", import.meta.url));
 *   const result = await capsule.callTool("greet", { name: "Ada" });
 *   assert.deepEqual(result.json(), { message: "Hello, Ada!" });
 * });
 * ```
 *
 * @module
 */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { bootDaemon, type Daemon, DaemonClient } from "../../kernel/daemon/mod.ts";
import { AstridHome } from "../../kernel/home/mod.ts";
import { CapsuleRegistry, installCapsule } from "../../kernel/capsule/mod.ts";
import type { BusMessage, EventBus, JsonValue, PublishResult } from "../../kernel/events/mod.ts";
import { principalId } from "../../kernel/identity/mod.ts";
import { systemClock } from "../../kernel/clock.ts";
import { buildCapsule, type BuildOptions, type BuildResult } from "../build/mod.ts";

/** Options of {@link testCapsule}. */
export interface TestCapsuleOptions {
  /** The principal calls act for by default (default `default`). */
  principal?: string;
  /** `[env]` values to install the capsule with. */
  env?: Record<string, string | readonly string[]>;
  /** Other capsule directories (or `.capsule` files) to install beside it. */
  with?: readonly (string | URL)[];
  /** Build options (debug, cache directory). */
  build?: BuildOptions;
  /** How long a call waits for its answer, ms (default 30,000). */
  timeoutMs?: number;
  /** The security mode (default `guided`, as for a new user; `autonomous` asks nothing). */
  mode?: "safe" | "guided" | "autonomous";
  /** Extra `etc/config.toml` text (the system config layer). */
  configToml?: string;
  /**
   * Bind calls to a workspace (a directory, or `true` for an empty temporary one): a client
   * session attaches to it, and calls carry that session and workspace, so `workspace://`
   * files (the session overlay) and native processes work as in a real session.
   */
  workspace?: string | true;
}

/** A tool's answer. */
export interface ToolCallResult {
  /** True when the tool failed (a non-OK status, a trap, a timeout). */
  readonly isError: boolean;
  /** The tool's text: its result, or the error message. */
  readonly content: string;
  /** The status or engine code of a failure (`INVALID_ARGUMENT`, `WASM_TRAP`, …). */
  readonly code?: string;
  /** The result message as published on `tool.v1.execute.<name>.result`. */
  readonly message: BusMessage;
  /** The content parsed as JSON. */
  json<T = unknown>(): T;
}

/** Options of one call. */
export interface CallOptions {
  /** The principal it acts for (default the harness's). */
  principal?: string;
  /** A session id stamped in the payload. */
  session?: string;
  /** How long to wait, ms. */
  timeoutMs?: number;
}

function toPath(p: string | URL): string {
  return p instanceof URL ? fileURLToPath(p) : resolve(p);
}

let counter = 0;

/** A booted kernel with capsules installed; see {@link testCapsule}. */
export class CapsuleHarness implements AsyncDisposable {
  /** The temporary `ASTRID_HOME`. */
  readonly home: string;
  /** The daemon (in this process). */
  readonly daemon: Daemon;
  /** The build of the capsule under test. */
  readonly build: BuildResult;
  /** The workspace calls act in, when bound ({@link TestCapsuleOptions.workspace}). */
  readonly workspace?: { readonly root: string; readonly id: string; readonly session: string };
  readonly #principal: string;
  readonly #timeoutMs: number;
  readonly #client: DaemonClient | undefined;
  #closed = false;

  private constructor(
    home: string,
    daemon: Daemon,
    build: BuildResult,
    options: TestCapsuleOptions,
    session?: { client: DaemonClient; root: string; id: string; session: string },
  ) {
    this.home = home;
    this.daemon = daemon;
    this.build = build;
    this.#principal = options.principal ?? "default";
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#client = session?.client;
    if (session !== undefined) {
      this.workspace = { root: session.root, id: session.id, session: session.session };
    }
  }

  /** Builds and installs `dir` (and `options.with`) into a temp home and boots the kernel. */
  static async start(dir: string | URL, options: TestCapsuleOptions = {}): Promise<CapsuleHarness> {
    const root = await Deno.makeTempDir({ dir: "/tmp", prefix: "astrid-t" });
    try {
      const home = await AstridHome.open(root);
      const config = [
        options.mode !== undefined ? `[security]\nmode = "${options.mode}"\n` : "",
        options.configToml ?? "",
      ].join("\n");
      if (config.trim() !== "") await Deno.writeTextFile(join(root, "etc", "config.toml"), config);
      const principal = principalId(options.principal ?? "default");
      await home.ensurePrincipal(principal);
      let main: BuildResult | undefined;
      for (const [i, p] of [dir, ...(options.with ?? [])].entries()) {
        const path = toPath(p);
        let archive: Uint8Array;
        if (path.endsWith(".capsule")) {
          archive = await Deno.readFile(path);
        } else {
          const built = await buildCapsule(path, options.build);
          if (i === 0) main = built;
          archive = built.archive;
        }
        await installCapsule(archive, {
          home,
          principal,
          scope: "user",
          source: path,
          clock: systemClock,
          ...(i === 0 && options.env !== undefined ? { env: options.env } : {}),
        });
      }
      if (main === undefined) {
        throw new Error(
          "testCapsule() needs a capsule directory (not a .capsule) as its first argument",
        );
      }
      const daemon = await bootDaemon({
        home: root,
        env: { get: () => undefined },
        echoLog: false,
        idleTimeoutSecs: 3600,
      });
      if (options.workspace === undefined) return new CapsuleHarness(root, daemon, main, options);
      try {
        let workspace = options.workspace === true
          ? join(root, "workspace")
          : resolve(options.workspace);
        await Deno.mkdir(workspace, { recursive: true });
        workspace = await Deno.realPath(workspace);
        const session = "capsule-test";
        const client = await DaemonClient.connect(daemon.paths.socket, {
          token: (await Deno.readTextFile(daemon.paths.token)).trim(),
          client: "capsule-test",
          principal,
          session,
          workspace,
        });
        const id = (await Deno.readTextFile(join(workspace, ".astrid", "workspace-id"))).trim();
        return new CapsuleHarness(root, daemon, main, options, {
          client,
          root: workspace,
          id,
          session,
        });
      } catch (err) {
        await daemon.shutdown("test setup failed");
        throw err;
      }
    } catch (err) {
      await Deno.remove(root, { recursive: true }).catch(() => {});
      throw err;
    }
  }

  /**
   * Waits until the capsule under test calls `runtime.signalReady()` (a run loop should, once
   * it has subscribed, so nothing published after this is missed).
   */
  async ready(timeoutMs: number = this.#timeoutMs): Promise<void> {
    const host = this.daemon.capsules as unknown as { registry?: unknown };
    if (!(host.registry instanceof CapsuleRegistry)) {
      throw new Error("ready() needs the daemon's capsule runtime");
    }
    const registry = host.registry;
    const info = registry.list().find((c) => c.name === this.build.name);
    const loaded = info === undefined ? undefined : registry.capsule(info.key);
    if (loaded === undefined) {
      throw new Error(
        `Capsule "${this.build.name}" is not loaded: ${info?.error ?? info?.state ?? "not found"}`,
      );
    }
    await loaded.whenReady(timeoutMs);
  }

  /** The kernel's bus. */
  get bus(): EventBus {
    return this.daemon.bus;
  }

  #ctx(principal?: string) {
    return {
      principal: principalId(principal ?? this.#principal),
      source: { kind: "kernel" as const, name: "capsule-test" },
    };
  }

  /**
   * Waits for the next message on `pattern` (subscription semantics) that `accept` takes,
   * started before `trigger` runs so nothing is missed.
   */
  async waitFor(
    pattern: string,
    trigger: () => unknown,
    options: { accept?: (msg: BusMessage) => boolean; timeoutMs?: number } = {},
  ): Promise<BusMessage> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    let listener: { close(): void } | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const arrived = new Promise<BusMessage>((resolve, reject) => {
        listener = this.bus.listen(pattern, (msg) => {
          if (options.accept === undefined || options.accept(msg)) resolve(msg);
        });
        timer = setTimeout(
          () => reject(new Error(`No message on "${pattern}" within ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      await trigger();
      return await arrived;
    } finally {
      listener?.close();
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  /**
   * Collects the messages on `pattern` (subscription semantics) from before `trigger` runs
   * until `until` accepts one (included).
   */
  async collect(
    pattern: string,
    trigger: () => unknown,
    options: { until: (msg: BusMessage) => boolean; timeoutMs?: number },
  ): Promise<BusMessage[]> {
    const seen: BusMessage[] = [];
    await this.waitFor(pattern, trigger, {
      accept: (msg) => {
        seen.push(msg);
        return options.until(msg);
      },
      timeoutMs: options.timeoutMs,
    });
    return seen;
  }

  /**
   * Publishes `payload` on `topic` as the kernel, for the harness's principal. With a bound
   * workspace, a JSON-object payload gets its `session` and `workspace_id` (unless it has them).
   */
  async publish(
    topic: string,
    payload: JsonValue,
    options: CallOptions & { requestId?: string } = {},
  ): Promise<PublishResult> {
    const ws = this.workspace;
    if (
      ws !== undefined && typeof payload === "object" && payload !== null && !Array.isArray(payload)
    ) {
      payload = { session: ws.session, workspace_id: ws.id, ...payload };
    }
    return await this.bus.publish(topic, payload, {
      ctx: this.#ctx(options.principal),
      ...(options.requestId !== undefined ? { request_id: options.requestId } : {}),
    });
  }

  /** Calls tool `name` with `args` over the bus (`tool.v1.execute.<name>`) and waits for its result. */
  async callTool(
    name: string,
    args: JsonValue = {},
    options: CallOptions = {},
  ): Promise<ToolCallResult> {
    const requestId = `test-${Date.now().toString(36)}-${++counter}`;
    const payload: Record<string, JsonValue> = { arguments: args };
    if (options.session !== undefined) payload.session = options.session;
    const message = await this.waitFor(
      `tool.v1.execute.${name}.result`,
      () => this.publish(`tool.v1.execute.${name}`, payload, { ...options, requestId }),
      { accept: (m) => m.request_id === requestId, timeoutMs: options.timeoutMs },
    );
    const value = (message.payload.kind === "json" ? message.payload.value : {}) as Record<
      string,
      JsonValue
    >;
    const content = typeof value.content === "string" ? value.content : "";
    const error = value.error as { code?: string } | undefined;
    return {
      isError: value.is_error === true,
      content,
      ...(error?.code !== undefined ? { code: error.code } : {}),
      message,
      json: <T>() => JSON.parse(content) as T,
    };
  }

  /** The tools the capsule describes (`tool.v1.request.describe`). */
  async describeTools(): Promise<{ name: string; description: string; input_schema: JsonValue }[]> {
    const requestId = `describe-${++counter}`;
    const msg = await this.waitFor(
      `tool.v1.response.describe.${this.build.name}`,
      () => this.publish("tool.v1.request.describe", {}, { requestId }),
      { accept: (m) => m.request_id === requestId },
    );
    const value = (msg.payload.kind === "json" ? msg.payload.value : {}) as { tools?: [] };
    return value.tools ?? [];
  }

  /**
   * The capsule's log file for the principal (what `log.*` wrote), or "" when none yet. Lines
   * are written asynchronously: with `waitFor`, re-reads until the text matches (or the
   * timeout passes, returning what is there).
   */
  async logText(
    options: { principal?: string; waitFor?: string | RegExp; timeoutMs?: number } = {},
  ): Promise<string> {
    const path = join(
      this.home,
      "home",
      options.principal ?? this.#principal,
      ".local",
      "log",
      `${this.build.name}.log`,
    );
    const read = async () => {
      try {
        return await Deno.readTextFile(path);
      } catch {
        return "";
      }
    };
    const matches = (text: string) =>
      options.waitFor === undefined ||
      (typeof options.waitFor === "string"
        ? text.includes(options.waitFor)
        : options.waitFor.test(text));
    const deadline = Date.now() + (options.timeoutMs ?? 5_000);
    let text = await read();
    while (!matches(text) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      text = await read();
    }
    return text;
  }

  /** Stops the kernel and removes the temp home. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#client?.close();
      await this.daemon.shutdown("test finished");
    } finally {
      await Deno.remove(this.home, { recursive: true }).catch(() => {});
    }
  }

  /** Same as {@link close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** A message's JSON payload (bytes payloads are decoded as UTF-8 JSON). */
export function messageJson<T = unknown>(msg: BusMessage): T {
  if (msg.payload.kind === "json") return msg.payload.value as T;
  return JSON.parse(new TextDecoder().decode(msg.payload.bytes)) as T;
}

/** Builds and installs the capsule in `dir`, boots a kernel, and returns the harness. */
export function testCapsule(
  dir: string | URL,
  options: TestCapsuleOptions = {},
): Promise<CapsuleHarness> {
  return CapsuleHarness.start(dir, options);
}

/**
 * The build cache tests share: `$ASTRID_BUILD_CACHE`, else `<tmp>/astrid-test-build-cache`.
 * Entries are content-addressed, so every test file (and process) of a run may share it and
 * each test capsule is compiled once.
 */
export function testBuildCacheDir(): string {
  const explicit = Deno.env.get("ASTRID_BUILD_CACHE");
  if (explicit !== undefined && explicit !== "") return explicit;
  return join(Deno.env.get("TMPDIR") ?? "/tmp", "astrid-test-build-cache");
}
