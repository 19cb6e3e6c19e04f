/**
 * Proves `astrid chat` in a real pseudo-terminal: the real `main.ts` runs inside `tmux` (its
 * own private server, `-L`), keystrokes are sent with `send-keys` and the screen is read with
 * `capture-pane`, against a real daemon with the echo orchestrator installed. Streaming, tool
 * activity lines, an approval prompt answered by one keystroke (Allow Session), that allowance
 * honoured by a `-p --session` of another process while the chat stays attached (not asked
 * again), an elicitation answered with a digit, `/diff` and `/commit`, Ctrl-C cancelling a turn
 * but not the session, Ctrl-C twice leaving, and the session's allowance dropped once its last
 * connection closed.
 *
 * Needs `tmux` (`apt-get install -y tmux`; `.ci/run` installs it). Without it the test is
 * reported as ignored and a warning says why: never a silent pass.
 *
 * @module
 */
import assert from "node:assert/strict";
import { installEchoOrchestrator } from "./fixtures/echo_orchestrator/build.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const HARD_LIMIT_MS = 60_000;

const hasTmux = await new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" })
  .output().then((o) => o.success, () => false);
if (!hasTmux) {
  console.warn(
    "SKIPPED tests/cli_chat_pty_test.ts: tmux is not installed (apt-get install -y tmux); " +
      "the interactive chat is NOT tested in this run",
  );
}

interface Env {
  home: string;
  workspace: string;
  socket: string;
}

