/**
 * Issue 9's acceptance, end to end through the real CLI (`main.ts` in child processes) and the real
 * daemon, with the astralis capsules built from `capsules/` and installed by `astrid init` into a
 * temporary home (`tests/e2e/_astralis_env.ts`), talking to the scripted fake providers of
 * `tests/fakes/` on loopback (each fake's request log says what the provider saw):
 *
 * - a. `astrid -p` completes a read → write → run task against the OpenAI-compatible fake and the
 *   Anthropic fake (autonomous mode): the answer, the tool results sent back to the model, the
 *   write only in the overlay until `astrid commit`, `astrid audit verify`.
 * - b. in `safe` mode every tool call asks (`tool.execute`, the tool row) before the tool runs:
 *   headless, nobody can answer, so the first call (`read_file`) is denied at once (exit 3), the
 *   workspace is untouched and the model is told; a human's Deny of the write (a scripted approver)
 *   does the same with exit 0 (an explicit Deny is an answer, DESIGN §3a).
 * - c. `--yes` completes the same task in `safe` mode, audited as the operator's flag.
 * - d. a tool capsule that traps mid-turn gives the model an error result and `-p` exits in time.
 * - e. `--session` continues a conversation: the second turn sends the first to the model.
 * - f. the cache answers a repeated identical request without reaching the provider.
 * - g. the router falls back to the Anthropic fake when the OpenAI fake answers 500.
 * - h. the shipped `distros/astralis/Distro.toml`, installed unchanged with `--group openai` and the
 *   fake's URL as `openai_base_url`: `-p` goes orchestrator → cache → router → provider and back,
 *   and a repeated identical prompt in a new session is answered by the cache.
 *
 * Every capsule of the distros is required (session, cache and router included): a failed install
 * fails the test. Every child runs under a hard kill deadline; one home and daemon per security
 * mode serve cases a–g, each case pointing the providers at its own fake (their `[env]` is read on
 * every call); h has a home of its own.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { AstralisEnv, FAKE_MODEL } from "./e2e/_astralis_env.ts";
import { startScriptedApprover } from "./demo/scripted_approver.ts";
import { type FakeServer, startAnthropicFake, startOpenAiFake } from "./fakes/mod.ts";
import { type AstridRun, CLI_DEADLINE_MS, jsonLines, lastLine } from "./fixtures/run_astrid.ts";
import { stageAsCapsule } from "./fixtures/stage_as_capsule.ts";

const KEY = "sk-e2e";
const PROMPT = "Summarize notes.md into summary.md and count the lines";
const NOTES = "# Notes\n\n- Astrid runs agents as capsules\n- Writes land in an overlay\n";
const SUMMARY = "# Summary\n\nThe notes were read and summarised by the Astrid demo.\n";
const FINAL_ANSWER = "Done. I read notes.md, wrote a summary to summary.md, " +
  "and ran `wc -l notes.md summary.md` to check the result.";
/** How a trapped tool's failure reads (the runtime's WASM_TRAP error, as the tool's result). */
const TRAPPED =
  /Capsule "stand-in-tools" failed in export "tool_stand_in_crash": trapped: unreachable/;
/** `-p --timeout`: well under the child's hard deadline, so a stuck turn reports itself. */
const TURN_TIMEOUT = "60";

type Provider = "openai" | "anthropic";

const PROVIDER_CAPSULE: Record<Provider, string> = {
  openai: "provider-openai-compat",
  anthropic: "provider-anthropic",
};

function start(provider: Provider, script: Parameters<typeof startOpenAiFake>[0]["script"]) {
  return provider === "openai"
    ? startOpenAiFake({ script, apiKey: KEY })
    : startAnthropicFake({ script, apiKey: KEY });
}

