/**
 * The session capsule, built from `capsules/session/` (cached) and installed into a temporary
 * home; the real daemon, capsule runtime, host ABI, KV and bus run in-process. Each step
 * publishes `session.v1.request.<verb>` as a principal and reads the answer on
 * `session.v1.response.<verb>` (the handler runs inside the publish, so the answer has been
 * delivered when the publish resolves).
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { bootDaemon, type Daemon } from "../kernel/daemon/mod.ts";
import type { BusMessage, JsonValue } from "../kernel/events/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";
import { installBuilt } from "./fixtures/install_built.ts";

const ROOT = new URL("..", import.meta.url);
const MAX_MESSAGES = 12;

type Obj = Record<string, JsonValue>;

interface Answer {
  topic: string;
  principal: string;
  payload: Obj;
}

let requests = 0;

class Kernel implements AsyncDisposable {
  constructor(readonly root: string, readonly daemon: Daemon) {}

  static async start(): Promise<Kernel> {
    const root = await Deno.makeTempDir({ prefix: "astrid-session-" });
    try {
      const home = await AstridHome.open(root);
      await home.ensurePrincipal(principalId("default"));
      await home.ensurePrincipal(principalId("bob"));
      await installBuilt(home, [[fileURLToPath(new URL("capsules/session", ROOT)), {
        MAX_MESSAGES: String(MAX_MESSAGES),
        MAX_LIST: "3",
      }]]);
      const daemon = await bootDaemon({
        home: root,
        env: { get: () => undefined },
        echoLog: false,
        idleTimeoutSecs: 3600,
      });
      return new Kernel(root, daemon);
    } catch (err) {
      await Deno.remove(root, { recursive: true }).catch(() => {});
      throw err;
    }
  }

  /** Publishes `session.v1.request.<verb>` and returns the answer(s) carrying its request_id. */
  async ask(
    verb: string,
    body: Obj,
    options: { principal?: string; replyTo?: string } = {},
  ): Promise<Answer> {
    const requestId = `r-session-${++requests}`;
    const seen: BusMessage[] = [];
    const listener = this.daemon.bus.listen("session.v1.response.*", (msg) => {
      if (msg.request_id === requestId) seen.push(msg);
    });
    try {
      const result = await this.daemon.bus.publish(
        `session.v1.request.${verb}`,
        { request_id: requestId, ...body },
        {
          ctx: {
            principal: principalId(options.principal ?? "default"),
            source: { kind: "kernel", name: "test" },
          },
          request_id: requestId,
          reply_to: options.replyTo,
        },
      );
      assert.equal(result.outcome, "delivered");
      assert.equal(result.outcome === "delivered" && result.handlers, 1, "one capsule handler");
      assert.equal(seen.length, 1, `one answer to ${verb}`);
      const msg = seen[0];
      assert.equal(msg.payload.kind, "json");
      const payload = (msg.payload as { value: JsonValue }).value as Obj;
      assert.equal(payload.request_id, requestId);
      return { topic: msg.topic, principal: msg.principal, payload };
    } finally {
      listener.close();
    }
  }

  /** The `result` of an `ok` answer. */
  async ok(verb: string, body: Obj, options: { principal?: string } = {}): Promise<Obj> {
    const a = await this.ask(verb, body, options);
    assert.equal(a.topic, `session.v1.response.${verb}`);
    assert.equal(a.payload.ok, true, JSON.stringify(a.payload));
    return a.payload.result as Obj;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.daemon.shutdown("test finished");
    } finally {
      await Deno.remove(this.root, { recursive: true }).catch(() => {});
    }
  }
}

const user = (content: string): Obj => ({ role: "user", content });
const assistant = (content: string): Obj => ({ role: "assistant", content });

/** One tool exchange: user, assistant calling a tool, the tool's result, the answer (4). */
function toolTurn(n: number): Obj[] {
  return [
    user(`turn ${n}`),
    {
      role: "assistant",
      content: "",
      tool_calls: [{ call_id: `c-${n}`, name: "echo", arguments: { n } }],
    },
    { role: "tool", call_id: `c-${n}`, name: "echo", content: `echo ${n}`, is_error: false },
    assistant(`done ${n}`),
  ];
}

