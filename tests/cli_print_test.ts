/**
 * Proves `astrid -p` as a script drives it: the real `main.ts` in child processes against a
 * real daemon in a temporary ASTRID_HOME, with the echo orchestrator
 * (`tests/fixtures/echo_orchestrator/`) installed as a real wasm capsule. The answer and exit 0,
 * the prompt from standard input, `--json` events, `--session` continuation with
 * `--print-session`, an elicitation failing at once with nobody to ask, a headless approval
 * denied at once and audited (exit 3, even though the model answered), `--yes` audited as the
 * operator's flag with the write in the overlay, the budget (4) and provider (5) exit codes,
 * `--timeout` (1), SIGINT (130), usage errors (2), no orchestrator at all (1), and a trapping
 * non-guard interceptor on the prompt that does not end a turn the orchestrator answers. Every child
 * runs under a hard kill deadline, so nothing here can hang.
 *
 * @module
 */
import assert from "node:assert/strict";
import { installEchoOrchestrator } from "./fixtures/echo_orchestrator/build.ts";
import { installTrappingInterceptor } from "./fixtures/trapping_interceptor/build.ts";
import {
  astridCommand,
  type AstridRun,
  type AuditRow,
  CLI_DEADLINE_MS,
  jsonLines,
  lastLine,
  runAstrid,
} from "./fixtures/run_astrid.ts";

interface Env {
  home: string;
  workspace: string;
}

function command(env: Env, args: string[], stdin: "null" | "piped"): Deno.Command {
  return astridCommand(env.home, args, { cwd: env.workspace, stdin });
}

function astrid(env: Env, args: string[], input?: string): Promise<AstridRun> {
  return runAstrid(env.home, args, { cwd: env.workspace, input });
}

async function audit(env: Env): Promise<AuditRow[]> {
  const r = await astrid(env, ["audit", "show", "--json", "--limit", "500"]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim() === "" ? [] : jsonLines(r.stdout) as unknown as AuditRow[];
}

async function makeEnv(options: { capsule: boolean }): Promise<Env> {
  const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "ap" });
  const workspace = await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-ws-" }));
  if (options.capsule) await installEchoOrchestrator(home);
  return { home, workspace };
}

async function dispose(env: Env): Promise<void> {
  await astrid(env, ["stop"]).catch(() => {});
  const pid = Number.parseInt(
    await Deno.readTextFile(`${env.home}/run/system.lock`).catch(() => ""),
    10,
  );
  if (Number.isSafeInteger(pid) && pid > 0) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  await Deno.remove(env.home, { recursive: true }).catch(() => {});
  await Deno.remove(env.workspace, { recursive: true }).catch(() => {});
}