/** Points `provider`'s capsule at `fake` and the orchestrator at route `route` (default it). */
async function route(env: AstralisEnv, provider: Provider, fake: FakeServer, to?: string) {
  await env.setEnv(PROVIDER_CAPSULE[provider], {
    BASE_URL: provider === "openai" ? fake.baseUrl : fake.url,
  });
  await env.setEnv("orchestrator", { PROVIDER: to ?? provider, MODEL: FAKE_MODEL });
}

/** One tool result as a provider received it, whatever the wire format. */
interface SentToolResult {
  content: string;
  isError: boolean;
}

/** The tool results in the last message of a chat request body (OpenAI or Anthropic format). */
function lastToolResults(body: unknown): SentToolResult[] {
  const messages = (body as { messages?: Record<string, unknown>[] }).messages ?? [];
  const out: SentToolResult[] = [];
  // OpenAI: consecutive role "tool" messages at the end.
  for (let i = messages.length - 1; i >= 0 && messages[i].role === "tool"; i--) {
    out.unshift({ content: String(messages[i].content ?? ""), isError: false });
  }
  if (out.length > 0) return out;
  // Anthropic: a user message of tool_result blocks.
  const last = messages.at(-1);
  if (last?.role === "user" && Array.isArray(last.content)) {
    for (const block of last.content as Record<string, unknown>[]) {
      if (block.type !== "tool_result") continue;
      const c = block.content;
      const text = typeof c === "string"
        ? c
        : Array.isArray(c)
        ? (c as { text?: string }[]).map((p) => p.text ?? "").join("\n")
        : "";
      out.push({ content: text, isError: block.is_error === true });
    }
  }
  return out;
}

/** Every message text of a chat request body, flattened (for "was it sent" checks). */
function allText(body: unknown): string {
  return JSON.stringify((body as { messages?: unknown }).messages ?? []);
}