async function run(cmd: string, args: string[], env: Record<string, string> = {}, cwd?: string) {
  const out = await new Deno.Command(cmd, {
    args,
    env,
    ...(cwd === undefined ? {} : { cwd }),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(HARD_LIMIT_MS),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function astrid(env: Env, args: string[]) {
  return run(
    Deno.execPath(),
    ["run", "-A", "--quiet", "--config", CONFIG, MAIN, ...args],
    { ASTRID_HOME: env.home, NO_COLOR: "1" },
    env.workspace,
  );
}

function tmux(env: Env, args: string[]) {
  return run("tmux", ["-u", "-L", env.socket, ...args]);
}

async function screen(env: Env): Promise<string> {
  return (await tmux(env, ["capture-pane", "-p", "-J", "-S", "-500", "-t", "chat"])).stdout;
}

/** Polls the pane (a real terminal, so real time) until `text` shows up. */
async function waitFor(env: Env, text: string | RegExp, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await screen(env);
    if (typeof text === "string" ? s.includes(text) : text.test(s)) return s;
    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for ${String(text)} in the chat pane:\n${s}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits until the turn showing `text` has ended: the prompt is back on the last line. */
async function waitIdle(env: Env, text: string): Promise<void> {
  const escaped = text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  await waitFor(env, new RegExp(`${escaped}[^]*\n›\\s*$`));
}

async function keys(env: Env, ...k: string[]): Promise<void> {
  const r = await tmux(env, ["send-keys", "-t", "chat", ...k]);
  assert.equal(r.code, 0, r.stderr);
}

async function type(env: Env, text: string): Promise<void> {
  await keys(env, "-l", text);
  await keys(env, "Enter");
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

interface AuditRow {
  action: string;
  decision: string;
  decider: string;
  session: string;
}

async function audit(env: Env): Promise<AuditRow[]> {
  const r = await astrid(env, ["audit", "show", "--json", "--limit", "500"]);
  return r.stdout.trim().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

Deno.test({
  name:
    "astrid chat in a terminal: streaming, an approval by keystroke, Allow Session across processes, Ctrl-C",
  ignore: !hasTmux,
  async fn(t) {
    const env: Env = {
      home: await Deno.makeTempDir({ dir: "/tmp", prefix: "ac" }),
      workspace: await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-chat-ws-" })),
      socket: `astrid-test-${crypto.randomUUID().slice(0, 8)}`,
    };
    try {
      await installEchoOrchestrator(env.home);
      assert.equal((await astrid(env, ["start"])).code, 0);
      const command = [
        `cd '${env.workspace}' &&`,
        `ASTRID_HOME='${env.home}' NO_COLOR=1`,
        `'${Deno.execPath()}' run -A --quiet --config '${CONFIG}' '${MAIN}' chat --session S1;`,
        `echo $? > '${env.home}/chat.exit'`,
      ].join(" ");
      const started = await tmux(env, [
        "new-session",
        "-d",
        "-s",
        "chat",
        "-x",
        "160",
        "-y",
        "60",
        command,
      ]);
      assert.equal(started.code, 0, started.stderr);
      await tmux(env, ["set-option", "-t", "chat", "remain-on-exit", "on"]);

      await t.step("the banner names the session and the workspace", async () => {
        // The prompt shows once the chat listens to the keyboard (raw mode).
        const s = await waitFor(env, /Ctrl-D exits\n›/);
        assert.match(s, /astrid chat — session S1/);
        assert.ok(s.includes(`workspace ${env.workspace}`), s);
      });

      await t.step("a turn streams its answer", async () => {
        await type(env, "hello there");
        await waitIdle(env, "echo: hello there");
      });

      await t.step(
        "an approval prompt is answered with one keystroke (s: Allow session)",
        async () => {
          await type(env, "please write a file");
          const s = await waitFor(env, "[s] Allow session");
          assert.match(s, /Approval needed: write .*echo\.txt/);
          assert.match(s, /\[o\] Allow once {2}\[s\] Allow session {2}\[w\] Allow workspace/);
          assert.match(s, /write_file \{"path":"echo.txt"\}/); // the tool activity line
          await keys(env, "s");
          await waitFor(env, "Allow session\n");
          await waitIdle(env, "wrote echo.txt");
        },
      );

      await t.step(
        "another process's -p --session S1 is not asked again while chat is attached",
        async () => {
          const r = await astrid(env, ["-p", "write from print", "--session", "S1", "--json"]);
          assert.equal(r.code, 0, r.stderr);
          const types = r.stdout.trim().split("\n").map((l) => JSON.parse(l).type);
          assert.ok(!types.includes("approval_unanswerable"), r.stdout);
          assert.ok(!types.includes("approval"), r.stdout);
          const writes = (await audit(env)).filter((e) =>
            e.session === "S1" && e.action === "fs.write" && e.decision === "allowed"
          );
          assert.deepEqual(writes.map((e) => e.decider), ["human", "allowance"]);
          assert.equal(count(await screen(env), "Approval needed"), 1);
        },
      );

      await t.step("an elicitation is answered from the chat with a digit", async () => {
        await type(env, "ask me something");
        const s = await waitFor(env, "[2] blue");
        assert.match(s, /echo-orchestrator asks: Which color\?/);
        await keys(env, "2");
        await waitIdle(env, 'elicit {"value":"blue"}');
      });

      await t.step("/diff shows the overlay; /commit applies it", async () => {
        await type(env, "/diff");
        await waitFor(env, /added\s+echo\.txt/);
        await waitIdle(env, "+write from print");
        await type(env, "/commit");
        await waitIdle(env, "Committed 1 change(s)");
        assert.equal(await Deno.readTextFile(`${env.workspace}/echo.txt`), "write from print\n");
      });

      await t.step("Ctrl-C cancels the running turn, not the session", async () => {
        await type(env, "hang on a moment");
        await waitFor(env, "echo: hang on a moment");
        await keys(env, "C-c");
        await waitIdle(env, "turn cancelled");
        await type(env, "still here");
        await waitIdle(env, "echo: still here");
      });

      await t.step("Ctrl-C twice at an empty prompt leaves", async () => {
        await keys(env, "C-c");
        await waitFor(env, "Ctrl-C again to exit");
        await keys(env, "C-c");
        // The shell around the chat writes its exit code when it ends.
        const deadline = Date.now() + 20_000;
        let code: string | undefined;
        while (code === undefined) {
          code = await Deno.readTextFile(`${env.home}/chat.exit`).then(
            (t) => t.trim(),
            () => undefined,
          );
          if (code !== undefined && code !== "") break;
          code = undefined;
          if (Date.now() > deadline) throw new Error(`chat did not exit:\n${await screen(env)}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert.equal(code, "0");
      });

      await t.step(
        "with the session's last connection gone, Allow Session is gone too",
        async () => {
          const r = await astrid(env, ["-p", "write once more", "--session", "S1"]);
          assert.equal(r.code, 3, r.stderr);
        },
      );
    } finally {
      await tmux(env, ["kill-server"]).catch(() => {});
      await astrid(env, ["stop"]).catch(() => {});
      await Deno.remove(env.home, { recursive: true }).catch(() => {});
      await Deno.remove(env.workspace, { recursive: true }).catch(() => {});
    }
  },
});
