import assert from "node:assert/strict";
import type { BusMessage } from "../events/mod.ts";
import { principalId } from "../identity/mod.ts";
import { HostStatus } from "../../host_abi/mod.ts";
import {
  decodeInterceptorReply,
  decodeToolReply,
  describePayload,
  invocationContext,
  invocationPayload,
  toolRequestId,
  toolResultPayload,
} from "./capsule_dispatch.ts";
import { CapsuleCode, CapsuleError } from "./errors.ts";
import { parseManifest } from "./manifest_parser.ts";

function msg(partial: Partial<BusMessage> = {}): BusMessage {
  return {
    id: "b-1",
    topic: "tool.v1.execute.search",
    payload: { kind: "json", value: { arguments: { q: "x" }, session: "s1", workspace_id: "w1" } },
    size: 10,
    principal: principalId("alice"),
    source: { kind: "capsule", name: "orchestrator" },
    timestamp: 1_700_000_000_000,
    end_of_stream: false,
    ...partial,
  };
}

function reply(status: number, body = ""): Uint8Array {
  const b = new TextEncoder().encode(body);
  const out = new Uint8Array(4 + b.length);
  new DataView(out.buffer).setUint32(0, status, true);
  out.set(b, 4);
  return out;
}

const parse = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes));

Deno.test("invocationPayload() carries the envelope, the payload and a tool's arguments", async (t) => {
  await t.step("a JSON payload, with session and workspace lifted", () => {
    assert.deepEqual(parse(invocationPayload(msg({ request_id: "r1", reply_to: "a.b" }))), {
      topic: "tool.v1.execute.search",
      id: "b-1",
      principal: "alice",
      source: "capsule:orchestrator",
      timestamp: 1_700_000_000_000,
      end_of_stream: false,
      request_id: "r1",
      reply_to: "a.b",
      session: "s1",
      workspace_id: "w1",
      payload: { arguments: { q: "x" }, session: "s1", workspace_id: "w1" },
    });
  });
  await t.step("a tool call adds tool and arguments", () => {
    const p = parse(invocationPayload(msg(), { tool: "search" }));
    assert.equal(p.tool, "search");
    assert.deepEqual(p.arguments, { q: "x" });
  });
  await t.step("bytes travel as base64", () => {
    const p = parse(
      invocationPayload(msg({ payload: { kind: "bytes", bytes: new Uint8Array([1, 2, 255]) } })),
    );
    assert.equal(p.payload, "AQL/");
    assert.equal(p.encoding, "base64");
  });
  await t.step("the context takes the message's principal, never a payload field", () => {
    const c = invocationContext(
      msg({
        payload: { kind: "json", value: { principal: "root", session: "s9" } },
        request_id: "r",
      }),
      "search@alice",
    );
    assert.deepEqual(c, {
      principal: "alice",
      capsuleKey: "search@alice",
      topic: "tool.v1.execute.search",
      source: "capsule:orchestrator",
      requestId: "r",
      session: "s9",
    });
  });
});

