import assert from "node:assert/strict";
import { join } from "node:path";
import { parseManifest } from "../kernel/capsule/mod.ts";
import { type BusMessage, EventBus, type JsonValue } from "../kernel/events/mod.ts";
import type { PrincipalId } from "../kernel/identity/mod.ts";
import { encodeFields, RequestReader } from "./encoding.ts";
import type { HostCallContext } from "./host_function.ts";
import {
  BusElicitor,
  elicit,
  type ElicitQuestion,
  EnvFileConfig,
  envFileLayers,
  envFilePath,
  MAX_ELICIT_TIMEOUT_MS,
} from "./lifecycle.ts";
import { HostCallError, HostStatus } from "./status.ts";

const status = (s: HostStatus) => (e: unknown) => e instanceof HostCallError && e.status === s;
const alice = "alice" as PrincipalId;

/** A bus, an elicitor, and a frontend that answers each question with `answers(question)`. */
function fixture(answers: (q: Record<string, JsonValue>) => [PrincipalId, JsonValue][]) {
  const bus = new EventBus();
  const questions: BusMessage[] = [];
  const notices: BusMessage[] = [];
  bus.listen("astrid.v1.elicit.*", (m) => {
    if (m.topic.startsWith("astrid.v1.elicit.response.")) {
      if (m.source.kind === "kernel") notices.push(m);
      return;
    }
    questions.push(m);
    const q = (m.payload as { value: Record<string, JsonValue> }).value;
    queueMicrotask(async () => {
      for (const [principal, body] of answers(q)) {
        await bus.publish(`astrid.v1.elicit.response.${q.id}`, body, {
          ctx: { principal, source: { kind: "client", name: "c-1" } },
        });
      }
    });
  });
  const elicitor = new BusElicitor(bus, { reach: () => ({ interactive: 1 }), now: () => 7 });
  const scope = (signal = new AbortController().signal) => ({
    principal: alice,
    session: "s1",
    capsule: "app",
    signal,
    expiresAt: 99,
  });
  return { bus, elicitor, questions, notices, scope };
}

const text: ElicitQuestion = { message: "City?", type: "text" };

Deno.test("BusElicitor.elicit() takes the first valid answer of the asking principal and session", async () => {
  const { elicitor, questions, scope } = fixture(() => [
    ["mallory" as PrincipalId, { value: "forged" }],
    [alice, { value: "other session", session: "s2" }],
    [alice, { value: 5 }],
    [alice, { value: "Oslo", session: "s1" }],
  ]);
  assert.equal(await elicitor.elicit(text, scope()), "Oslo");
  const q = (questions[0].payload as { value: Record<string, JsonValue> }).value;
  assert.match(q.id as string, /^[0-9a-f]{32}$/);
  assert.deepEqual({ ...q, id: "x" }, {
    id: "x",
    capsule: "app",
    session: "s1",
    message: "City?",
    type: "text",
    requested_at: 7,
    expires_at: 99,
  });
  assert.equal(questions[0].principal, "alice");
  assert.equal(questions[0].topic, `astrid.v1.elicit.${q.id}`);
});

Deno.test("BusElicitor.elicit() checks select choices and confirm booleans", async () => {
  const select = fixture(() => [[alice, { value: "c" }], [alice, { value: "b" }]]);
  assert.equal(
    await select.elicitor.elicit(
      { message: "?", type: "select", options: ["a", "b"] },
      select.scope(),
    ),
    "b",
  );
  const confirm = fixture(() => [[alice, { value: "yes" }], [alice, { value: false }]]);
  assert.equal(
    await confirm.elicitor.elicit({ message: "?", type: "confirm" }, confirm.scope()),
    false,
  );
});

Deno.test("BusElicitor.elicit() answers CANCELLED when the user declines", async () => {
  const { elicitor, scope, notices } = fixture(() => [[alice, { cancelled: true, reason: "no" }]]);
  await assert.rejects(
    elicitor.elicit(text, scope()),
    (e) => status(HostStatus.CANCELLED)(e) && /declined to answer: no/.test((e as Error).message),
  );
  assert.equal(notices.length, 0, "an answered question needs no withdrawal");
});