Deno.test("astrid -p answers, reads stdin, streams --json and continues --session", async (t) => {
  const env = await makeEnv({ capsule: true });
  try {
    assert.equal((await astrid(env, ["start"])).code, 0);

    await t.step("prints the answer and exits 0", async () => {
      const r = await astrid(env, ["-p", "hello world"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "echo: hello world\n");
    });

    await t.step("appends piped standard input to the prompt, or takes it alone", async () => {
      const both = await astrid(env, ["-p", "Summarize:"], "line one\nline two\n");
      assert.equal(both.code, 0, both.stderr);
      assert.equal(both.stdout, "echo: Summarize:\n\nline one\nline two\n");
      const alone = await astrid(env, ["-p"], "only stdin");
      assert.equal(alone.code, 0, alone.stderr);
      assert.equal(alone.stdout, "echo: only stdin\n");
    });

    await t.step("--json prints one event per line, ending with done", async () => {
      const r = await astrid(env, ["-p", "hi", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const events = jsonLines(r.stdout);
      assert.deepEqual(events.map((e) => e.type), [
        "start",
        "delta",
        "delta",
        "delta",
        "response",
        "done",
      ]);
      assert.deepEqual(events.slice(1, 4).map((e) => e.text), ["echo", ": ", "hi"]);
      assert.equal(events[4].text, "echo: hi");
      assert.deepEqual(events[4].usage, { input_tokens: 3, output_tokens: 5 });
      assert.equal(events[5].exit_code, 0);
      assert.equal(events[5].session, events[0].session);
      assert.equal(events[0].workspace, env.workspace);
    });

    await t.step("--print-session names the session; --session continues it", async () => {
      const first = await astrid(env, ["-p", "remember me", "--print-session"]);
      assert.equal(first.code, 0, first.stderr);
      const session = lastLine(first.stderr);
      assert.match(session, /^[0-9a-f-]{36}$/);
      const again = await astrid(env, ["-p", "and again", "--session", session, "--json"]);
      assert.equal(again.code, 0, again.stderr);
      const start = jsonLines(again.stdout)[0];
      assert.equal(start.session, session);
      const named = await astrid(env, [
        "-p",
        "named",
        "--session",
        "my-session",
        "--print-session",
      ]);
      assert.equal(lastLine(named.stderr), "my-session");
    });

    await t.step("an elicitation with no one to ask fails at once for the capsule", async () => {
      const r = await astrid(env, ["-p", "ask me", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const call = jsonLines(r.stdout).find((e) => e.type === "tool_call")!;
      assert.deepEqual(call.arguments, { declined: true });
    });

    await t.step("--principal acts as another principal", async () => {
      const r = await astrid(env, ["-p", "who", "--principal", "bob", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(jsonLines(r.stdout)[0].principal, "bob");
    });
  } finally {
    await dispose(env);
  }
});

Deno.test("astrid -p exit codes: 3 headless approval, --yes, 4 budget, 5 provider, 1 timeout, 130 SIGINT, 2 usage", async (t) => {
  const env = await makeEnv({ capsule: true });
  try {
    assert.equal((await astrid(env, ["start"])).code, 0);

    await t.step(
      "an approval nobody can answer is denied at once, audited, and exits 3",
      async () => {
        const started = Date.now();
        const r = await astrid(env, ["-p", "please write it", "--print-session"]);
        assert.equal(r.code, 3, r.stderr);
        // The model answered afterwards: the exit code still says an approval was unanswerable.
        assert.equal(r.stdout, "echo: please write it (write denied)\n");
        assert.match(r.stderr, /\[approval\] denied: No human can be asked to allow write/);
        assert.ok(Date.now() - started < CLI_DEADLINE_MS);
        const session = lastLine(r.stderr);
        const denied = (await audit(env)).filter((e) =>
          e.session === session && e.action === "fs.write"
        );
        assert.equal(denied.length, 1);
        assert.equal(denied[0].decision, "denied");
        assert.equal(denied[0].layer, "approval");
        assert.equal(denied[0].decider, "headless");
        assert.equal(denied[0].resource, `fs:${env.workspace}/echo.txt`);
        // Nothing reached the overlay, let alone the workspace.
        const diff = await astrid(env, ["diff", "--session", session, "--json"]);
        assert.deepEqual(JSON.parse(diff.stdout).changes, []);
      },
    );

    await t.step("--json reports the unanswerable approval and exit code 3", async () => {
      const r = await astrid(env, ["-p", "write again", "--json"]);
      assert.equal(r.code, 3);
      const events = jsonLines(r.stdout);
      // The notice travels on the approvals subscription: its place among the agent's events
      // is not fixed, its presence is.
      const types = events.map((e) => e.type);
      assert.equal(types.filter((t) => t === "approval_unanswerable").length, 1);
      assert.deepEqual(types.filter((t) => t !== "approval_unanswerable"), [
        "start",
        "delta",
        "delta",
        "delta",
        "tool_call",
        "tool_result",
        "delta",
        "response",
        "done",
      ]);
      assert.equal(events.at(-1)!.exit_code, 3);
    });

    await t.step(
      "--yes allows it once, audited as the operator's flag; the write is in the overlay",
      async () => {
        const r = await astrid(env, ["-p", "now write it", "--yes", "--print-session"]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "echo: now write it (wrote echo.txt)\n");
        const session = lastLine(r.stderr);
        const allowed = (await audit(env)).filter((e) =>
          e.session === session && e.action === "fs.write"
        );
        assert.equal(allowed.length, 1);
        assert.equal(allowed[0].decision, "allowed");
        assert.equal(allowed[0].decider, "operator_flag");
        assert.equal(allowed[0].rule, "--yes");
        const diff = await astrid(env, ["diff", "--session", session, "--json"]);
        const changes = JSON.parse(diff.stdout).changes;
        assert.deepEqual(changes.map((c: { path: string }) => c.path), ["echo.txt"]);
        await assert.rejects(() => Deno.lstat(`${env.workspace}/echo.txt`));
      },
    );

    await t.step("a budget error exits 4, a provider error 5", async () => {
      const budget = await astrid(env, ["-p", "fail-budget please"]);
      assert.equal(budget.code, 4);
      assert.match(budget.stderr, /error: Budget exhausted/);
      const provider = await astrid(env, ["-p", "fail-provider please", "--json"]);
      assert.equal(provider.code, 5);
      const response = jsonLines(provider.stdout).find((e) => e.type === "response")!;
      assert.deepEqual(response.error, {
        kind: "provider",
        message: "The provider answered 503: overloaded",
      });
    });

    await t.step("a turn that never ends stops at --timeout with exit 1", async () => {
      const r = await astrid(env, ["-p", "hang here", "--timeout", "2"]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, "echo: hang here\n");
      assert.match(r.stderr, /No answer within 2 s \(--timeout/);
    });

    await t.step("an orchestrator that traps ends the turn at once with exit 1", async () => {
      const started = Date.now();
      const r = await astrid(env, ["-p", "crash now", "--timeout", "50"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /The capsule "echo-orchestrator" failed on the prompt \(on_prompt\)/);
      assert.ok(Date.now() - started < 40_000, "ended by the kernel's notice, not --timeout");
    });

    await t.step("SIGINT cancels the turn and exits 130", async () => {
      const child = command(env, ["-p", "hang until interrupted", "--timeout", "50"], "null")
        .spawn();
      const reader = child.stdout.getReader();
      let seen = "";
      const drained = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          seen += new TextDecoder().decode(value);
        }
      })();
      const stderr = new Response(child.stderr).text();
      while (!seen.includes("hang until interrupted")) {
        await new Promise((resolve) => setTimeout(resolve, 20)); // polling a real child
      }
      child.kill("SIGINT");
      const status = await child.status;
      await drained;
      assert.match(await stderr, /Interrupted: the turn is cancelled/);
      assert.equal(status.code, 130);
    });

    await t.step("usage errors exit 2", async () => {
      assert.equal((await astrid(env, ["-p"])).code, 2);
      const bad = await astrid(env, ["-p", "x", "--session", "no spaces allowed"]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /Invalid --session/);
      assert.equal((await astrid(env, ["-p", "x", "--timeout", "soon"])).code, 2);
      assert.equal((await astrid(env, ["-p", "x", "--bogus"])).code, 2);
    });
  } finally {
    await dispose(env);
  }
});

Deno.test("astrid -p with no orchestrator installed says so and exits 1", async () => {
  const env = await makeEnv({ capsule: false });
  try {
    const r = await astrid(env, ["-p", "anyone there?"]); // auto-starts an ephemeral daemon
    assert.equal(r.code, 1);
    assert.match(r.stderr, /No capsule answered the prompt/);
  } finally {
    await dispose(env);
  }
});

Deno.test("astrid -p is not ended by a skipped non-guard interceptor that traps on the prompt", async () => {
  const env = await makeEnv({ capsule: true });
  try {
    await installTrappingInterceptor(env.home);
    assert.equal((await astrid(env, ["start"])).code, 0);
    const r = await astrid(env, ["-p", "still answered", "--timeout", "50"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "echo: still answered\n");
    assert.doesNotMatch(r.stderr, /failed on the prompt/);
  } finally {
    await dispose(env);
  }
});