/** Spins (no sleep) until the wall clock passes `ms`, so the next write has a later time. */
function passMs(ms: number): void {
  const deadline = performance.now() + 1000;
  while (Date.now() <= ms) {
    if (performance.now() > deadline) throw new Error("The clock did not advance");
  }
}

Deno.test("session capsule keeps each principal's conversations", async (t) => {
  await using kernel = await Kernel.start();

  await t.step("onRequest() load answers an empty history for a new session", async () => {
    const result = await kernel.ok("load", { session: "s-new" });
    assert.deepEqual(result, { session: "s-new", exists: false, turns: 0, messages: [] });
  });

  await t.step("onRequest() append then load gives back the messages and the meta", async () => {
    const prompt = "  Please   summarise\nthe design document and list every open question about " +
      "sessions, budgets and the overlay";
    const appended = await kernel.ok("append", {
      session: "s-a",
      workspace_id: "w-1",
      messages: [user(prompt), assistant("Here it is.")],
      limit: 50,
    });
    assert.deepEqual(appended, { session: "s-a", count: 2, dropped: 0, turns: 1 });
    const loaded = await kernel.ask("load", { session: "s-a", workspace_id: "w-1" });
    assert.equal(loaded.payload.session, "s-a", "the answer copies the session");
    assert.equal(loaded.payload.workspace_id, "w-1", "and the workspace");
    const r = loaded.payload.result as Obj;
    assert.deepEqual(r.messages, [user(prompt), assistant("Here it is.")]);
    assert.equal(r.exists, true);
    assert.equal(r.turns, 1);
    const title = r.title as string;
    assert.equal(title.length, 80);
    assert.ok(title.startsWith("Please summarise the design document"), title);
    assert.equal(typeof r.created_at, "number");
    assert.equal(r.created_at, r.updated_at);

    await kernel.ok("append", { session: "s-a", messages: [user("more"), assistant("ok")] });
    const again = await kernel.ok("load", { session: "s-a" });
    assert.equal(again.turns, 2);
    assert.equal(again.title, title, "the title stays the first prompt");
    assert.deepEqual((again.messages as Obj[]).map((m) => m.content), [
      prompt,
      "Here it is.",
      "more",
      "ok",
    ]);
    const last = await kernel.ok("load", { session: "s-a", limit: 2 });
    assert.deepEqual((last.messages as Obj[]).map((m) => m.content), ["more", "ok"]);
  });

  await t.step(
    "onRequest() append keeps at most limit messages, never splitting a tool exchange",
    async () => {
      const r = await kernel.ok("append", {
        session: "s-tools",
        messages: [...toolTurn(1), ...toolTurn(2), ...toolTurn(3)],
        limit: 6,
      });
      // 12 messages, limit 6: the last 6 begin inside turn 2's exchange, so the kept part starts
      // at turn 3's user message.
      assert.deepEqual(r, { session: "s-tools", count: 4, dropped: 8, turns: 1 });
      const loaded = await kernel.ok("load", { session: "s-tools" });
      assert.deepEqual(loaded.messages, toolTurn(3));
    },
  );

  await t.step("onRequest() append caps a large limit at MAX_MESSAGES", async () => {
    const messages = [1, 2, 3, 4, 5, 6].flatMap((n) => [user(`q${n}`), assistant(`a${n}`)]);
    await kernel.ok("append", { session: "s-cap", messages, limit: 1000 });
    const more = [user("q7"), assistant("a7")];
    const r = await kernel.ok("append", { session: "s-cap", messages: more, limit: 1000 });
    assert.equal(r.count, MAX_MESSAGES);
    const loaded = await kernel.ok("load", { session: "s-cap" });
    assert.equal((loaded.messages as Obj[])[0].content, "q2");
  });

  await t.step("onRequest() append drops whole old turns to keep a record under 1 MB", async () => {
    const big = "x".repeat(400_000);
    const messages = [1, 2, 3].flatMap((n) => [user(`${n}${big}`), assistant(`a${n}`)]);
    const r = await kernel.ok("append", { session: "s-big", messages, limit: 100 });
    assert.deepEqual(r, { session: "s-big", count: 4, dropped: 2, turns: 1 });
    const loaded = await kernel.ok("load", { session: "s-big" });
    assert.deepEqual((loaded.messages as Obj[]).map((m) => (m.content as string).slice(0, 2)), [
      "2x",
      "a2",
      "3x",
      "a3",
    ]);
    await kernel.ok("clear", { session: "s-big" });
  });

  await t.step("onRequest() get answers the whole record, not_found for none", async () => {
    const r = await kernel.ok("get", { session: "s-tools" });
    assert.deepEqual(r.messages, toolTurn(3));
    assert.equal(r.session, "s-tools");
    assert.equal(r.title, "turn 1");
    assert.equal(r.turns, 1);
    const missing = await kernel.ask("get", { session: "s-none" });
    assert.equal(missing.payload.ok, false);
    assert.deepEqual(missing.payload.error, {
      kind: "not_found",
      message: 'There is no session "s-none"',
    });
  });

  await t.step("onRequest() list answers the sessions newest first, at most MAX_LIST", async () => {
    const before = await kernel.ok("append", { session: "s-d", messages: [user("d")] });
    assert.equal(before.turns, 1);
    passMs((await kernel.ok("get", { session: "s-d" })).updated_at as number);
    await kernel.ok("append", { session: "s-tools", messages: [user("late"), assistant("x")] });
    const r = await kernel.ok("list", {});
    const sessions = r.sessions as Obj[];
    assert.equal(r.total, 4);
    assert.equal(sessions.length, 3, "MAX_LIST is 3");
    assert.equal(sessions[0].session, "s-tools", "the latest append is first");
    assert.deepEqual(Object.keys(sessions[0]).sort(), ["session", "title", "turns", "updated_at"]);
    assert.equal(sessions[0].turns, 2);
    for (let i = 1; i < sessions.length; i++) {
      assert.ok((sessions[i - 1].updated_at as number) >= (sessions[i].updated_at as number));
    }
    const two = await kernel.ok("list", { limit: 2 });
    assert.equal((two.sessions as Obj[]).length, 2);
  });

  await t.step("onRequest() acts for the request's principal only", async () => {
    const bob = await kernel.ask("load", { session: "s-a" }, { principal: "bob" });
    assert.equal(bob.principal, "bob", "the answer is bob's");
    assert.deepEqual((bob.payload.result as Obj).messages, []);
    assert.deepEqual(
      (await kernel.ok("list", {}, { principal: "bob" })).sessions,
      [],
      "bob sees none of default's sessions",
    );
    await kernel.ok("append", { session: "s-a", messages: [user("bob's")] }, {
      principal: "bob",
    });
    const mine = await kernel.ok("load", { session: "s-a" });
    assert.equal(mine.turns, 2, "default's session is untouched");
  });

  await t.step("onRequest() clear deletes a session", async () => {
    assert.deepEqual(await kernel.ok("clear", { session: "s-a" }), {
      session: "s-a",
      cleared: 1,
    });
    assert.equal((await kernel.ok("load", { session: "s-a" })).exists, false);
    assert.equal((await kernel.ok("clear", { session: "s-a" })).cleared, 0);
    assert.equal((await kernel.ok("load", { session: "s-a" }, { principal: "bob" })).turns, 1);
  });

  await t.step("onRequest() answers on reply_to inside session.v1.response.*", async () => {
    const a = await kernel.ask("load", { session: "s-new" }, {
      replyTo: "session.v1.response.mine",
    });
    assert.equal(a.topic, "session.v1.response.mine");
  });

  await t.step("onRequest() refuses bad requests with an error answer", async () => {
    const cases: Array<[string, Obj, string]> = [
      ["append", { session: "s-bad" }, "bad_request"],
      ["append", { session: "s-bad", messages: ["text"] }, "bad_request"],
      ["load", {}, "bad_request"],
      ["load", { session: "x".repeat(257) }, "bad_request"],
      ["rename", { session: "s-bad" }, "unknown_verb"],
    ];
    for (const [verb, body, kind] of cases) {
      const a = await kernel.ask(verb, body);
      assert.equal(a.topic, `session.v1.response.${verb}`);
      assert.equal(a.payload.ok, false, `${verb} ${JSON.stringify(body).slice(0, 60)}`);
      assert.equal((a.payload.error as Obj).kind, kind);
    }
    assert.equal((await kernel.ok("load", { session: "s-bad" })).exists, false);
  });
});