Deno.test("BusElicitor.elicit() withdraws the question when its signal aborts", async () => {
  const { elicitor, scope, notices } = fixture(() => []);
  const stop = new AbortController();
  const asked = elicitor.elicit(text, scope(stop.signal));
  await new Promise((r) => queueMicrotask(() => r(undefined)));
  stop.abort(new Error("gone"));
  await assert.rejects(asked, /gone/);
  for (let i = 0; i < 10 && notices.length === 0; i++) await Promise.resolve();
  assert.deepEqual((notices[0].payload as { value: unknown }).value, {
    cancelled: true,
    reason: "withdrawn",
  });
});

Deno.test("BusElicitor.elicit() is UNAVAILABLE with no interactive frontend", async () => {
  const bus = new EventBus();
  const published: BusMessage[] = [];
  bus.listen("astrid.v1.*", (m) => void published.push(m));
  const elicitor = new BusElicitor(bus, { reach: () => ({ interactive: 0 }) });
  await assert.rejects(
    elicitor.elicit(text, {
      principal: alice,
      session: "s1",
      capsule: "app",
      signal: new AbortController().signal,
      expiresAt: 0,
    }),
    status(HostStatus.UNAVAILABLE),
  );
  assert.equal(published.length, 0);
});

Deno.test("elicit.parse() checks the question and its timeout", () => {
  const call = {} as HostCallContext;
  const parse = (request: string) =>
    elicit.parse(new RequestReader(encodeFields([request])), call) as {
      question: ElicitQuestion;
      timeoutMs: number;
    };
  assert.deepEqual(parse('{"message":"a"}'), {
    question: { message: "a", type: "text" },
    timeoutMs: 300_000,
  });
  assert.deepEqual(parse('{"message":"a","type":"select","options":["x"],"timeout_ms":5}'), {
    question: { message: "a", type: "select", options: ["x"] },
    timeoutMs: 5,
  });
  for (
    const bad of [
      "[]",
      '{"message":""}',
      '{"message":"a","type":"voice"}',
      '{"message":"a","type":"select"}',
      '{"message":"a","options":["x"]}',
      '{"message":"a","type":"secret","default":"x"}',
      `{"message":"a","timeout_ms":${MAX_ELICIT_TIMEOUT_MS + 1}}`,
      '{"message":"a","timeout_ms":0}',
    ]
  ) {
    assert.throws(() => parse(bad), status(HostStatus.INVALID_ARGUMENT), bad);
  }
});

