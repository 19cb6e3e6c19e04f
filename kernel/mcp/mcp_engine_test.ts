import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AuditLog } from "../audit/mod.ts";
import { parseManifest } from "../capsule/mod.ts";
import { systemClock } from "../clock.ts";
import { KeyPair } from "../crypto/mod.ts";
import { EventBus, systemTimers } from "../events/mod.ts";
import { AstridHome } from "../home/mod.ts";
import { MemoryStore } from "../storage/mod.ts";
import { McpCode } from "./errors.ts";
import { type LoadedCapsuleView, McpEngine } from "./mcp_engine.ts";

const SERVER = fileURLToPath(new URL("./_test_server.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));
const ARGS = JSON.stringify(["run", "-A", "--quiet", `--config=${CONFIG}`, SERVER]);

async function engineIn(
  root: string,
  toml: string,
  capsules?: LoadedCapsuleView[],
): Promise<{ engine: McpEngine; bus: EventBus; home: AstridHome; audit: AuditLog }> {
  const home = await AstridHome.open(join(root, "home"));
  await Deno.writeTextFile(join(home.etc, "servers.toml"), toml);
  const bus = new EventBus();
  const audit = new AuditLog(new MemoryStore(), {
    signer: await KeyPair.generate(),
    clock: systemClock,
  });
  const engine = await McpEngine.open({
    home,
    bus,
    audit,
    security: { authorize: () => Promise.resolve({ allowed: true, reservation: null } as never) },
    clock: systemClock,
    timers: systemTimers,
    resolveScope: () => Promise.resolve(undefined),
    ...(capsules === undefined ? {} : {
      capsules: {
        listAll: () => capsules.map((c) => ({ key: c.key, state: "loaded", engines: ["mcp"] })),
        capsule: (key) => capsules.find((c) => c.key === key),
      },
    }),
  });
  return { engine, bus, home, audit };
}

Deno.test("McpEngine.open() without a sandbox refuses servers unless the operator opted in", async () => {
  const root = await Deno.makeTempDir();
  try {
    const { engine } = await engineIn(root, `[servers.t]\ncommand = "deno"\nargs = ${ARGS}\n`);
    try {
      assert.equal(engine.sandbox.available, false);
      const [s] = engine.servers();
      assert.equal(s.state, "refused");
      assert.equal(s.code, McpCode.MCP_SANDBOX_UNAVAILABLE);
      assert.match(s.error!, /no sandbox was given to the engine/);
    } finally {
      await engine.close();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("McpEngine follows servers.toml and the capsules' [[mcp_server]] entries", async (t) => {
  const root = await Deno.makeTempDir();
  const manifest = parseManifest(
    `[package]\nname = "cap"\nversion = "1.0.0"\n\n[capabilities]\nhost_process = ["deno"]\n\n[[mcp_server]]\nname = "c"\ncommand = "deno"\nargs = ${ARGS}\n`,
    { file: join(root, "Capsule.toml") },
  );
  const capsules: LoadedCapsuleView[] = [{
    key: "cap@bob",
    name: "cap",
    scope: { kind: "principal", principal: "bob" },
    record: { dir: root, manifest },
  }];
  const settings = "[settings]\nallow_unsandboxed = true\n";
  const { engine, bus, home } = await engineIn(
    root,
    `${settings}[servers.t]\ncommand = "deno"\nargs = ${ARGS}\n`,
    capsules,
  );
  try {
    await t.step("operator and capsule servers are declared and probed", () => {
      assert.deepEqual(engine.servers().map((s) => [s.id, s.state, s.origin]), [
        ["t", "ready", `${join(home.etc, "servers.toml")}:3`],
        ["c@cap@bob", "ready", 'capsule "cap"'],
      ]);
      assert.deepEqual(engine.host.tools({ principal: "alice" }).map((x) => x.server)[0], "t");
      assert.ok(!engine.host.tools({ principal: "alice" }).some((x) => x.server === "c"));
      assert.ok(engine.host.tools({ principal: "bob" }).some((x) => x.server === "c"));
    });
    await t.step("reloadConfig() adds, changes and removes operator servers", async () => {
      await Deno.writeTextFile(
        join(home.etc, "servers.toml"),
        `${settings}[servers.u]\ncommand = "deno"\nargs = ${ARGS}\ndescription = "new"\n`,
      );
      const after = await engine.reloadConfig();
      assert.deepEqual(after.map((s) => s.id).sort(), ["c@cap@bob", "u"]);
      await Deno.writeTextFile(
        join(home.etc, "servers.toml"),
        `${settings}[servers.u]\ncommand = "deno"\nargs = ${ARGS}\nhash = "blake3:${
          "0".repeat(64)
        }"\n`,
      );
      const changed = (await engine.reloadConfig()).find((s) => s.id === "u")!;
      assert.equal(changed.state, "refused");
      assert.equal(changed.code, McpCode.MCP_HASH_MISMATCH);
    });
    await t.step("an unloaded capsule's servers go after capsules_loaded", async () => {
      capsules.length = 0;
      await bus.publish("astrid.v1.capsules_loaded", { capsules: [] }, {
        ctx: { principal: "default" as never, source: { kind: "kernel", name: "daemon" } },
      });
      await engine.syncCapsules();
      assert.deepEqual(engine.servers().map((s) => s.id), ["u"]);
    });
  } finally {
    await engine.close();
    bus.close();
    await Deno.remove(root, { recursive: true });
  }
});
