import assert from "node:assert/strict";
import type { EventFrame, JsonValue } from "../../kernel/daemon/mod.ts";
import { linkEvent } from "./session_link.ts";

function frame(topic: string, payload: JsonValue, extra: Partial<EventFrame> = {}): EventFrame {
  return {
    type: "event",
    subscription: "s-1",
    id: "b-1",
    topic,
    principal: "default",
    source: "capsule:orchestrator",
    timestamp: 0,
    end_of_stream: false,
    payload,
    ...extra,
  };
}

Deno.test("linkEvent() reads the user-turn topics of docs/bus_topics.md", async (t) => {
  await t.step("deltas, tool activity and the response carry the turn's request id", () => {
    assert.deepEqual(
      linkEvent(frame("agent.v1.stream.delta", { session: "s", request_id: "r1", text: "Hi" })),
      { type: "delta", requestId: "r1", text: "Hi" },
    );
    assert.deepEqual(
      linkEvent(
        frame(
          "agent.v1.tool_call",
          { call_id: "c1", tool: "read_file", arguments: { path: "a" } },
          {
            request_id: "r2",
          },
        ),
      ),
      {
        type: "tool_call",
        requestId: "r2",
        callId: "c1",
        tool: "read_file",
        arguments: { path: "a" },
      },
    );
    assert.deepEqual(
      linkEvent(
        frame("agent.v1.tool_result", { call_id: "c1", tool: "t", is_error: true, content: "no" }),
      ),
      { type: "tool_result", callId: "c1", tool: "t", isError: true, content: "no" },
    );
    assert.deepEqual(
      linkEvent(frame("agent.v1.response", {
        request_id: "r1",
        text: "",
        error: { kind: "budget_exhausted", message: "Over budget" },
      })),
      {
        type: "response",
        requestId: "r1",
        text: "",
        error: { kind: "budget_exhausted", message: "Over budget" },
      },
    );
  });
  await t.step("approvals, their settlement and unanswerable notices", () => {
    const e = linkEvent(frame("astrid.v1.approval", {
      id: "a1",
      summary: "write /w/a",
      resource: "fs:/w/a",
      kind: "fs.write",
      answers: ["allow_once", "deny"],
      widening: true,
    }));
    assert.equal(e?.type, "approval");
    assert.deepEqual(
      linkEvent(frame("astrid.v1.approval.response.a1", { answer: "deny", withdrawn: true }, {
        source: "kernel:approvals",
      })),
      {
        type: "approval_settled",
        id: "a1",
        answer: "deny",
        withdrawn: true,
        by: "kernel:approvals",
      },
    );
    assert.equal(
      linkEvent(frame("astrid.v1.approval.unanswerable", { reason: "No human" }))?.type,
      "unanswerable",
    );
  });
  await t.step("elicitations and their answers are told apart", () => {
    const e = linkEvent(frame("astrid.v1.elicit.e1", {
      id: "e1",
      capsule: "weather",
      message: "Which city?",
      type: "select",
      options: ["Oslo", "Rome"],
    }));
    assert.deepEqual(e, {
      type: "elicit",
      request: {
        id: "e1",
        capsule: "weather",
        message: "Which city?",
        type: "select",
        options: ["Oslo", "Rome"],
      },
    });
    assert.deepEqual(
      linkEvent(frame("astrid.v1.elicit.response.e1", { value: "Oslo" }, {
        source: "client:c-2",
      })),
      { type: "elicit_settled", id: "e1", by: "client:c-2" },
    );
  });
  await t.step("anything else is ignored", () => {
    assert.equal(linkEvent(frame("agent.v1.something_new", {})), undefined);
  });
});