Deno.test("EnvFileConfig reads values and defaults, and keeps secrets out of get()", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "astrid-env-" });
  try {
    const manifest = parseManifest(
      `[package]
name = "app"
version = "0.1.0"
[env]
KEY = { type = "secret" }
MODEL = { type = "text", default = "m1" }
TAGS = { type = "array" }
`,
      { file: "app/Capsule.toml" },
    );
    const path = envFilePath(root, "alice", "app");
    assert.equal(path, join(root, "home", "alice", ".config", "env", "app.env.json"));
    const env = new EnvFileConfig(path, manifest.env);

    await t.step("no file: defaults only", async () => {
      assert.equal(await env.get("MODEL"), "m1");
      assert.equal(await env.get("TAGS"), undefined);
      assert.equal(await env.hasSecret("KEY"), false);
    });

    await Deno.mkdir(join(root, "home", "alice", ".config", "env"), { recursive: true });
    await t.step("values from the file; a secret only through secret()", async () => {
      await Deno.writeTextFile(path, JSON.stringify({ KEY: "s3cret", MODEL: "m2", TAGS: ["a"] }));
      assert.equal(await env.get("MODEL"), "m2");
      assert.deepEqual(await env.get("TAGS"), ["a"]);
      assert.equal(await env.get("KEY"), undefined);
      assert.equal(await env.hasSecret("KEY"), true);
      assert.equal(await env.secret("KEY"), "s3cret");
      assert.equal(await env.secret("MODEL"), undefined);
      assert.equal(await env.get("UNDECLARED"), undefined);
    });

    await t.step("an empty secret is not set", async () => {
      await Deno.writeTextFile(path, JSON.stringify({ KEY: "" }));
      assert.equal(await env.hasSecret("KEY"), false);
    });

    await t.step("a malformed file fails without quoting its content", async () => {
      await Deno.writeTextFile(path, `{"KEY": "s3cret-leak`);
      await assert.rejects(
        env.get("MODEL"),
        (e) =>
          !(e as Error).message.includes("s3cret") && /one JSON object/.test((e as Error).message),
      );
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("envFileLayers() puts the operator's file under another principal's only for system-scope capsules", () => {
  const own = (p: string) => join("/h", "home", p, ".config", "env", "app.env.json");
  assert.deepEqual(
    envFileLayers("/h", { principal: "alice", capsule: "app", operatorInstalled: true }),
    [own("alice"), own("default")],
  );
  assert.deepEqual(
    envFileLayers("/h", { principal: "default", capsule: "app", operatorInstalled: true }),
    [own("default")],
  );
  assert.deepEqual(
    envFileLayers("/h", { principal: "alice", capsule: "app", operatorInstalled: false }),
    [own("alice")],
  );
});

Deno.test("EnvFileConfig layers the principal's values over the operator's over defaults", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "astrid-env-layers-" });
  try {
    const manifest = parseManifest(
      `[package]
name = "app"
version = "0.1.0"
[env]
API_KEY = { type = "secret" }
BASE_URL = { type = "text", default = "https://example.invalid/v1" }
MODEL = { type = "text", default = "m0" }
TAGS = { type = "array" }
`,
      { file: "app/Capsule.toml" },
    );
    const write = async (principal: string, values: Record<string, unknown>) => {
      await Deno.mkdir(join(root, "home", principal, ".config", "env"), { recursive: true });
      await Deno.writeTextFile(envFilePath(root, principal, "app"), JSON.stringify(values));
    };
    const layers = envFileLayers(root, {
      principal: "alice",
      capsule: "app",
      operatorInstalled: true,
    });
    const alice = new EnvFileConfig(layers, manifest.env);

    await t.step("the operator's values serve a principal with no file of its own", async () => {
      await write("default", { API_KEY: "sk-op", BASE_URL: "http://op/v1", TAGS: ["x"] });
      assert.equal(await alice.get("BASE_URL"), "http://op/v1");
      assert.deepEqual(await alice.get("TAGS"), ["x"]);
      assert.equal(await alice.get("MODEL"), "m0");
      assert.equal(await alice.secret("API_KEY"), "sk-op");
      assert.equal(await alice.hasSecret("API_KEY"), true);
      assert.equal(await alice.get("API_KEY"), undefined, "a secret never comes through get()");
    });

    await t.step("the principal's own value wins field by field; its secret too", async () => {
      await write("alice", { MODEL: "m-alice", API_KEY: "sk-alice" });
      assert.equal(await alice.get("MODEL"), "m-alice");
      assert.equal(await alice.get("BASE_URL"), "http://op/v1");
      assert.equal(await alice.secret("API_KEY"), "sk-alice");
    });

    await t.step(
      "a principal with a file of its own never gets the operator's secrets",
      async () => {
        await write("alice", { BASE_URL: "http://alice.example/v1" });
        assert.equal(await alice.get("BASE_URL"), "http://alice.example/v1");
        assert.equal(await alice.get("MODEL"), "m0");
        assert.equal(await alice.secret("API_KEY"), undefined, "sk-op must not reach alice's URL");
        assert.equal(await alice.hasSecret("API_KEY"), false);
      },
    );

    await t.step(
      "a principal- or workspace-scope capsule reads only its principal's file",
      async () => {
        await Deno.remove(envFilePath(root, "alice", "app"));
        const own = new EnvFileConfig(
          envFileLayers(root, { principal: "alice", capsule: "app", operatorInstalled: false }),
          manifest.env,
        );
        assert.equal(await own.get("BASE_URL"), "https://example.invalid/v1");
        assert.equal(await own.hasSecret("API_KEY"), false);
      },
    );

    await t.step("a malformed operator file is an error, not silently the defaults", async () => {
      await Deno.writeTextFile(envFilePath(root, "default", "app"), "[1]");
      await assert.rejects(alice.get("MODEL"), /one JSON object/);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