Deno.test("decodeInterceptorReply() maps a handler's reply to Continue, Final or Deny", async (t) => {
  await t.step("empty reply or empty OK body: continue", () => {
    assert.deepEqual(decodeInterceptorReply(new Uint8Array(0), "c.h"), { action: "continue" });
    assert.deepEqual(decodeInterceptorReply(reply(0), "c.h"), { action: "continue" });
  });
  await t.step("JSON actions", () => {
    assert.deepEqual(
      decodeInterceptorReply(reply(0, '{"action":"continue","payload":{"a":1}}'), "c.h"),
      { action: "continue", payload: { a: 1 } },
    );
    assert.deepEqual(decodeInterceptorReply(reply(0, '{"action":"final","reply":"hi"}'), "c.h"), {
      action: "final",
      reply: "hi",
    });
    assert.deepEqual(decodeInterceptorReply(reply(0, '{"action":"final"}'), "c.h"), {
      action: "final",
    });
    assert.deepEqual(decodeInterceptorReply(reply(0, '{"action":"deny","reason":"no"}'), "c.h"), {
      action: "deny",
      reason: "no",
    });
    assert.deepEqual(
      decodeInterceptorReply(reply(0, '{"action":"continue","payload_base64":"AQI="}'), "c.h"),
      { action: "continue", payload: new Uint8Array([1, 2]) },
    );
  });
  await t.step("status DENIED is a Deny with the body as reason", () => {
    assert.deepEqual(decodeInterceptorReply(reply(HostStatus.DENIED, "policy"), "c.h"), {
      action: "deny",
      reason: "policy",
    });
    assert.deepEqual(decodeInterceptorReply(reply(HostStatus.DENIED), "c.h"), {
      action: "deny",
      reason: 'Denied by "c.h"',
    });
  });
  await t.step("anything else fails with CAPSULE_BAD_REPLY naming the handler", () => {
    for (
      const [bytes, re] of [
        [new Uint8Array([1, 2]), /2 byte\(s\) is shorter than the 4-byte status/],
        [reply(HostStatus.INTERNAL, "oops"), /it answered INTERNAL: oops/],
        [reply(0, "not json"), /the body is not JSON/],
        [reply(0, "[1]"), /not a JSON object/],
        [reply(0, '{"action":"maybe"}'), /unknown action "maybe"/],
        [reply(0, '{"action":"deny"}'), /a deny needs a non-empty "reason"/],
      ] as const
    ) {
      assert.throws(() => decodeInterceptorReply(bytes, "guard.check"), (err: unknown) => {
        assert.ok(err instanceof CapsuleError);
        assert.equal(err.code, CapsuleCode.CAPSULE_BAD_REPLY);
        assert.match(err.message, /^Handler "guard\.check" gave a malformed reply: /);
        assert.match(err.message, re);
        return true;
      });
    }
  });
});

Deno.test("Tool replies become result payloads correlated by request_id", async (t) => {
  await t.step("OK: the body's text is the content", () => {
    assert.deepEqual(decodeToolReply(reply(0, "42 results"), "s.t"), {
      isError: false,
      content: "42 results",
    });
  });
  await t.step("another status: an error result with its name", () => {
    assert.deepEqual(decodeToolReply(reply(HostStatus.INVALID_ARGUMENT, "q missing"), "s.t"), {
      isError: true,
      content: "q missing",
      code: "INVALID_ARGUMENT",
    });
  });
  await t.step("the result payload copies call_id, session and workspace_id", () => {
    const request = msg({
      payload: { kind: "json", value: { call_id: "c7", session: "s1", workspace_id: "w1" } },
    });
    assert.deepEqual(
      toolResultPayload(request, {
        isError: true,
        content: "bad",
        code: "DENIED",
        tool: "search",
        capsule: "web",
        requestId: "r1",
      }),
      {
        request_id: "r1",
        tool: "search",
        capsule: "web",
        is_error: true,
        content: "bad",
        error: { code: "DENIED", message: "bad" },
        call_id: "c7",
        session: "s1",
        workspace_id: "w1",
      },
    );
  });
  await t.step("request_id: the envelope's, else the payload's, else the message id", () => {
    assert.equal(toolRequestId(msg({ request_id: "env" })), "env");
    assert.equal(
      toolRequestId(msg({ payload: { kind: "json", value: { request_id: "pay" } } })),
      "pay",
    );
    assert.equal(toolRequestId(msg({ payload: { kind: "json", value: {} } })), "b-1");
  });
});

Deno.test("describePayload() lists a capsule's tools from its manifest", () => {
  const m = parseManifest(
    `[package]\nname = "web"\nversion = "1.0.0"\n[wasm]\n[[tool]]\nname = "search"\ndescription = "Searches"\n`,
    { file: "Capsule.toml" },
  );
  assert.deepEqual(describePayload(msg({ request_id: "d1" }), "web", m.tool), {
    capsule: "web",
    tools: [{
      name: "search",
      description: "Searches",
      input_schema: { type: "object", properties: {} },
    }],
    request_id: "d1",
    session: "s1",
  });
});
