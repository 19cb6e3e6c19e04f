import assert from "node:assert/strict";
import type { BusMessage } from "../events/mod.ts";
import { principalId } from "../identity/mod.ts";
import {
  capsuleKey,
  type CapsuleScopeRef,
  scopeId,
  scopeServes,
  SYSTEM_SCOPE,
} from "./capsule_scope.ts";

const alice = principalId("alice");
const principal: CapsuleScopeRef = { kind: "principal", principal: alice };
const workspace: CapsuleScopeRef = {
  kind: "workspace",
  principal: principalId("default"),
  workspaceId: "w1",
  workspaceRoot: "/p",
};

function msg(p: string, workspaceId?: string): BusMessage {
  return {
    id: "1",
    topic: "a.b",
    payload: {
      kind: "json",
      value: workspaceId === undefined ? {} : { workspace_id: workspaceId },
    },
    size: 2,
    principal: principalId(p),
    source: { kind: "kernel", name: "t" },
    timestamp: 0,
    end_of_stream: false,
  };
}

Deno.test("capsuleKey() and scopeId() are unique per scope", () => {
  assert.equal(capsuleKey("web", SYSTEM_SCOPE), "web");
  assert.equal(capsuleKey("web", principal), "web@alice");
  assert.equal(capsuleKey("web", workspace), "web#w1");
  assert.deepEqual([SYSTEM_SCOPE, principal, workspace].map(scopeId), [
    "system",
    "principal:alice",
    "workspace:w1",
  ]);
});

Deno.test("scopeServes() routes messages by principal, shadowing and workspace", () => {
  const none = () => false;
  assert.equal(scopeServes(SYSTEM_SCOPE, msg("bob"), none), true);
  assert.equal(scopeServes(SYSTEM_SCOPE, msg("alice"), (p) => p === "alice"), false);
  assert.equal(scopeServes(principal, msg("alice"), none), true);
  assert.equal(scopeServes(principal, msg("bob"), none), false);
  assert.equal(scopeServes(workspace, msg("alice", "w1"), none), true);
  assert.equal(scopeServes(workspace, msg("alice", "w2"), none), false);
  assert.equal(scopeServes(workspace, msg("alice"), none), false);
  assert.equal(scopeServes(workspace, msg("bob", "w1"), none), true);
  assert.equal(scopeServes(workspace, msg("bob", "w1"), (p) => p === "bob"), false);
});
