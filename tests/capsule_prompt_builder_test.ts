/**
 * The prompt-builder capsule, built from `capsules/prompt-builder/` (cached), installed beside the
 * static capsules of `tests/fixtures/static_context/` (`notes`: a context file and a skill, the
 * operator's; `private-notes`: a context file of principal `bob` only) into a temporary home; the
 * real daemon, capsule registry, management router and bus run in-process. Each step publishes
 * `prompt_builder.v1.assemble` and reads the system prompt from `prompt_builder.v1.response.assemble`.
 *
 * It proves that the kernel's `GetPromptContext` reaches the builder and that a principal's prompt
 * holds the operator's capsules' context and skills and its own, never another principal's.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { installCapsule } from "../kernel/capsule/mod.ts";
import { bootDaemon, type Daemon, DaemonClient } from "../kernel/daemon/mod.ts";
import type { BusMessage, JsonValue } from "../kernel/events/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";
import { systemClock } from "../kernel/clock.ts";
import { buildCapsule } from "../sdk/build/mod.ts";
import { testBuildCacheDir } from "../sdk/testing/mod.ts";

const ROOT = new URL("..", import.meta.url);
/** Each capsule and the principal installing it (`default`: the operator, system scope). */
const CAPSULES = [
  { dir: "capsules/prompt-builder", principal: "default" },
  { dir: "tests/fixtures/static_context/notes", principal: "default" },
  { dir: "tests/fixtures/static_context/private_notes", principal: "bob" },
];
const WAIT_MS = 30_000;

const NOTES_CONTEXT = "## notes/static/context.md\n\nThe build command is NOTES-BUILD-7.";
const NOTES_SKILL = "## release-notes\n\nUse when asked to write release notes.\n\n" +
  "List every change under a heading per version; cite NOTES-SKILL-9.";
const BOB_SECRET = "BOB-PRIVATE-3";

function payloadOf(msg: BusMessage): Record<string, JsonValue> {
  assert.equal(msg.payload.kind, "json");
  return (msg.payload as { value: JsonValue }).value as Record<string, JsonValue>;
}

