import assert from "node:assert/strict";
import { AstridError } from "../errors.ts";
import { type McpElicitQuestion, relayElicitation } from "./elicit_relay.ts";

const scope = {
  principal: "default",
  session: "s1",
  capsule: "mcp:fs",
  signal: new AbortController().signal,
  expiresAt: 0,
};

function elicitor(answers: (string | boolean | Error)[]) {
  const asked: McpElicitQuestion[] = [];
  return {
    asked,
    elicit(q: McpElicitQuestion) {
      asked.push(q);
      const a = answers.shift();
      if (a === undefined) return Promise.reject(new Error("no answer"));
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
    },
  };
}

Deno.test("relayElicitation()", async (t) => {
  await t.step("asks a form without fields as one yes/no question", async () => {
    const e = elicitor([true]);
    const r = await relayElicitation(
      { message: "Delete it?", requestedSchema: { type: "object", properties: {} } },
      e,
      scope,
    );
    assert.deepEqual(r, { action: "accept", content: {} });
    assert.deepEqual(e.asked, [{ message: "mcp:fs asks: Delete it?", type: "confirm" }]);
    assert.deepEqual(
      await relayElicitation(
        { message: "x", requestedSchema: {} } as never,
        elicitor([false]),
        scope,
      ),
      {
        action: "decline",
      },
    );
  });
  await t.step("asks one question per field, typed by its schema", async () => {
    const e = elicitor(["ada", "blue", "42", true]);
    const r = await relayElicitation(
      {
        message: "Who are you?",
        requestedSchema: {
          type: "object",
          properties: {
            name: { type: "string", title: "Name" },
            colour: { type: "string", enum: ["red", "blue"] },
            age: { type: "integer", description: "Years" },
            ok: { type: "boolean" },
          },
        },
      },
      e,
      scope,
    );
    assert.deepEqual(r, {
      action: "accept",
      content: { name: "ada", colour: "blue", age: 42, ok: true },
    });
    assert.deepEqual(e.asked.map((q) => q.type), ["text", "select", "text", "confirm"]);
    assert.equal(e.asked[0].message, "mcp:fs asks: Who are you?\nName");
    assert.deepEqual(e.asked[1].options, ["red", "blue"]);
    assert.equal(e.asked[2].message, "age — Years");
  });
  await t.step("declines when the user declines, cancels when nobody answers", async () => {
    const declined = new AstridError("CANCELLED", "The user declined to answer");
    const form = {
      message: "?",
      requestedSchema: { type: "object", properties: { a: { type: "string" } } },
    };
    assert.deepEqual(await relayElicitation(form as never, elicitor([declined]), scope), {
      action: "decline",
    });
    assert.deepEqual(await relayElicitation(form as never, elicitor([]), scope), {
      action: "cancel",
    });
  });
  await t.step("cancels on a number that is not one", async () => {
    const form = {
      message: "?",
      requestedSchema: { type: "object", properties: { n: { type: "number" } } },
    };
    assert.deepEqual(await relayElicitation(form as never, elicitor(["many"]), scope), {
      action: "cancel",
    });
  });
  await t.step("declines URL mode", async () => {
    const r = await relayElicitation(
      { mode: "url", message: "Log in", url: "https://x", elicitationId: "1" } as never,
      elicitor([true]),
      scope,
    );
    assert.deepEqual(r, { action: "decline" });
  });
});
