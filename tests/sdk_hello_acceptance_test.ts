/**
 * The SDK's acceptance path, as an author types it: `astrid capsule new hello --template tool`,
 * `astrid build hello`, `astrid capsule install hello/dist/hello.capsule` (each a real CLI
 * process against a temp `ASTRID_HOME`), then a real daemon booted on that home answers
 * `tool.v1.execute.greet` over the bus with the right greeting, and `tool.v1.request.describe`
 * with the schema derived from the argument class.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bootDaemon } from "../kernel/daemon/mod.ts";
import type { BusMessage, JsonValue } from "../kernel/events/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";
import { messageJson, testBuildCacheDir } from "../sdk/testing/mod.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));

async function astrid(cwd: string, home: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--config", CONFIG, MAIN, ...args],
    cwd,
    env: { ASTRID_HOME: home, ASTRID_BUILD_CACHE: testBuildCacheDir(), NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `astrid ${args.join(" ")} failed:\n${text}`);
  return text;
}

Deno.test("capsule new → build → capsule install → a tool call over the bus answers", async (t) => {
  const root = await Deno.realPath(await Deno.makeTempDir({ dir: "/tmp", prefix: "astrid-acc-" }));
  const home = join(root, "h");
  try {
    await t.step("astrid capsule new hello --template tool scaffolds a capsule", async () => {
      const out = await astrid(root, home, "capsule", "new", "hello", "--template", "tool");
      assert.match(out, /Created capsule "hello"/);
    });
    await t.step("astrid build hello writes hello/dist/hello.capsule", async () => {
      const out = await astrid(root, home, "build", "hello");
      assert.match(out, /Built hello 0\.1\.0 → .*hello\/dist\/hello\.capsule/);
      assert.match(out, /tools: +greet → tool_greet/);
    });
    await t.step("astrid capsule install hello/dist/hello.capsule installs it", async () => {
      await astrid(root, home, "capsule", "install", "hello/dist/hello.capsule");
    });

    const daemon = await bootDaemon({ home, env: { get: () => undefined }, echoLog: false });
    try {
      const ctx = {
        principal: principalId("default"),
        source: { kind: "kernel", name: "test" },
      } as const;
      const next = (pattern: string, trigger: () => Promise<unknown>) =>
        new Promise<BusMessage>((resolve, reject) => {
          const l = daemon.bus.listen(pattern, (m) => {
            l.close();
            resolve(m);
          });
          trigger().catch(reject);
        });
      await t.step("tool.v1.execute.greet answers with the greeting", async () => {
        const msg = await next(
          "tool.v1.execute.greet.result",
          () =>
            daemon.bus.publish("tool.v1.execute.greet", { arguments: { name: "Ada" } }, {
              ctx,
              request_id: "r-1",
            }),
        );
        const value = messageJson<Record<string, JsonValue>>(msg);
        assert.equal(msg.request_id, "r-1");
        assert.equal(value.is_error, false, String(value.content));
        assert.deepEqual(JSON.parse(value.content as string), { message: "Hello, Ada!" });
      });
      await t.step("tool.v1.request.describe answers the derived input schema", async () => {
        const msg = await next(
          "tool.v1.response.describe.hello",
          () => daemon.bus.publish("tool.v1.request.describe", {}, { ctx, request_id: "d-1" }),
        );
        const { tools } = messageJson<{ tools: { input_schema: JsonValue }[] }>(msg);
        assert.deepEqual(tools[0].input_schema, {
          type: "object",
          properties: {
            name: { type: "string", description: "The name of the person to greet." },
            shout: { type: "boolean", description: "Say it loudly.", default: false },
          },
          required: ["name"],
        });
      });
    } finally {
      await daemon.shutdown("test finished");
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