function context(r: AstridRun): string {
  return `exit ${r.code} after ${Math.round(r.ms)} ms\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs the demo prompt in `ws` with `--json --print-session` and `extra` flags. */
async function demoTurn(env: AstralisEnv, ws: string, extra: string[] = []) {
  const r = await env.astrid(
    ["-p", PROMPT, "--json", "--print-session", "--timeout", TURN_TIMEOUT, ...extra],
    { cwd: ws },
  );
  return { run: r, events: jsonLines(r.stdout), session: lastLine(r.stderr) };
}

/** The demo's tool-call names in order, from `--json` events. */
function toolCalls(events: Record<string, unknown>[]): string[] {
  return events.filter((e) => e.type === "tool_call").map((e) => String(e.tool));
}

/** The changed paths of a session's overlay (`astrid diff --json`). */
async function overlayPaths(env: AstralisEnv, ws: string, session: string): Promise<string[]> {
  const d = await env.astrid(["diff", "--session", session, "--json"], { cwd: ws });
  assert.equal(d.code, 0, context(d));
  return (JSON.parse(d.stdout).changes as { path: string }[]).map((c) => c.path);
}

Deno.test("astrid -p end to end in autonomous mode: both providers, crash, session, cache, router", async (t) => {
  const fakes: FakeServer[] = [];
  const fake = async (p: Provider, script: Parameters<typeof start>[1]) => {
    const f = await start(p, script);
    fakes.push(f);
    return f;
  };
  let env: AstralisEnv | undefined;
  try {
    env = await AstralisEnv.create({ mode: "autonomous" });
    const tools = await stageAsCapsule("tests/fixtures/stand_in_tools", join(env.root, "extra"));
    await env.installCapsule(tools);
    await env.start();
    const e = env;

    for (const provider of ["openai", "anthropic"] as const) {
      await t.step(
        `a. a read → write → run task completes against the ${provider} fake`,
        async () => {
          const demo = await fake(provider, "demo");
          await route(e, provider, demo);
          const ws = await e.workspace(`a-${provider}`, { "notes.md": NOTES });
          const { run, events, session } = await demoTurn(e, ws);
          assert.equal(run.code, 0, context(run));
          assert.deepEqual(toolCalls(events), ["read_file", "write_file", "run_shell"]);
          const response = events.find((x) => x.type === "response")!;
          assert.ok(String(response.text).endsWith(FINAL_ANSWER), context(run));

          // What the provider saw: four chat requests, each follow-up carrying the tool's result.
          assert.deepEqual(demo.requests.map((q) => q.turnName), [
            "read",
            "write",
            "run",
            "answer",
          ]);
          const [, afterRead, afterWrite, afterRun] = demo.requests.map((q) =>
            lastToolResults(q.body)
          );
          assert.deepEqual(afterRead, [{ content: NOTES, isError: false }]);
          assert.equal(afterWrite.length, 1);
          assert.match(afterWrite[0].content, /Wrote \d+ bytes to summary\.md/);
          assert.equal(afterRun.length, 1);
          // The command ran over the overlay: it saw summary.md before any commit.
          assert.match(afterRun[0].content, /3 summary\.md/);
          assert.match(afterRun[0].content, /"exit_code":0/);

          // The write is in the overlay, not in the workspace, until the commit.
          assert.deepEqual(await overlayPaths(e, ws, session), ["summary.md"]);
          assert.equal(await exists(join(ws, "summary.md")), false);
          const commit = await e.astrid(["commit", "--session", session], { cwd: ws });
          assert.equal(commit.code, 0, context(commit));
          assert.equal(await Deno.readTextFile(join(ws, "summary.md")), SUMMARY);
          assert.deepEqual(await overlayPaths(e, ws, session), []);

          const verify = await e.astrid(["audit", "verify"], { cwd: ws });
          assert.equal(verify.code, 0, context(verify));
        },
      );
    }

    await t.step(
      "d. a tool capsule that traps mid-turn yields an error result, not a hang",
      async () => {
        const crash = await fake("openai", {
          name: "crash",
          turns: [
            {
              name: "call the crashing tool",
              match: { turn: 0 },
              reply: {
                text: "Calling it.",
                toolCalls: [{ name: "stand_in_crash", arguments: {} }],
              },
            },
            {
              name: "report",
              match: { turn: 1, toolResults: true },
              reply: { text: "The tool failed: {{lastMessage}}" },
            },
          ],
        });
        await route(e, "openai", crash);
        const ws = await e.workspace("d", {});
        const started = performance.now();
        const r = await e.astrid([
          "-p",
          "use the crashing tool",
          "--json",
          "--timeout",
          TURN_TIMEOUT,
        ], {
          cwd: ws,
        });
        assert.ok(performance.now() - started < CLI_DEADLINE_MS, "exited before the deadline");
        assert.equal(r.code, 0, context(r));
        const events = jsonLines(r.stdout);
        const result = events.find((x) => x.type === "tool_result");
        assert.ok(result !== undefined, context(r));
        assert.equal(result.tool, "stand_in_crash");
        // The user sees the failure as the tool's (error) result…
        assert.equal(result.is_error, true, context(r));
        assert.match(String(result.content), TRAPPED);
        // …and the model was given it as the tool's result, and answered.
        assert.equal(crash.requests.length, 2);
        const sent = lastToolResults(crash.requests[1].body);
        assert.equal(sent.length, 1);
        assert.match(sent[0].content, TRAPPED);
        const response = events.find((x) => x.type === "response")!;
        assert.match(String(response.text), /The tool failed: Tool "stand_in_crash" failed/);
      },
    );

    await t.step("e. --session continues a conversation with its context", async () => {
      const chat = await fake("openai", "session");
      await route(e, "openai", chat);
      const ws = await e.workspace("e", {});
      // The orchestrator keeps its history in the session capsule.
      const first = await e.astrid(
        ["-p", "Remember this: the codeword is heron.", "--print-session"],
        { cwd: ws },
      );
      assert.equal(first.code, 0, context(first));
      assert.equal(first.stdout.trim(), "Noted: the codeword is heron.");
      const session = lastLine(first.stderr);
      const second = await e.astrid(["-p", "What was the codeword?", "--session", session], {
        cwd: ws,
      });
      assert.equal(second.code, 0, context(second));
      assert.equal(second.stdout.trim(), "You told me earlier: the codeword was heron.");
      assert.equal(chat.requests.length, 2);
      const sent = allText(chat.requests[1].body);
      assert.match(sent, /the codeword is heron/);
      assert.match(sent, /Noted: the codeword is heron\./);
      // A new session starts empty.
      const fresh = await e.astrid(["-p", "What was the codeword?"], { cwd: ws });
      assert.match(fresh.stdout, /^I don't know any codeword/);
    });

    await t.step({
      name: "f. the cache answers a repeated identical request without reaching the provider",
      fn: async () => {
        const chat = await fake("openai", {
          name: "cacheable",
          turns: [{ reply: { text: ["A cacheable ", "answer."] } }],
        });
        await route(e, "openai", chat);
        await e.setEnv("cache", { ENABLED: "true" });
        try {
          const ws = await e.workspace("f", {});
          const first = await e.astrid(["-p", "Say something cacheable"], { cwd: ws });
          assert.equal(first.code, 0, context(first));
          assert.equal(first.stdout.trim(), "A cacheable answer.");
          assert.equal(chat.requests.length, 1);
          const second = await e.astrid(["-p", "Say something cacheable"], { cwd: ws });
          assert.equal(second.code, 0, context(second));
          assert.equal(second.stdout.trim(), "A cacheable answer.");
          assert.equal(chat.requests.length, 1, "the provider was not asked again");
        } finally {
          await e.setEnv("cache", { ENABLED: "false" });
        }
      },
    });

    await t.step({
      name: "g. the router falls back to the next provider when one answers 500",
      fn: async () => {
        const broken = await fake("openai", {
          name: "always 500",
          turns: [{ reply: { error: { status: 500, message: "The fake is down" } } }],
        });
        const healthy = await fake("anthropic", {
          name: "answers",
          turns: [{ reply: { text: ["Answered by ", "the fallback."] } }],
        });
        await route(e, "openai", broken, "router");
        await route(e, "anthropic", healthy, "router");
        await e.setEnv("router", {
          ROUTES: "openai,anthropic",
          RULE: "fallback",
          ROUTE_MODELS: `openai=${FAKE_MODEL},anthropic=${FAKE_MODEL}`,
        });
        const ws = await e.workspace("g", {});
        const r = await e.astrid(["-p", "Who answers?", "--timeout", TURN_TIMEOUT], { cwd: ws });
        assert.equal(r.code, 0, context(r));
        assert.equal(r.stdout.trim(), "Answered by the fallback.");
        assert.ok(broken.requests.length >= 1, "the first route was tried");
        assert.ok(broken.requests.every((q) => q.status === 500));
        assert.equal(healthy.requests.length, 1);
      },
    });
  } finally {
    await env?.close();
    for (const f of fakes) await f.close().catch(() => {});
  }
});

Deno.test("astrid -p end to end in safe mode: the write asks, Deny and headless leave the workspace, --yes completes", async (t) => {
  const fakes: FakeServer[] = [];
  let env: AstralisEnv | undefined;
  try {
    env = await AstralisEnv.create({ mode: "safe" });
    await env.start();
    const e = env;
    const demo = async () => {
      const f = await startOpenAiFake({ script: "demo", apiKey: KEY });
      fakes.push(f);
      await route(e, "openai", f);
      return f;
    };

    await t.step(
      "b. headless: the first tool call is denied at once, exit 3, the model is told",
      async () => {
        const f = await demo();
        const ws = await e.workspace("b-headless", { "notes.md": NOTES });
        const started = performance.now();
        const { run, events, session } = await demoTurn(e, ws);
        assert.equal(run.code, 3, context(run));
        assert.ok(performance.now() - started < CLI_DEADLINE_MS);
        assert.ok(events.some((x) => x.type === "approval_unanswerable"), context(run));
        // Nothing was written anywhere.
        assert.equal(await exists(join(ws, "summary.md")), false);
        assert.deepEqual(await overlayPaths(e, ws, session), []);
        // The model's next request carries the read's denial as its result; the scripted model
        // then asks for the write, denied the same way, and stops.
        assert.deepEqual(f.requests.map((q) => q.turnName), ["read", "write", "write denied"]);
        const afterRead = lastToolResults(f.requests[1].body);
        assert.equal(afterRead.length, 1);
        assert.match(
          afterRead[0].content,
          /Tool "read_file" refused: .*denied by "kernel:tool_guard": No human can be asked/,
        );
        const afterWrite = lastToolResults(f.requests[2].body);
        assert.equal(afterWrite.length, 1);
        assert.match(afterWrite[0].content, /Tool "write_file" refused: .*denied/);
        const response = events.find((x) => x.type === "response")!;
        assert.match(String(response.text), /was denied, so I left the workspace untouched/);
        // Audited: each tool call denied by the approval layer as unanswerable (the mode table's
        // tool row asks in safe mode) before the tool ran, so notes.md was not even read.
        const rows = (await e.audit()).filter((a) => a.session === session);
        const denied = rows.filter((a) => a.decision === "denied");
        assert.deepEqual(
          denied.map((a) => [a.action, a.resource, a.layer, a.decider, a.rule]),
          [
            ["tool.execute", "tool:read_file", "approval", "headless", "safe/tool"],
            ["tool.execute", "tool:write_file", "approval", "headless", "safe/tool"],
          ],
        );
        const touched = rows.filter((a) =>
          a.action === "fs.write" || a.resource === `fs:${ws}/notes.md`
        );
        assert.deepEqual(touched, []);
      },
    );

    await t.step(
      "b. a human's Deny: the workspace is untouched and the model is told",
      async () => {
        const f = await demo();
        const ws = await e.workspace("b-deny", { "notes.md": NOTES });
        const session = `deny-${crypto.randomUUID().slice(0, 8)}`;
        await using approver = await startScriptedApprover(e.home, {
          session,
          workspace: ws,
          // Deny whatever writes summary.md; allow everything else once.
          choose: (q) =>
            /summary\.md|write/.test(`${q.resource ?? ""} ${q.summary ?? ""}`)
              ? "deny"
              : "allow_once",
        });
        const { run, events } = await demoTurn(e, ws, ["--session", session]);
        // An explicit Deny is an answer: the turn goes on and exits 0 (DESIGN §3a).
        assert.equal(run.code, 0, context(run));
        // Each tool call was asked about before its tool ran: the read allowed once, the write
        // denied (its call, so the file write itself never came to be asked).
        assert.deepEqual(
          approver.answered.map((a) => [a.request.kind, a.request.resource, a.answer]),
          [
            ["tool.execute", "tool:read_file", "allow_once"],
            ["tool.execute", "tool:write_file", "deny"],
          ],
        );
        assert.equal(await exists(join(ws, "summary.md")), false);
        assert.deepEqual(await overlayPaths(e, ws, session), []);
        const writeAt = f.requests.findIndex((q) => q.turnName === "write");
        assert.ok(writeAt >= 0, context(run));
        const sent = lastToolResults(f.requests[writeAt + 1].body);
        assert.match(sent[0].content, /denied/i);
        assert.equal(f.requests.at(-1)!.turnName, "write denied");
        const response = events.find((x) => x.type === "response")!;
        assert.match(String(response.text), /was denied, so I left the workspace untouched/);
        const rows = (await e.audit()).filter((a) => a.session === session);
        assert.deepEqual(
          rows.filter((a) => a.decision === "denied").map((a) => [a.action, a.layer, a.decider]),
          [["tool.execute", "approval", "human"]],
        );
        assert.deepEqual(rows.filter((a) => a.action === "fs.write"), []);
      },
    );

    await t.step("c. --yes completes the task, audited as the operator's flag", async () => {
      const f = await demo();
      const ws = await e.workspace("c", { "notes.md": NOTES });
      const { run, events, session } = await demoTurn(e, ws, ["--yes"]);
      assert.equal(run.code, 0, context(run));
      assert.deepEqual(toolCalls(events), ["read_file", "write_file", "run_shell"]);
      assert.deepEqual(f.requests.map((q) => q.turnName), ["read", "write", "run", "answer"]);
      assert.deepEqual(await overlayPaths(e, ws, session), ["summary.md"]);
      assert.equal(await exists(join(ws, "summary.md")), false);
      const writes = (await e.audit()).filter((a) =>
        a.session === session && a.action === "fs.write"
      );
      assert.equal(writes.length, 1, JSON.stringify(writes));
      assert.equal(writes[0].decision, "allowed");
      assert.equal(writes[0].decider, "operator_flag");
      assert.equal(writes[0].rule, "--yes");
      const verify = await e.astrid(["audit", "verify"], { cwd: ws });
      assert.equal(verify.code, 0, context(verify));
    });
  } finally {
    await env?.close();
    for (const f of fakes) await f.close().catch(() => {});
  }
});

Deno.test("astrid -p end to end through the shipped astralis distro: orchestrator → cache → router → provider", async (t) => {
  const answer = "The shipped distro answers.";
  const chat = await startOpenAiFake({
    apiKey: KEY,
    script: { name: "shipped", turns: [{ reply: { text: ["The shipped ", "distro answers."] } }] },
  });
  let env: AstralisEnv | undefined;
  try {
    env = await AstralisEnv.createShipped({
      mode: "autonomous",
      groups: ["openai"],
      vars: {
        openai_api_key: KEY,
        openai_base_url: chat.baseUrl,
        openai_model: FAKE_MODEL,
      },
    });
    const e = env;

    await t.step("h. init wires the router to the selected group only", async () => {
      const stored = async (capsule: string) =>
        JSON.parse(
          await Deno.readTextFile(
            join(e.home, "home", "default", ".config", "env", `${capsule}.env.json`),
          ),
        );
      assert.equal((await stored("orchestrator")).PROVIDER, "router", e.initOutput);
      const router = await stored("router");
      assert.equal(router.ROUTES, "openai");
      assert.match(router.ROUTE_MODELS, new RegExp(`openai=${FAKE_MODEL}`));
      assert.equal((await stored("provider-openai-compat")).BASE_URL, chat.baseUrl);
      for (const name of ["session", "cache", "router", "orchestrator", "provider-openai-compat"]) {
        assert.ok(e.capsules.includes(name), `the shipped distro names ${name}`);
      }
    });

    await e.start();
    const ws = await e.workspace("h", {});
    const prompt = "Answer through the shipped distro";

    await t.step("h. -p is answered by the OpenAI fake through the router", async () => {
      const r = await e.astrid(["-p", prompt, "--timeout", TURN_TIMEOUT], { cwd: ws });
      assert.equal(r.code, 0, context(r));
      assert.equal(r.stdout.trim(), answer);
      assert.equal(chat.requests.length, 1, "the provider was asked once");
      const body = chat.requests[0].body as { model?: string };
      assert.equal(body.model, FAKE_MODEL);
      assert.match(allText(body), new RegExp(prompt));
    });

    await t.step("h. the same prompt in a new session is served by the cache", async () => {
      const r = await e.astrid(["-p", prompt, "--timeout", TURN_TIMEOUT], { cwd: ws });
      assert.equal(r.code, 0, context(r));
      assert.equal(r.stdout.trim(), answer);
      assert.equal(chat.requests.length, 1, "the provider was not asked again");
    });
  } finally {
    await env?.close();
    await chat.close().catch(() => {});
  }
});
