import assert from "node:assert/strict";
import { aclApplies, BusAcl, TopicPattern } from "./mod.ts";

Deno.test("BusAcl is fail-closed and matches with subscription semantics", async (t) => {
  const acl = new BusAcl();
  const seg = (topic: string) => topic.split(".");

  await t.step("an unknown capsule or an empty list allows nothing", () => {
    assert.equal(acl.mayPublish("x", seg("a.b")), false);
    assert.equal(acl.maySubscribePattern("x", "a.b"), false);
    acl.set("x", { publish: [], subscribe: [] });
    assert.equal(acl.mayPublish("x", seg("a.b")), false);
    assert.equal(acl.maySubscribe("x", TopicPattern.parse("a.b")), false);
  });

  await t.step("publish patterns match topics, subscribe patterns must cover", () => {
    acl.set("x", { publish: ["llm.v1.stream.*"], subscribe: ["llm.v1.request.generate.*"] });
    assert.equal(acl.mayPublish("x", seg("llm.v1.stream.openai")), true);
    assert.equal(acl.mayPublish("x", seg("llm.v1.stream.openai.extra")), true);
    assert.equal(acl.mayPublish("x", seg("llm.v1.stream")), false);
    assert.equal(acl.maySubscribePattern("x", "llm.v1.request.generate.openai"), true);
    assert.equal(acl.maySubscribePattern("x", "llm.v1.request.generate.*", "strict"), true);
    assert.equal(acl.maySubscribePattern("x", "llm.v1.request.*"), false);
    assert.deepEqual(acl.get("x"), {
      publish: ["llm.v1.stream.*"],
      subscribe: ["llm.v1.request.generate.*"],
    });
  });

  await t.step("delete forgets the lists", () => {
    acl.delete("x");
    assert.equal(acl.get("x"), undefined);
    assert.equal(acl.mayPublish("x", seg("llm.v1.stream.openai")), false);
  });
});

Deno.test("aclApplies() checks capsules and uplinks only", () => {
  assert.equal(aclApplies({ kind: "capsule", name: "a" }), true);
  assert.equal(aclApplies({ kind: "uplink", name: "a" }), true);
  assert.equal(aclApplies({ kind: "kernel", name: "a" }), false);
  assert.equal(aclApplies({ kind: "client", name: "a" }), false);
});
