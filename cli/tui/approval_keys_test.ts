import assert from "node:assert/strict";
import { answerKeys, answerLabel, approvalChoices } from "./approval_keys.ts";

const ALL = ["allow_once", "allow_session", "allow_workspace", "allow_always", "deny"];

Deno.test("answerKeys() maps one key per offered answer", async (t) => {
  await t.step("every answer offered", () => {
    assert.deepEqual(answerKeys({ answers: ALL }), {
      o: "allow_once",
      s: "allow_session",
      w: "allow_workspace",
      a: "allow_always",
      d: "deny",
      n: "deny",
    });
    assert.equal(
      approvalChoices({ answers: ALL }),
      "[o] Allow once  [s] Allow session  [w] Allow workspace  [a] Allow always  [d] Deny",
    );
  });
  await t.step("a widening action offers only Allow once and Deny", () => {
    const widening = { answers: ["allow_once", "deny"] };
    assert.deepEqual(answerKeys(widening), { o: "allow_once", d: "deny", n: "deny" });
    assert.equal(approvalChoices(widening), "[o] Allow once  [d] Deny");
  });
  await t.step("labels", () => {
    assert.equal(answerLabel("allow_workspace"), "Allow workspace");
    assert.equal(answerLabel("other"), "other");
  });
});
