/**
 * `deno task demo`: one real agent turn end to end, through the real CLI and daemon.
 *
 * Creates a temporary workspace (`notes.md`, an `.astrid/` marker) and `ASTRID_HOME`, installs the
 * astralis distro with `astrid init` (non-interactive), starts the daemon, attaches the scripted
 * approver to the demo's session, runs `astrid -p … --json` and prints its events in named
 * sections (request, stream, tool calls, approval), then `astrid diff`, `astrid commit` and
 * `astrid audit verify`, and stops everything. With `ANTHROPIC_API_KEY` set it uses the Anthropic
 * API; with `OPENAI_BASE_URL` that endpoint; with neither, the repository's scripted
 * OpenAI-compatible server (`tests/fakes/`, script `demo`) on loopback. `--keep` keeps the
 * temporary directories. Exit code 0 when every step succeeded, 1 otherwise. docs/demo.md.
 *
 * @module
 */
import { parse as parseToml } from "smol-toml";
import { join } from "node:path";
import { type FakeServer, startOpenAiFake } from "../fakes/mod.ts";
import { type AnsweredApproval, startScriptedApprover } from "./scripted_approver.ts";

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const MAIN = join(REPO, "main.ts");
/** The loopback ports provider-openai-compat's manifest `net` list allows (Capsule.toml). */
const FAKE_PORTS = [11434, 1234, 8000];
const PROMPT = "Summarize notes.md into summary.md and count the lines";
const NOTES = "# Notes\n\n- Astrid runs agents as capsules\n- Writes land in an overlay\n" +
  "- Every action is audited\n";

/** A step that failed: its message is printed and the demo exits 1. */
class DemoFailure extends Error {}

/** Which model the demo talks to. */
interface Route {
  group: "openai" | "anthropic";
  vars: Record<string, string>;
  /** One line saying plainly what is used. */
  banner: string;
  scripted: boolean;
}

let current = "";
let midLine = false;

function out(text: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(text));
}

function endLine(): void {
  if (midLine) out("\n");
  midLine = false;
}

/** Prints `== name ==` when the output moves to another section. */
function section(name: string): void {
  if (current === name) return;
  endLine();
  out(`\n== ${name} ==\n`);
  current = name;
}

function line(text: string): void {
  endLine();
  out(`${text}\n`);
}

function indent(text: string): string {
  return text.replace(/\n+$/, "").split("\n").map((l) => `  ${l}`).join("\n");
}

