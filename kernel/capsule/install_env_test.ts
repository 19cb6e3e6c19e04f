import assert from "node:assert/strict";
import { join } from "node:path";
import { AstridHome } from "../home/mod.ts";
import { principalId } from "../identity/mod.ts";
import {
  capsuleEnvPath,
  envServesEveryone,
  readCapsuleEnv,
  writeCapsuleEnv,
} from "./install_env.ts";
import { parseManifest } from "./manifest_parser.ts";

const alice = principalId("alice");
const operator = principalId("default");

Deno.test("envServesEveryone() is true only for the operator's user-scope install", () => {
  assert.equal(envServesEveryone({ principal: operator, scope: "user" }), true);
  assert.equal(envServesEveryone({ principal: operator, scope: "workspace" }), false);
  assert.equal(envServesEveryone({ principal: alice, scope: "user" }), false);
  assert.equal(envServesEveryone({ principal: alice, scope: "workspace" }), false);
});

Deno.test("writeCapsuleEnv() stores values 0600 in the installing principal's env file", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "astrid-install-env-" });
  try {
    const home = await AstridHome.open(root);
    await home.ensurePrincipal(operator);
    const manifest = parseManifest(
      `[package]
name = "app"
version = "0.1.0"
[env]
API_KEY = { type = "secret" }
MODEL = { type = "text", default = "m0" }
`,
      { file: "app/Capsule.toml" },
    );

    await t.step("the operator's file is where the host ABI reads the operator layer", async () => {
      const path = await writeCapsuleEnv(home, {
        principal: operator,
        manifest,
        values: { API_KEY: "sk-op", MODEL: "m1" },
      });
      assert.equal(path, join(root, "home", "default", ".config", "env", "app.env.json"));
      assert.equal(path, capsuleEnvPath(home, { principal: operator, capsule: "app" }));
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
      assert.deepEqual(await readCapsuleEnv(home, { principal: operator, capsule: "app" }), {
        API_KEY: "sk-op",
        MODEL: "m1",
      });
    });

    await t.step("another principal's own file stays empty", async () => {
      assert.deepEqual(await readCapsuleEnv(home, { principal: alice, capsule: "app" }), {});
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
