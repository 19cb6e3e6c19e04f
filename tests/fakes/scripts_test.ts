/**
 * Proves the bundled scripts (`scripts/*.json`) drive the conversations they describe, through
 * both fakes: the demo's read → write → run → answer (and the denied write), parallel tool
 * calls, a session whose second turn needs the first, each failure marker of errors.json, and
 * echo.json answering each concurrent request with its own last message.
 */
import assert from "node:assert/strict";
import type { FakeServer } from "./fake_server.ts";
import type { CollectedReply } from "./stream_client.ts";
import type { ProviderAdapter, SuiteMessage } from "./_fake_suite.ts";
import { anthropicAdapter, openAiAdapter } from "./_adapters.ts";

const PROVIDERS: [string, ProviderAdapter][] = [["openai", openAiAdapter], [
  "anthropic",
  anthropicAdapter,
]];

function client(a: ProviderAdapter, fake: FakeServer) {
  const send = (messages: SuiteMessage[], stream = true) =>
    fetch(fake.url + a.chatPath, {
      method: "POST",
      headers: a.headers("k"),
      body: JSON.stringify(a.body(messages, { stream })),
    });
  return {
    send,
    ask: async (messages: SuiteMessage[]) => await a.collect(await send(messages)),
  };
}

const user = (text: string): SuiteMessage => ({ role: "user", text });
function after(reply: CollectedReply, results: string[]): SuiteMessage[] {
  return [
    { role: "assistant", text: reply.text, toolCalls: reply.toolCalls },
    { role: "tool", results: reply.toolCalls.map((c, i) => ({ id: c.id, text: results[i] })) },
  ];
}

Deno.test("demo.json reads a file, writes another, runs a command, then answers", async (t) => {
  for (const [name, a] of PROVIDERS) {
    await t.step(name, async () => {
      await using fake = await a.start({ script: "demo" });
      const { ask } = client(a, fake);
      const history: SuiteMessage[] = [user("Summarise notes.md into summary.md and check it")];

      const read = await ask(history);
      assert.equal(read.finish, a.finish.tools);
      assert.deepEqual(read.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)]), [[
        "read_file",
        { path: "notes.md" },
      ]]);
      history.push(...after(read, ["- buy milk\n- write the demo"]));

      const write = await ask(history);
      assert.equal(write.toolCalls[0].name, "write_file");
      const args = JSON.parse(write.toolCalls[0].arguments);
      assert.equal(args.path, "summary.md");
      assert.match(args.content, /^# Summary/);

      const denied = await ask([...history, ...after(write, ["Denied by the user"])]);
      assert.deepEqual(denied.toolCalls, []);
      assert.equal(denied.finish, a.finish.stop);
      assert.match(denied.text, /was denied, so I left the workspace untouched/);

      history.push(...after(write, ["Wrote 70 bytes to summary.md"]));
      const run = await ask(history);
      assert.deepEqual(run.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)]), [[
        "run_shell",
        { command: "wc -l notes.md summary.md" },
      ]]);
      history.push(...after(run, ["2 notes.md\n3 summary.md\n5 total"]));

      const answer = await ask(history);
      assert.deepEqual(answer.toolCalls, []);
      assert.equal(answer.finish, a.finish.stop);
      assert.match(answer.text, /^Done\. I read notes\.md, wrote a summary to summary\.md/);
      assert.deepEqual(
        fake.requests.map((r) => r.turnName),
        ["read", "write", "write denied", "run", "answer"],
      );
    });
  }
});

Deno.test("multi_tool.json asks for three calls in one reply", async (t) => {
  for (const [name, a] of PROVIDERS) {
    await t.step(name, async () => {
      await using fake = await a.start({ script: "multi_tool" });
      const { ask } = client(a, fake);
      const first = await ask([user("Look around")]);
      assert.deepEqual(first.toolCalls.map((c) => c.name), ["read_file", "read_file", "run_shell"]);
      assert.equal(new Set(first.toolCalls.map((c) => c.id)).size, 3);
      const answer = await ask([user("Look around"), ...after(first, ["A", "B", "a.txt b.txt"])]);
      assert.equal(answer.text, "All three calls came back; here is what I found.");
    });
  }
});

Deno.test("session.json recalls the first turn only when the history is sent", async (t) => {
  for (const [name, a] of PROVIDERS) {
    await t.step(name, async () => {
      await using fake = await a.start({ script: "session" });
      const { ask } = client(a, fake);
      const first = await ask([user("Remember this: the codeword is heron.")]);
      assert.equal(first.text, "Noted: the codeword is heron.");
      const recall = await ask([
        user("Remember this: the codeword is heron."),
        { role: "assistant", text: first.text },
        user("What was the codeword?"),
      ]);
      assert.equal(recall.text, "You told me earlier: the codeword was heron.");
      const fresh = await ask([user("What was the codeword?")]);
      assert.match(fresh.text, /^I don't know any codeword/);
    });
  }
});

Deno.test("errors.json fails the way each marker asks", async (t) => {
  for (const [name, a] of PROVIDERS) {
    await t.step(name, async () => {
      const sleeps: number[] = [];
      await using fake = await a.start({
        script: "errors",
        sleep: (ms) => {
          sleeps.push(ms);
          return Promise.resolve();
        },
      });
      const { send, ask } = client(a, fake);
      const status = async (marker: string) => {
        const res = await send([user(`please ${marker}`)]);
        await res.body?.cancel();
        return [res.status, res.headers.get("retry-after")];
      };
      assert.deepEqual(await status("[401]"), [401, null]);
      assert.deepEqual(await status("[429]"), [429, "1"]);
      assert.equal((await ask([user("[429]")])).text, "Recovered after the rate limit.");
      assert.deepEqual(await status("[429-always]"), [429, "1"]);
      assert.deepEqual(await status("[429-always]"), [429, "1"]);
      assert.deepEqual(await status("[500]"), [500, null]);
      assert.deepEqual(await status("[500]"), [500, null]);
      assert.deepEqual(await status("[500-once]"), [500, null]);
      assert.equal((await ask([user("[500-once]")])).text, "Recovered after a server error.");
      assert.deepEqual(await status("[529]"), [529, null]);

      const cut = await ask([user("[disconnect]")]);
      assert.deepEqual([cut.disconnected, cut.text], [true, "This answer will be cut "]);
      const bad = await ask([user("[malformed]")]);
      assert.equal(bad.malformed.length, 1);
      assert.equal(bad.text, "Before the bad line. After the bad line.");
      const err = await ask([user("[stream-error]")]);
      assert.deepEqual(err.error, { type: "overloaded_error", message: "Overloaded" });
      const slow = await ask([user("[slow]")]);
      assert.equal(slow.text, "One word every quarter second.");
      assert.deepEqual(sleeps, [250, 250, 250, 250, 250]);
      assert.equal((await ask([user("[length]")])).finish, a.finish.length);
      assert.match((await ask([user("hello")])).text, /^No failure requested/);
    });
  }
});

Deno.test("echo.json answers each of many concurrent requests with its own last message", async (t) => {
  for (const [name, a] of PROVIDERS) {
    await t.step(name, async () => {
      await using fake = await a.start({ script: "echo" });
      const { ask } = client(a, fake);
      const replies = await Promise.all(
        Array.from({ length: 50 }, (_, i) => ask([user(`token-${i}`)])),
      );
      replies.forEach((r, i) => assert.equal(r.text, `echo: token-${i}`));
    });
  }
});
