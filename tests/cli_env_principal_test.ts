/**
 * Proves that the operator's `[env]` values serve every principal, through the real CLI: the
 * real `main.ts` in child processes against a real daemon in a temporary `ASTRID_HOME`. The
 * operator runs `astrid init` (as `default`) with a two-capsule distro — the real `orchestrator`
 * (`PROVIDER = "openai"`) and a loopback copy of the real `provider-openai-compat` whose
 * `API_KEY` and `BASE_URL` point at the OpenAI fake (`echo.json`, which demands the key) — and
 * then `astrid -p --principal alice` is answered through the operator's provider, key and model,
 * although alice has no `[env]` file of her own. A value alice does store wins over the
 * operator's for her alone. Every child runs under a hard kill deadline.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildCapsule } from "../sdk/build/mod.ts";
import { testBuildCacheDir } from "../sdk/testing/mod.ts";
import { startOpenAiFake } from "./fakes/mod.ts";
import { setCapsuleEnv } from "./fixtures/capsule_env.ts";
import { copyCapsule, loopbackCopy } from "./fixtures/loopback_capsule.ts";
import { runAstrid } from "./fixtures/run_astrid.ts";

const KEY = "sk-operator-env-0123456789";

/** Builds `dir` (cached by content), so `astrid init` finds `dist/<name>.capsule` beside it. */
async function built(dir: string): Promise<void> {
  await buildCapsule(dir, { cacheDir: testBuildCacheDir(), outDir: join(dir, "dist") });
}

const DISTRO = `schema_version = 1

[distro]
name = "operator-env"
version = "0.1.0"
description = "The orchestrator and an OpenAI-compatible provider on loopback"

[variables]
openai_api_key = { description = "API key", secret = true, required = true }
openai_base_url = { description = "Base URL" }

[[group]]
name = "openai"
description = "An OpenAI-compatible endpoint"
default = true

[[capsule]]
name = "orchestrator"
source = "orchestrator"
version = "^0.1"
env = { PROVIDER = "openai", MODEL = "fake-model", ASSEMBLE_TIMEOUT_MS = "1", STEP_TIMEOUT_MS = "30000" }

[[capsule]]
name = "provider-openai-compat"
source = "provider-openai-compat"
version = "^0.1"
group = "openai"
env = { API_KEY = "{{ openai_api_key }}", BASE_URL = "{{ openai_base_url }}" }
`;

Deno.test("astrid -p --principal alice is served by the operator's [env] values", async (t) => {
  const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "ae" });
  const work = await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-env-principal-" }));
  const fake = await startOpenAiFake({ script: "echo", apiKey: KEY });
  try {
    const distro = join(work, "distro");
    await built(await copyCapsule("orchestrator", distro));
    await built(await loopbackCopy("provider-openai-compat", distro));
    await Deno.writeTextFile(join(distro, "Distro.toml"), DISTRO);
    const ws = join(work, "ws");
    await Deno.mkdir(ws);

    await t.step("astrid init as the operator stores the values in its own env files", async () => {
      const r = await runAstrid(home, [
        "init",
        "--distro",
        join(distro, "Distro.toml"),
        "--var",
        `openai_api_key=${KEY}`,
        "--var",
        `openai_base_url=${fake.baseUrl}`,
      ], { cwd: ws });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const env = join(home, "home", "default", ".config", "env");
      const stored = JSON.parse(
        await Deno.readTextFile(join(env, "provider-openai-compat.env.json")),
      );
      assert.equal(stored.API_KEY, KEY);
      assert.equal((await Deno.stat(join(env, "orchestrator.env.json"))).mode! & 0o777, 0o600);
      await assert.rejects(Deno.lstat(join(home, "home", "alice")), Deno.errors.NotFound);
      // The network call and the model call need no human (headless -p) and have a price.
      await Deno.writeTextFile(
        join(home, "etc", "config.toml"),
        '[security]\nmode = "autonomous"\n[pricing."openai/*"]\n' +
          "input_per_mtok = 0.001\noutput_per_mtok = 0.001\n",
      );
      const start = await runAstrid(home, ["start"], { cwd: ws });
      assert.equal(start.code, 0, start.stderr);
    });

    await t.step("alice, with no values of her own, gets the operator's provider", async () => {
      const r = await runAstrid(home, ["-p", "--principal", "alice", "hello from alice"], {
        cwd: ws,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "echo: hello from alice\n");
      assert.equal(fake.count("/v1/chat/completions"), 1, "the operator's BASE_URL");
      const req = fake.requests.at(-1)!;
      assert.equal(req.status, 200, "the operator's API_KEY (the fake refuses any other)");
      assert.equal((req.body as { model: string }).model, "fake-model", "the operator's MODEL");
      await assert.rejects(
        Deno.lstat(join(home, "home", "alice", ".config", "env", "orchestrator.env.json")),
        Deno.errors.NotFound,
      );
    });

    await t.step("a value alice stores wins for her alone", async () => {
      await setCapsuleEnv({ home, capsule: "orchestrator", principal: "alice" }, {
        MODEL: "alice-model",
      });
      const alice = await runAstrid(home, ["-p", "--principal", "alice", "mine"], { cwd: ws });
      assert.equal(alice.code, 0, alice.stderr);
      assert.equal(alice.stdout, "echo: mine\n");
      assert.equal((fake.requests.at(-1)!.body as { model: string }).model, "alice-model");
      const bob = await runAstrid(home, ["-p", "--principal", "bob", "and mine"], { cwd: ws });
      assert.equal(bob.code, 0, bob.stderr);
      assert.equal(bob.stdout, "echo: and mine\n");
      assert.equal((fake.requests.at(-1)!.body as { model: string }).model, "fake-model");
    });
  } finally {
    await runAstrid(home, ["stop"], { cwd: work }).catch(() => {});
    const pid = Number.parseInt(
      await Deno.readTextFile(join(home, "run", "system.lock")).catch(() => ""),
      10,
    );
    if (Number.isSafeInteger(pid) && pid > 0) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await fake.close();
    await Deno.remove(home, { recursive: true }).catch(() => {});
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});
