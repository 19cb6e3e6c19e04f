import assert from "node:assert/strict";
import type { AuditInput } from "../kernel/audit/mod.ts";
import type { HostCall, InvocationContext } from "../kernel/capsule/engine/wasm/mod.ts";
import { parseManifest } from "../kernel/capsule/mod.ts";
import { ManualClock } from "../kernel/clock.ts";
import { MemoryStore } from "../kernel/storage/mod.ts";
import { createHostHandler } from "./dispatcher.ts";
import { decodeReply, decodeText, encodeFields } from "./encoding.ts";
import { HandleTable } from "./handle_table.ts";
import { defineHostFunction, type HostCallContext, type HostFunctionRow } from "./host_function.ts";
import { createHostServices, scopedKv } from "./host_services.ts";
import { DEFAULT_HOST_LIMITS } from "./limits.ts";
import { HostCallError, HostStatus } from "./status.ts";
import { HOST_TABLE } from "./table.ts";

interface Rig {
  audits: AuditInput[];
  steps: string[];
  context: (call: HostCall) => HostCallContext;
}

function rig(capabilities: string): Rig {
  const manifest = parseManifest(
    `[package]\nname = "cap"\nversion = "0.1.0"\n\n[capabilities]\n${capabilities}\n`,
    { file: "cap/Capsule.toml" },
  );
  const audits: AuditInput[] = [];
  const store = new MemoryStore();
  const unused = () => {
    throw new Error("not used by this test");
  };
  return {
    audits,
    steps: [],
    context: (call) => ({
      principal: call.context.principal,
      capsule: call.capsule,
      manifest,
      exportName: call.exportName,
      session: { id: "s1", workspaceId: "w1", workspaceRoot: "/nonexistent" },
      requestId: call.context.requestId,
      signal: call.signal,
      clock: new ManualClock(5),
      limits: DEFAULT_HOST_LIMITS,
      services: createHostServices({
        vfs: unused,
        kv: scopedKv(store, call.context.principal, call.capsule),
        bus: { ctx: undefined as never, publish: unused, request: unused, subscribe: unused },
        security: { authorize: unused },
        audit: {
          append: (input) => {
            audits.push(input);
            return Promise.resolve();
          },
        },
        handles: new HandleTable(),
      }),
    }),
  };
}

function hostCall(principal = "alice"): HostCall {
  return {
    capsule: "cap",
    exportName: "handle",
    context: { principal, requestId: "r1" } as InvocationContext,
    signal: new AbortController().signal,
  };
}

async function reply(bytes: Promise<Uint8Array>): Promise<[string, string]> {
  const { status, body } = decodeReply(await bytes);
  return [Object.entries(HostStatus).find(([, c]) => c === status)![0], decodeText(body)];
}

function traced(steps: string[], options: { fail?: unknown } = {}): HostFunctionRow {
  return defineHostFunction<{ v: string }>({
    name: "kv_get",
    subsystem: "kv",
    doc: "Test row",
    capabilities: ["kv"],
    parse: (req) => {
      steps.push("parse");
      const v = req.string("v");
      req.end();
      return { v };
    },
    gate: () => {
      steps.push("gate");
      return { capability: "kv" };
    },
    run: ({ v }) => {
      steps.push("run");
      if (options.fail !== undefined) throw options.fail;
      return Promise.resolve(v.toUpperCase());
    },
  });
}

Deno.test("createHostHandler() parses, gates, then runs the row", async () => {
  const r = rig("kv = true");
  const handler = createHostHandler(r.context, { table: [traced(r.steps)] });
  assert.deepEqual(await reply(handler("kv_get", encodeFields(["hi"]), hostCall())), ["OK", "HI"]);
  assert.deepEqual(r.steps, ["parse", "gate", "run"]);
});

Deno.test("createHostHandler() denies and audits what the manifest does not declare", async () => {
  const r = rig("");
  const handler = createHostHandler(r.context, { table: [traced(r.steps)] });
  const [status, message] = await reply(handler("kv_get", encodeFields(["hi"]), hostCall()));
  assert.equal(status, "DENIED");
  assert.match(message, /^Capsule "cap" may not use kv: /);
  assert.deepEqual(r.steps, ["parse", "gate"], "run never happens");
  assert.equal(r.audits.length, 1);
  const entry = r.audits[0];
  assert.equal(entry.principal, "alice");
  assert.equal(entry.action, "host.kv_get");
  assert.equal(entry.resource, "capsule:cap");
  assert.equal(entry.decision, "denied");
  assert.equal(entry.layer, "manifest");
  assert.equal(entry.decider, "manifest");
  assert.equal(entry.rule, "kv");
  assert.equal(entry.session, "s1");
  assert.deepEqual(JSON.parse(entry.details!), {
    capsule: "cap",
    function: "kv_get",
    capability: "kv",
    request_id: "r1",
  });
});