/** Resolves with the first message on `topic` that `accept` takes, or rejects after `WAIT_MS`. */
function nextMessage(
  daemon: Daemon,
  topic: string,
  accept: (msg: BusMessage) => boolean,
): { message: Promise<BusMessage>; close(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let listener: { close(): void } | undefined;
  const close = () => {
    listener?.close();
    if (timer !== undefined) clearTimeout(timer);
  };
  const message = new Promise<BusMessage>((resolve, reject) => {
    listener = daemon.bus.listen(topic, (msg) => {
      if (!accept(msg)) return;
      close();
      resolve(msg);
    });
    timer = setTimeout(() => {
      close();
      reject(new Error(`Nothing on ${topic} within ${WAIT_MS} ms`));
    }, WAIT_MS);
  });
  return { message, close };
}

let assembles = 0;

class Kernel implements AsyncDisposable {
  readonly root: string;
  readonly daemon: Daemon;
  readonly #clients: DaemonClient[] = [];
  constructor(root: string, daemon: Daemon) {
    this.root = root;
    this.daemon = daemon;
  }

  static async start(): Promise<Kernel> {
    const root = await Deno.makeTempDir({ prefix: "astrid-prompt-" });
    const home = await AstridHome.open(root);
    for (const p of ["default", "bob", "carol"]) await home.ensurePrincipal(principalId(p));
    for (const c of CAPSULES) {
      const dir = new URL(c.dir, ROOT).pathname;
      const built = await buildCapsule(dir, {
        cacheDir: testBuildCacheDir(),
        outDir: join(root, "dist"),
      });
      await installCapsule(built.archive, {
        home,
        principal: principalId(c.principal),
        scope: "user",
        source: dir,
        clock: systemClock,
      });
    }
    const daemon = await bootDaemon({
      home: root,
      env: { get: () => undefined },
      echoLog: false,
      idleTimeoutSecs: 3600,
    });
    return new Kernel(root, daemon);
  }

  /** Publishes `prompt_builder.v1.assemble` as `principal` and returns the assembled payload. */
  async assemble(
    principal: string,
    options: { workspaceId?: string } = {},
  ): Promise<Record<string, JsonValue>> {
    const requestId = `r-assemble-${++assembles}`;
    const reply = nextMessage(
      this.daemon,
      "prompt_builder.v1.response.assemble",
      (m) => m.request_id === requestId,
    );
    try {
      const payload: Record<string, JsonValue> = {
        request_id: requestId,
        session: `s-${principal}`,
        text: "hello",
        history: [],
      };
      if (options.workspaceId !== undefined) payload.workspace_id = options.workspaceId;
      await this.daemon.bus.publish("prompt_builder.v1.assemble", payload, {
        ctx: { principal: principalId(principal), source: { kind: "kernel", name: "test" } },
        request_id: requestId,
      });
      const msg = await reply.message;
      assert.equal(msg.principal, principal);
      return payloadOf(msg);
    } finally {
      reply.close();
    }
  }

  /** The system prompt assembled for `principal`. */
  async system(principal: string, options: { workspaceId?: string } = {}): Promise<string> {
    const answer = await this.assemble(principal, options);
    assert.equal(typeof answer.system, "string");
    return answer.system as string;
  }

  /**
   * Connects a client as `principal` (its own capsules load); resolves once they are announced,
   * or with `welcomeOnly` as soon as the daemon's welcome arrives.
   */
  async connect(
    principal: string,
    workspace?: string,
    options: { welcomeOnly?: boolean } = {},
  ): Promise<DaemonClient> {
    const loaded = nextMessage(
      this.daemon,
      "astrid.v1.capsules_loaded",
      (m) => m.principal === principal,
    );
    try {
      const client = await DaemonClient.connect(this.daemon.paths.socket, {
        token: (await Deno.readTextFile(this.daemon.paths.token)).trim(),
        client: "prompt-builder-test",
        principal,
        session: `s-connect-${principal}-${this.#clients.length}`,
        ...(workspace !== undefined ? { workspace } : {}),
      });
      this.#clients.push(client);
      if (options.welcomeOnly !== true) await loaded.message;
      return client;
    } finally {
      loaded.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      for (const c of this.#clients) await c.close().catch(() => {});
      await this.daemon.shutdown("test finished");
    } finally {
      await Deno.remove(this.root, { recursive: true }).catch(() => {});
    }
  }
}

Deno.test("prompt-builder adds the capsules' context files and skills a principal sees", async (t) => {
  await using kernel = await Kernel.start();

  await t.step("the kernel answers get_prompt_context with the operator's content", async () => {
    const reply = await kernel.daemon.bus.request("astrid.v1.request.get_prompt_context", {}, {
      ctx: { principal: principalId("default"), source: { kind: "kernel", name: "test" } },
      timeoutMs: WAIT_MS,
    });
    assert.deepEqual(payloadOf(reply), {
      ok: true,
      result: {
        context: [{
          capsule: "notes",
          file: "static/context.md",
          text: "The build command is NOTES-BUILD-7.\n",
        }],
        skills: [{
          capsule: "notes",
          name: "release-notes",
          description: "Use when asked to write release notes.",
          file: "static/skills/release-notes.md",
          text: "List every change under a heading per version; cite NOTES-SKILL-9.\n",
        }],
        cut: [],
        cut_total: 0,
        limit_bytes: 65536,
      },
    });
  });

  await t.step("onAssemble() adds # Context and # Skills after the base prompt", async () => {
    const system = await kernel.system("default");
    assert.ok(system.startsWith("You are Astrid"), system);
    const context = system.indexOf(`\n\n# Context\n\n${NOTES_CONTEXT}`);
    const skills = system.indexOf("\n\n# Skills\n\n");
    assert.ok(context > 0, system);
    assert.ok(skills > context, "skills come after the context");
    assert.ok(system.endsWith(NOTES_SKILL), system);
    assert.ok(!system.includes(BOB_SECRET), "bob's capsule is not the operator's");
  });

  await t.step("onAssemble() reuses the context until astrid.v1.capsules_loaded", async () => {
    const asked: BusMessage[] = [];
    const listener = kernel.daemon.bus.listen(
      "astrid.v1.request.get_prompt_context",
      (m) => asked.push(m),
    );
    try {
      await kernel.system("default");
      assert.equal(asked.length, 0, "the previous step's answer is cached");
      await kernel.daemon.bus.publish("astrid.v1.capsules_loaded", { capsules: [] }, {
        ctx: { principal: principalId("default"), source: { kind: "kernel", name: "test" } },
      });
      const system = await kernel.system("default");
      assert.equal(asked.length, 1, "a new load drops the cached context");
      assert.equal(asked[0].principal, "default");
      assert.equal(asked[0].source.kind, "capsule");
      assert.ok(system.includes(NOTES_CONTEXT));
    } finally {
      listener.close();
    }
  });

  await t.step("a principal sees its own capsule's context; no other principal does", async () => {
    // No wait for the load announcement: the daemon loads a principal's own capsules before its
    // welcome, so the very first prompt after connecting already sees them.
    await kernel.connect("bob", undefined, { welcomeOnly: true });
    assert.ok(
      kernel.daemon.capsules.list("bob").some((c) => c.name === "private-notes"),
      "bob's own capsule is loaded by the time the welcome arrives",
    );
    const bob = await kernel.system("bob");
    assert.ok(bob.includes(NOTES_CONTEXT), "bob sees the operator's capsules");
    assert.ok(bob.includes(`## private-notes/static/context.md\n\nBob's secret is ${BOB_SECRET}.`));
    assert.ok(bob.endsWith(NOTES_SKILL), bob);
    for (const other of ["default", "carol"]) {
      const system = await kernel.system(other);
      assert.ok(system.includes(NOTES_CONTEXT), `${other} sees the operator's capsules`);
      assert.ok(!system.includes(BOB_SECRET), `${other} does not see bob's capsule`);
    }
  });

  await t.step("ASTRID.md comes first, then the context, then the skills", async () => {
    const root = join(kernel.root, "workspace");
    await Deno.mkdir(root, { recursive: true });
    await Deno.writeTextFile(join(root, "ASTRID.md"), "Always follow PROJECT-RULE-42.\n");
    await kernel.connect("default", await Deno.realPath(root));
    const id = (await Deno.readTextFile(join(root, ".astrid", "workspace-id"))).trim();
    const answer = await kernel.assemble("default", { workspaceId: id });
    assert.equal(answer.workspace_id, id);
    const system = answer.system as string;
    const project = system.indexOf("# Project instructions (ASTRID.md)\n\nAlways follow");
    const context = system.indexOf(`# Context\n\n${NOTES_CONTEXT}`);
    const skills = system.indexOf("# Skills");
    assert.ok(project > 0 && context > project && skills > context, system);
  });
});