function short(text: string, max = 160): string {
  const one = text.replace(/\s+/g, " ").trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** Runs `astrid …` in `cwd` with `home`; returns its output (throws when `check` and it fails). */
async function astrid(
  args: string[],
  o: { cwd: string; home: string; check?: boolean; show?: boolean },
): Promise<{ code: number; stdout: string; stderr: string }> {
  if (o.show !== false) line(`$ astrid ${args.join(" ")}`);
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd: o.cwd,
    env: { ASTRID_HOME: o.home, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(res.stdout);
  const stderr = new TextDecoder().decode(res.stderr);
  if (o.show !== false) {
    const text = (stdout + stderr).trim();
    if (text !== "") line(indent(text));
  }
  if (o.check !== false && res.code !== 0) {
    throw new DemoFailure(
      `"astrid ${args[0]}" failed with exit code ${res.code}: ${short(stderr || stdout, 400)}`,
    );
  }
  return { code: res.code, stdout, stderr };
}

/** The `host:port` entries provider-openai-compat may reach (its manifest `net` list). */
async function openAiNetList(): Promise<string[]> {
  const manifest = parseToml(
    await Deno.readTextFile(join(REPO, "capsules/provider-openai-compat/Capsule.toml")),
  ) as { capabilities?: { net?: string[] } };
  return manifest.capabilities?.net ?? [];
}

async function startFake(): Promise<FakeServer> {
  let last: unknown;
  for (const port of FAKE_PORTS) {
    try {
      return await startOpenAiFake({ script: "demo", port });
    } catch (err) {
      last = err;
    }
  }
  throw new DemoFailure(
    `Cannot start the scripted OpenAI-compatible server on 127.0.0.1 ports ${
      FAKE_PORTS.join(", ")
    } (the only loopback ports provider-openai-compat's net list allows): ${
      (last as Error)?.message ?? last
    }: free one of them`,
  );
}

async function chooseRoute(): Promise<{ route: Route; fake?: FakeServer }> {
  const anthropicKey = Deno.env.get("ANTHROPIC_API_KEY") ?? "";
  const baseUrl = Deno.env.get("OPENAI_BASE_URL") ?? "";
  if (anthropicKey !== "") {
    const model = Deno.env.get("ANTHROPIC_MODEL") || "claude-sonnet-4-5";
    return {
      route: {
        group: "anthropic",
        vars: {
          anthropic_api_key: anthropicKey,
          anthropic_model: model,
        },
        banner: "ANTHROPIC_API_KEY is set: the demo talks to the real Anthropic API " +
          "(provider-anthropic).",
        scripted: false,
      },
    };
  }
  if (baseUrl !== "") {
    const url = new URL(baseUrl);
    const port = url.port !== "" ? url.port : url.protocol === "https:" ? "443" : "80";
    const allowed = await openAiNetList();
    if (!allowed.includes(`${url.hostname}:${port}`)) {
      throw new DemoFailure(
        `OPENAI_BASE_URL "${baseUrl}" names ${url.hostname}:${port}, which ` +
          `provider-openai-compat's net allow list does not include (allowed: ${
            allowed.join(", ")
          }): add it to capsules/provider-openai-compat/Capsule.toml [capabilities] net, then rerun`,
      );
    }
    const model = Deno.env.get("OPENAI_MODEL") || "gpt-4.1";
    return {
      route: {
        group: "openai",
        vars: {
          openai_api_key: Deno.env.get("OPENAI_API_KEY") || "none",
          openai_base_url: baseUrl,
          openai_model: model,
        },
        banner: `OPENAI_BASE_URL is set: the demo talks to the model at ${baseUrl} ` +
          "(provider-openai-compat).",
        scripted: false,
      },
    };
  }
  const fake = await startFake();
  return {
    fake,
    route: {
      group: "openai",
      vars: {
        openai_api_key: "sk-demo-fake",
        openai_base_url: fake.baseUrl,
        openai_model: "fake-model",
      },
      banner: "No ANTHROPIC_API_KEY or OPENAI_BASE_URL is set: the demo starts the repository's " +
        `scripted OpenAI-compatible server (tests/fakes, script "demo") at ${fake.baseUrl}. ` +
        "No real model is called; the answers are scripted.",
      scripted: true,
    },
  };
}

/** Splits a byte stream into lines. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, nl);
      buf = buf.slice(nl + 1);
    }
  }
  if (buf !== "") yield buf;
}

/** What the turn did, for the checks after it. */
interface TurnSummary {
  tools: string[];
  exitCode: number;
  answer: string;
  error: string;
}

/** Runs `astrid -p` with `--json` and prints its events as they arrive. */
async function runTurn(session: string, o: { cwd: string; home: string }): Promise<TurnSummary> {
  section("request");
  line(`prompt:  ${PROMPT}`);
  line(`session: ${session}`);
  line(`$ astrid -p "${PROMPT}" --session ${session} --json`);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "-p", PROMPT, "--session", session, "--json", "--timeout", "180"],
    cwd: o.cwd,
    env: { ASTRID_HOME: o.home, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderrText = new Response(child.stderr).text();
  const summary: TurnSummary = { tools: [], exitCode: -1, answer: "", error: "" };
  for await (const raw of lines(child.stdout)) {
    if (raw.trim() === "") continue;
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(raw);
    } catch {
      section("stream");
      line(raw);
      continue;
    }
    switch (e.type) {
      case "start":
        section("request");
        line(`request: ${e.request_id} (principal ${e.principal}, workspace ${e.workspace})`);
        break;
      case "delta":
        section("stream");
        out(String(e.text ?? ""));
        midLine = true;
        break;
      case "tool_call":
        section("tool calls");
        summary.tools.push(String(e.tool));
        line(`→ ${e.tool} ${short(JSON.stringify(e.arguments ?? {}))}`);
        break;
      case "tool_result":
        section("tool calls");
        line(
          `← ${e.tool} ${e.is_error === true ? "error" : "ok"}: ${short(String(e.content ?? ""))}`,
        );
        break;
      case "approval_unanswerable":
        section("approval");
        line(`nobody could answer: ${short(JSON.stringify(e))}`);
        break;
      case "response":
        summary.answer = String(e.text ?? "");
        section("response");
        line(summary.answer);
        if (e.usage !== undefined) line(`usage: ${JSON.stringify(e.usage)}`);
        break;
      case "error":
        summary.error = String(e.message ?? JSON.stringify(e));
        section("response");
        line(`error: ${summary.error}`);
        break;
      case "done":
        break;
      default:
        // approval / approval_answered: the approver prints those under "approval".
        break;
    }
  }
  summary.exitCode = (await child.status).code;
  const err = (await stderrText).trim();
  if (summary.exitCode !== 0) {
    throw new DemoFailure(
      `"astrid -p" failed with exit code ${summary.exitCode}${
        summary.error !== "" ? `: ${summary.error}` : ""
      }${err !== "" ? `: ${short(err, 400)}` : ""}`,
    );
  }
  return summary;
}

function printApproval(a: AnsweredApproval): void {
  section("approval");
  const r = a.request;
  line(`? ${r.kind ?? "action"} ${r.resource ?? ""}${r.summary ? ` — ${short(r.summary)}` : ""}`);
  line(`  offered: ${(r.answers ?? []).join(", ")}`);
  line(`  answered: ${a.answer}`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs the demo; returns the exit code. */
async function main(args: string[]): Promise<number> {
  const keep = args.includes("--keep");
  const unknown = args.filter((a) => a !== "--keep");
  if (unknown.length > 0) {
    console.error(`Unknown argument "${unknown[0]}": the demo takes only --keep`);
    return 2;
  }
  const root = await Deno.makeTempDir({ prefix: "astrid-demo-" });
  const ws = join(root, "workspace");
  const home = join(root, "home");
  let fake: FakeServer | undefined;
  let daemonStarted = false;
  let approver: Awaited<ReturnType<typeof startScriptedApprover>> | undefined;
  let code = 0;
  try {
    out("Astrid demo: one agent turn through the real CLI, daemon and capsules\n");
    const chosen = await chooseRoute();
    fake = chosen.fake;
    const route = chosen.route;
    line(route.banner);

    section("setup");
    await Deno.mkdir(join(ws, ".astrid"), { recursive: true });
    await Deno.mkdir(home, { recursive: true });
    await Deno.writeTextFile(join(ws, "notes.md"), NOTES);
    const wsReal = await Deno.realPath(ws);
    line(`workspace:   ${wsReal} (notes.md, .astrid/)`);
    line(`ASTRID_HOME: ${home}`);
    const varArgs = Object.entries(route.vars).flatMap(([k, v]) => ["--var", `${k}=${v}`]);
    const shown = (a: string[]) =>
      a.map((x) => /api_key=/.test(x) ? x.replace(/=.*/, "=[hidden]") : x);
    const initArgs = ["init", "--distro", "astralis", "--group", route.group, ...varArgs, "--yes"];
    line(`$ astrid ${shown(initArgs).join(" ")}`);
    const init = await astrid(initArgs, { cwd: wsReal, home, show: false, check: false });
    line(indent((init.stdout + init.stderr).trim()));
    if (init.code !== 0) {
      throw new DemoFailure(`"astrid init" failed with exit code ${init.code}`);
    }
    if (route.scripted) {
      // The budget layer refuses unpriced models (docs/config.md [pricing]); price the fake one.
      const config = join(home, "etc", "config.toml");
      const price = '\n[pricing."openai/fake-model"]\ninput_per_mtok = 1.0\n' +
        "output_per_mtok = 2.0\n";
      await Deno.mkdir(join(home, "etc"), { recursive: true });
      await Deno.writeTextFile(config, price, { append: true });
      line(`priced the scripted model in ${config}: [pricing."openai/fake-model"] (1 / 2 USD)`);
    }
    await astrid(["start"], { cwd: wsReal, home });
    daemonStarted = true;

    const session = `demo-${crypto.randomUUID().slice(0, 8)}`;
    approver = await startScriptedApprover(home, {
      session,
      workspace: wsReal,
      onApproval: printApproval,
      onError: (m) => line(`error: ${m}`),
    });
    line(
      `scripted approver attached to session ${session} (Allow once for writes and commands)`,
    );

    const turn = await runTurn(session, { cwd: wsReal, home });
    if (approver.answered.length === 0) {
      section("approval");
      line("no approval was asked during the turn");
    }
    if (route.scripted) {
      for (const t of ["read_file", "write_file", "run_shell"]) {
        if (!turn.tools.includes(t)) {
          throw new DemoFailure(
            `The scripted turn did not call "${t}" (calls: ${turn.tools.join(", ") || "none"})`,
          );
        }
      }
      if (approver.answered.length === 0) {
        throw new DemoFailure("The scripted turn asked no approval: expected guided mode to ask");
      }
    }

    section("diff");
    const summaryPath = join(wsReal, "summary.md");
    await astrid(["diff", "--session", session], { cwd: wsReal, home });
    const before = await exists(summaryPath);
    line(
      before
        ? "workspace/summary.md already exists in the workspace"
        : "workspace/summary.md does not exist yet: the write is only in the session's overlay",
    );
    if (route.scripted && before) {
      throw new DemoFailure("summary.md reached the workspace before the commit");
    }

    section("commit");
    await astrid(["commit", "--session", session], { cwd: wsReal, home });
    const after = await exists(summaryPath);
    if (after) {
      line("workspace/summary.md now exists:");
      line(indent(await Deno.readTextFile(summaryPath)));
    } else {
      line("workspace/summary.md does not exist (the model wrote no summary.md)");
    }
    if (route.scripted && !after) {
      throw new DemoFailure("summary.md is not in the workspace after the commit");
    }

    section("audit verify");
    await astrid(["audit", "verify"], { cwd: wsReal, home });

    section("done");
    line(
      `Every step succeeded${route.scripted ? " (scripted model)" : ""}.` +
        (keep ? ` Kept ${root}` : ""),
    );
  } catch (err) {
    endLine();
    const message = err instanceof DemoFailure ? err.message : `${(err as Error)?.stack ?? err}`;
    console.error(`\ndemo failed: ${message}`);
    code = 1;
  } finally {
    await approver?.close().catch(() => {});
    if (daemonStarted) {
      await astrid(["stop"], { cwd: ws, home, check: false, show: false }).catch(() => {});
    }
    await fake?.close().catch(() => {});
    if (keep) {
      if (code !== 0) console.error(`kept ${root}`);
    } else {
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  }
  return code;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