Deno.test("createHostHandler() answers a malformed request INVALID_ARGUMENT before the gate", async () => {
  const r = rig("");
  const handler = createHostHandler(r.context, { table: [traced(r.steps)] });
  assert.deepEqual(await reply(handler("kv_get", encodeFields(["a", "b"]), hostCall())), [
    "INVALID_ARGUMENT",
    "Unexpected field 2: the request has 2 fields, expected 1",
  ]);
  assert.deepEqual(r.audits, []);
});

Deno.test("createHostHandler() answers unknown and pending functions UNSUPPORTED", async () => {
  const r = rig("");
  const handler = createHostHandler(r.context);
  assert.deepEqual(await reply(handler("fs_chmod", new Uint8Array(0), hostCall())), [
    "UNSUPPORTED",
    'Host function "astrid.fs_chmod" is not supported by this kernel',
  ]);
  const pending = ["ipc_publish", "process_spawn"].filter((n) =>
    !HOST_TABLE.some((row) => row.name === n)
  );
  for (const name of pending) {
    assert.equal((await reply(handler(name, new Uint8Array(0), hostCall())))[0], "UNSUPPORTED");
  }
});

Deno.test("createHostHandler() turns a HostCallError into its status", async () => {
  const r = rig("kv = true");
  const fail = new HostCallError(HostStatus.CONFLICT, 'Key "a" changed meanwhile');
  const handler = createHostHandler(r.context, { table: [traced(r.steps, { fail })] });
  assert.deepEqual(await reply(handler("kv_get", encodeFields(["a"]), hostCall())), [
    "CONFLICT",
    'Key "a" changed meanwhile',
  ]);
});

Deno.test("createHostHandler() answers INTERNAL without details and reports them", async () => {
  const r = rig("kv = true");
  const reported: [unknown, string, unknown][] = [];
  const handler = createHostHandler(r.context, {
    table: [traced(r.steps, { fail: new Error("secret /home/x/.key failed") })],
    onError: (error, fn, call) => reported.push([error, fn, call]),
  });
  const [status, message] = await reply(handler("kv_get", encodeFields(["a"]), hostCall()));
  assert.equal(status, "INTERNAL");
  assert.equal(
    message,
    'Host function "astrid.kv_get" failed unexpectedly; details are in the kernel log',
  );
  assert.equal(reported.length, 1);
  assert.match(String(reported[0][0]), /secret/);
  assert.deepEqual(reported[0].slice(1), ["kv_get", {
    capsule: "cap",
    principal: "alice",
    requestId: "r1",
  }]);
});

Deno.test("createHostHandler() takes the principal from the invocation context", async () => {
  const r = rig("kv = true");
  const handler = createHostHandler(r.context);
  const ok = async (p: Promise<Uint8Array>) => assert.equal((await reply(p))[0], "OK");
  await ok(handler("kv_set", encodeFields(["k", "alice's"]), hostCall("alice")));
  await ok(handler("kv_set", encodeFields(["k", "bob's"]), hostCall("bob")));
  assert.deepEqual(await reply(handler("kv_get", encodeFields(["k"]), hostCall("alice"))), [
    "OK",
    "alice's",
  ]);
  assert.deepEqual(await reply(handler("kv_get", encodeFields(["k"]), hostCall("bob"))), [
    "OK",
    "bob's",
  ]);
});

Deno.test("createHostHandler() denies every call of a capsule whose manifest cannot compile", async () => {
  const r = rig(`kv = true\nfs_read = ["workspace://a**"]`);
  const handler = createHostHandler(r.context, { table: [traced(r.steps)] });
  const [status, message] = await reply(handler("kv_get", encodeFields(["a"]), hostCall()));
  assert.equal(status, "DENIED");
  assert.match(
    message,
    /^Capsule "cap": capabilities\.fs_read entry "workspace:\/\/a\*\*" is not a valid pattern: /,
  );
  assert.deepEqual(r.steps, ["parse", "gate"]);
});
