/**
 * The orchestrator, prompt-builder and session capsules, built from `capsules/` (cached) and
 * installed with test stand-ins (`tests/fixtures/stand_in_provider/`, a scripted model on the route
 * `stand-in`, and `tests/fixtures/stand_in_tools/`, an echo tool and a crashing tool) into a
 * temporary home; the real daemon, capsule registry, host ABI and bus run in-process. Each step
 * publishes `user.v1.prompt` and reads the turn back from `agent.v1.*`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { bootDaemon, type Daemon, DaemonClient } from "../kernel/daemon/mod.ts";
import type { BusMessage, JsonValue } from "../kernel/events/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";
import { type BuiltCapsule, installBuilt } from "./fixtures/install_built.ts";
import { stageAsCapsule } from "./fixtures/stage_as_capsule.ts";

const ROOT = new URL("..", import.meta.url);
/** The capsules under test, then the stand-ins (AssemblyScript kept as `index.as`, staged). */
const CAPSULES = [
  { dir: "capsules/orchestrator", env: true, standIn: false },
  { dir: "capsules/prompt-builder", env: false, standIn: false },
  { dir: "capsules/session", env: false, standIn: false },
  { dir: "tests/fixtures/stand_in_provider", env: false, standIn: true },
  { dir: "tests/fixtures/stand_in_tools", env: false, standIn: true },
];
const ORCHESTRATOR_ENV = {
  PROVIDER: "stand-in",
  MODEL: "stand-in-model",
  MAX_STEPS: "3",
  STEP_TIMEOUT_MS: "20000",
  TOOL_TIMEOUT_MS: "20000",
};
const TURN_TIMEOUT_MS = 60_000;

interface TurnRecord {
  deltas: string[];
  toolCalls: Record<string, JsonValue>[];
  toolResults: Record<string, JsonValue>[];
  response: Record<string, JsonValue>;
  responseMessage: BusMessage;
}

function payloadOf(msg: BusMessage): Record<string, JsonValue> {
  assert.equal(msg.payload.kind, "json");
  return (msg.payload as { value: JsonValue }).value as Record<string, JsonValue>;
}

let turns = 0;

class Kernel implements AsyncDisposable {
  readonly root: string;
  readonly daemon: Daemon;
  constructor(root: string, daemon: Daemon) {
    this.root = root;
    this.daemon = daemon;
  }

  /** Boots a kernel with the capsules; `session: false` leaves the session capsule out. */
  static async start(
    env: Record<string, string> = {},
    options: { session?: boolean } = {},
  ): Promise<Kernel> {
    const root = await Deno.makeTempDir({ prefix: "astrid-orch-" });
    const home = await AstridHome.open(root);
    await home.ensurePrincipal(principalId("bob"));
    const capsules: BuiltCapsule[] = [];
    for (const c of CAPSULES) {
      if (options.session === false && c.dir === "capsules/session") continue;
      let dir = new URL(c.dir, ROOT).pathname;
      if (c.standIn) dir = await stageAsCapsule(dir, join(root, "stand-ins"));
      capsules.push([dir, c.env ? { ...ORCHESTRATOR_ENV, ...env } : {}]);
    }
    await installBuilt(home, capsules);
    // [env] values are per principal: bob gets the operator's orchestrator settings.
    const envDir = (p: string) => join(root, "home", p, ".config", "env");
    await Deno.mkdir(envDir("bob"), { recursive: true });
    await Deno.copyFile(
      join(envDir("default"), "orchestrator.env.json"),
      join(envDir("bob"), "orchestrator.env.json"),
    );
    // Model calls are metered before a provider sees them: price the test routes.
    await Deno.writeTextFile(
      join(root, "etc", "config.toml"),
      [
        '[pricing."stand-in/*"]',
        "input_per_mtok = 1.0",
        "output_per_mtok = 2.0",
        '[pricing."nobody/*"]',
        "input_per_mtok = 1.0",
        "output_per_mtok = 2.0",
        "",
      ].join("\n"),
    );
    const daemon = await bootDaemon({
      home: root,
      env: { get: () => undefined },
      echoLog: false,
      idleTimeoutSecs: 3600,
    });
    return new Kernel(root, daemon);
  }

  /**
   * Publishes `user.v1.prompt` and gathers the turn until its `agent.v1.response`;
   * `onToolCall` runs on each `agent.v1.tool_call` as it arrives.
   */
  async turn(
    text: string,
    session: string,
    options: {
      onToolCall?: (requestId: string) => void;
      workspaceId?: string;
      principal?: string;
    } = {},
  ): Promise<TurnRecord> {
    const requestId = `r-test-${++turns}`;
    const record: Partial<TurnRecord> & Omit<TurnRecord, "response" | "responseMessage"> = {
      deltas: [],
      toolCalls: [],
      toolResults: [],
    };
    const bus = this.daemon.bus;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let listener: { close(): void } | undefined;
    try {
      const done = new Promise<void>((resolve, reject) => {
        listener = bus.listen("agent.v1.*", (msg) => {
          const p = payloadOf(msg);
          if (p.request_id !== requestId) return;
          assert.equal(msg.principal, options.principal ?? "default", `${msg.topic} principal`);
          assert.equal(p.session, session, `${msg.topic} copies the session`);
          if (msg.topic === "agent.v1.stream.delta") record.deltas.push(p.text as string);
          else if (msg.topic === "agent.v1.tool_call") {
            record.toolCalls.push(p);
            options.onToolCall?.(requestId);
          } else if (msg.topic === "agent.v1.tool_result") record.toolResults.push(p);
          else if (msg.topic === "agent.v1.response") {
            record.response = p;
            record.responseMessage = msg;
            resolve();
          }
        });
        timer = setTimeout(
          () =>
            reject(new Error(`No agent.v1.response for "${text}" within ${TURN_TIMEOUT_MS} ms`)),
          TURN_TIMEOUT_MS,
        );
      });
      const payload: Record<string, JsonValue> = { text, request_id: requestId, session };
      if (options.workspaceId !== undefined) payload.workspace_id = options.workspaceId;
      const published = bus.publish("user.v1.prompt", payload, {
        ctx: {
          principal: principalId(options.principal ?? "default"),
          source: { kind: "kernel", name: "test" },
        },
        request_id: requestId,
      });
      await done;
      await published;
      return record as TurnRecord;
    } finally {
      listener?.close();
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  /** A client session bound to a new workspace holding `files` (the daemon learns its root). */
  async workspace(
    session: string,
    files: Record<string, string>,
  ): Promise<{ id: string; client: DaemonClient }> {
    const root = join(this.root, `workspace-${session}`);
    await Deno.mkdir(root, { recursive: true });
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(join(root, name), text);
    }
    const client = await DaemonClient.connect(this.daemon.paths.socket, {
      token: (await Deno.readTextFile(this.daemon.paths.token)).trim(),
      client: "orchestrator-test",
      principal: "default",
      session,
      workspace: await Deno.realPath(root),
    });
    const id = (await Deno.readTextFile(join(root, ".astrid", "workspace-id"))).trim();
    return { id, client };
  }

  /** The `result` of a `session.v1.request.<verb>` for `session` (principal `default`). */
  async session(verb: string, session: string): Promise<Record<string, JsonValue>> {
    const requestId = `r-session-${++turns}`;
    let answer: Record<string, JsonValue> | undefined;
    const listener = this.daemon.bus.listen(`session.v1.response.${verb}`, (msg) => {
      if (msg.request_id === requestId) answer = payloadOf(msg);
    });
    try {
      await this.daemon.bus.publish(`session.v1.request.${verb}`, {
        session,
        request_id: requestId,
      }, {
        ctx: { principal: principalId("default"), source: { kind: "kernel", name: "test" } },
        request_id: requestId,
      });
    } finally {
      listener.close();
    }
    assert.ok(answer !== undefined, `the session capsule answered ${verb}`);
    assert.equal(answer.ok, true, JSON.stringify(answer));
    return answer.result as Record<string, JsonValue>;
  }

  cancel(session: string, requestId: string): void {
    void this.daemon.bus.publish("agent.v1.cancel", { session, request_id: requestId }, {
      ctx: { principal: principalId("default"), source: { kind: "kernel", name: "test" } },
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.daemon.shutdown("test finished");
    } finally {
      await Deno.remove(this.root, { recursive: true }).catch(() => {});
    }
  }
}

Deno.test("orchestrator runs user turns end to end against stand-in capsules", async (t) => {
  await using kernel = await Kernel.start();

  await t.step("onPrompt() relays deltas, calls the tool and feeds its result back", async () => {
    const turn = await kernel.turn("please use the tool", "s-tool");
    assert.deepEqual(turn.deltas, [
      "Calling the tool. ",
      "\n\n", // the second model call's text starts a paragraph
      "Tool results: ",
      "ok(echo:ping)",
    ]);
    assert.equal(turn.toolCalls.length, 1);
    assert.equal(turn.toolCalls[0].tool, "stand_in_echo");
    assert.equal(turn.toolCalls[0].call_id, "c-1");
    assert.deepEqual(turn.toolCalls[0].arguments, { text: "ping" });
    assert.equal(turn.toolResults.length, 1);
    assert.equal(turn.toolResults[0].is_error, false);
    assert.equal(turn.toolResults[0].content, "echo:ping");
    assert.equal(turn.response.text, turn.deltas.join(""));
    assert.equal(turn.response.stop_reason, "end_turn");
    assert.equal(turn.response.steps, 2);
    assert.equal(turn.response.error, undefined);
    assert.deepEqual(turn.response.usage, {
      input_tokens: 20,
      output_tokens: 10,
      model: "stand-in-model",
    });
    assert.equal(turn.responseMessage.end_of_stream, true);
  });

  await t.step(
    "onPrompt() runs several tool calls of one step and returns every result",
    async () => {
      const turn = await kernel.turn("now use both tools", "s-both");
      assert.deepEqual(turn.toolCalls.map((c) => c.call_id), ["c-a", "c-b"]);
      assert.deepEqual(
        turn.toolResults.map((r) => r.content).sort(),
        ["echo:a", "echo:b"],
      );
      assert.match(turn.response.text as string, /ok\(echo:a\) ok\(echo:b\)/);
      assert.equal(turn.response.stop_reason, "end_turn");
    },
  );

  await t.step(
    "onAssemble() gives the model the tool schemas and the default system prompt",
    async () => {
      const turn = await kernel.turn("describe the prompt", "s-describe");
      assert.equal(
        turn.response.text,
        "tools=stand_in_crash,stand_in_echo astrid_md=no system=default",
      );
    },
  );

  await t.step("onAssemble() reuses the tool list until astrid.v1.capsules_loaded", async () => {
    const describes: BusMessage[] = [];
    const listener = kernel.daemon.bus.listen("tool.v1.request.describe", (m) => describes.push(m));
    try {
      // The previous step collected the list; a client connecting (a principal or workspace
      // pass) would announce capsules_loaded too, so this step runs before any connects.
      await kernel.turn("describe the prompt", "s-cache");
      assert.equal(describes.length, 0, "the list collected by earlier turns is reused");
      await kernel.daemon.bus.publish("astrid.v1.capsules_loaded", { capsules: [] }, {
        ctx: { principal: principalId("default"), source: { kind: "kernel", name: "test" } },
      });
      const turn = await kernel.turn("describe the prompt", "s-cache");
      assert.equal(describes.length, 1, "a new load drops the cached list");
      assert.match(turn.response.text as string, /^tools=stand_in_crash,stand_in_echo /);
    } finally {
      listener.close();
    }
  });

  await t.step("onAssemble() adds the workspace's ASTRID.md to the system prompt", async () => {
    const ws = await kernel.workspace("s-workspace", {
      "ASTRID.md": "Always follow PROJECT-RULE-42.\n",
    });
    try {
      const turn = await kernel.turn("describe the prompt", "s-workspace", { workspaceId: ws.id });
      assert.equal(
        turn.response.text,
        "tools=stand_in_crash,stand_in_echo astrid_md=yes system=default",
      );
      assert.equal(turn.response.workspace_id, ws.id);
    } finally {
      await ws.client.close();
    }
  });

  await t.step(
    "onPrompt() continues a session with its history from the session capsule",
    async () => {
      const first = await kernel.turn("remember the word banana", "s-memory");
      assert.equal(first.response.text, "I will remember banana.");
      const second = await kernel.turn("what was the word?", "s-memory");
      assert.equal(second.response.text, "The word was banana.");
      const other = await kernel.turn("what was the word?", "s-other");
      assert.equal(other.response.text, "I do not know the word.");
      const bob = await kernel.turn("what was the word?", "s-memory", { principal: "bob" });
      assert.equal(bob.response.text, "I do not know the word.", "history is per principal");
      const record = await kernel.session("get", "s-memory");
      assert.equal(record.turns, 2, "each answered turn appended once");
      assert.equal(record.title, "remember the word banana");
      assert.deepEqual((record.messages as Array<{ role: string }>).map((m) => m.role), [
        "user",
        "assistant",
        "user",
        "assistant",
      ]);
    },
  );

  await t.step("onPrompt() ends the turn with the provider's error kind", async () => {
    const turn = await kernel.turn("fail please [provider-error]", "s-error");
    assert.equal(turn.response.stop_reason, "error");
    assert.deepEqual(turn.response.error, {
      kind: "provider_auth",
      message: "The API key was refused (401)",
    });
    assert.equal(turn.response.text, "partial ");
    assert.equal(turn.responseMessage.end_of_stream, true);
  });

  await t.step(
    "onPrompt() ends the turn with budget_exhausted when the model call is denied",
    async () => {
      const turn = await kernel.turn("spend it [budget]", "s-budget");
      assert.equal(turn.response.stop_reason, "error");
      const error = turn.response.error as { kind: string; message: string };
      assert.equal(error.kind, "budget_exhausted");
      assert.match(error.message, /Budget exhausted: the session budget of \$0\.01 is spent/);
      assert.equal(turn.response.steps, 1);
    },
  );

  await t.step(
    "onPrompt() reports a crashed tool as an error result and still answers",
    async () => {
      const turn = await kernel.turn("crash the tool", "s-crash");
      assert.equal(turn.toolResults.length, 1);
      assert.equal(turn.toolResults[0].tool, "stand_in_crash");
      assert.equal(turn.toolResults[0].is_error, true);
      assert.equal(turn.response.stop_reason, "end_turn");
      assert.match(turn.response.text as string, /^Tool results: error\(/);
      assert.equal(turn.response.error, undefined);
    },
  );

  await t.step("onPrompt() answers a call of an unknown tool with an error result", async () => {
    const turn = await kernel.turn("call a missing tool", "s-missing");
    assert.equal(turn.toolResults.length, 1);
    assert.equal(turn.toolResults[0].is_error, true);
    assert.equal(turn.toolResults[0].content, 'There is no tool named "no_such_tool"');
    assert.equal(turn.response.stop_reason, "end_turn");
    assert.equal(turn.response.text, 'Tool results: error(There is no tool named "no_such_tool")');
  });

  await t.step("onPrompt() stops at the step limit with max_steps", async () => {
    const turn = await kernel.turn("loop forever", "s-loop");
    assert.equal(turn.response.steps, 3);
    assert.equal(turn.response.stop_reason, "max_steps");
    assert.equal((turn.response.error as { kind: string }).kind, "max_steps");
    assert.equal(turn.toolResults.length, 3);
  });

  await t.step("onPrompt() stops a turn on agent.v1.cancel", async () => {
    const turn = await kernel.turn("loop forever", "s-cancel", {
      onToolCall: (requestId) => kernel.cancel("s-cancel", requestId),
    });
    assert.equal(turn.response.stop_reason, "cancelled");
    assert.equal((turn.response.error as { kind: string }).kind, "cancelled");
    assert.ok((turn.response.steps as number) < 3, `steps: ${turn.response.steps}`);
  });
});

Deno.test("orchestrator answers without history when no session capsule is installed", async () => {
  // A ten-minute SESSION_TIMEOUT_MS: the turn answers in time only because the history load's
  // publish reported that nothing handled it.
  await using kernel = await Kernel.start({ SESSION_TIMEOUT_MS: "600000" }, { session: false });
  const first = await kernel.turn("remember the word banana", "s-alone");
  assert.equal(first.response.text, "I will remember banana.");
  assert.equal(first.response.stop_reason, "end_turn");
  const second = await kernel.turn("what was the word?", "s-alone");
  assert.equal(second.response.text, "I do not know the word.", "nothing was kept");
  assert.equal(second.response.stop_reason, "end_turn");
});

Deno.test("orchestrator fails a model call at once when nothing handles its route", async () => {
  // STEP_TIMEOUT_MS is ten minutes, far past the turn's deadline (TURN_TIMEOUT_MS): the turn can
  // answer in time only because the publish reported no recipient and no capsule handler.
  await using kernel = await Kernel.start({ PROVIDER: "nobody", STEP_TIMEOUT_MS: "600000" });
  const turn = await kernel.turn("hello?", "s-nobody");
  assert.equal(turn.response.stop_reason, "error");
  assert.equal(turn.response.steps, 1);
  const error = turn.response.error as { kind: string; message: string };
  assert.equal(error.kind, "provider");
  assert.equal(
    error.message,
    'No provider answered on route "nobody": nothing handles llm.v1.request.generate.nobody ' +
      "(is a provider capsule installed for it?)",
  );
  assert.equal(turn.responseMessage.end_of_stream, true);
});

// Each ipc_subscribe handle has its own queue, so concurrent turns of one principal never take
// each other's stream, tool-result or cancel messages.
Deno.test({
  name: "orchestrator keeps concurrent turns of one principal apart",
  async fn() {
    await using kernel = await Kernel.start();
    for (let round = 0; round < 3; round++) {
      const turns = await Promise.all([
        kernel.turn("please use the tool", `s-par-1-${round}`),
        kernel.turn(`remember the word cherry${round}`, `s-par-2-${round}`),
        kernel.turn("now use both tools", `s-par-3-${round}`),
        kernel.turn("please use the tool", `s-par-4-${round}`),
      ]);
      const [a, b, c, d] = turns;
      assert.equal(a.response.text, "Calling the tool. \n\nTool results: ok(echo:ping)");
      assert.equal(d.response.text, "Calling the tool. \n\nTool results: ok(echo:ping)");
      assert.equal(b.response.text, `I will remember cherry${round}.`);
      assert.deepEqual(b.toolCalls, []);
      assert.equal(c.response.text, "Calling two tools. \n\nTool results: ok(echo:a) ok(echo:b)");
      assert.equal(c.toolResults.length, 2);
      for (const turn of turns) assert.equal(turn.response.stop_reason, "end_turn");
    }
  },
});
