import assert from "node:assert/strict";
import { BUS_TOOL_NAME_RE, MAX_TOOL_NAME, mcpToolName, securityToolId } from "./tool_name.ts";

Deno.test("mcpToolName()", async (t) => {
  await t.step("joins server and tool with __", () => {
    assert.equal(mcpToolName("fs", "read_file"), "fs__read_file");
    assert.equal(mcpToolName("git-hub", "Create-Issue_2"), "git-hub__Create-Issue_2");
  });
  await t.step("replaces other characters and adds a hash so names stay distinct", () => {
    const a = mcpToolName("fs", "read.file");
    const b = mcpToolName("fs", "read_file");
    const c = mcpToolName("fs", "read/file");
    assert.match(a, /^fs__read_file_[0-9a-f]{8}$/);
    assert.notEqual(a, b);
    assert.notEqual(a, c);
    assert.match(a, BUS_TOOL_NAME_RE);
  });
  await t.step("cuts names longer than 64 and suffixes a short hash", () => {
    const long = mcpToolName("server", "t".repeat(100));
    assert.equal(long.length, MAX_TOOL_NAME);
    assert.match(long, /^server__t+_[0-9a-f]{8}$/);
    assert.notEqual(long, mcpToolName("server", "t".repeat(101)));
    assert.equal(mcpToolName("server", "t".repeat(100)), long, "stable");
  });
  await t.step("keeps a name of exactly 64 characters whole", () => {
    const tool = "x".repeat(64 - "srv__".length);
    assert.equal(mcpToolName("srv", tool), `srv__${tool}`);
  });
  await t.step("names an empty tool name", () => {
    assert.match(mcpToolName("s", ""), /^s____[0-9a-f]{8}$/);
  });
});

Deno.test("securityToolId() is <server>/<rest of the bus name>", () => {
  assert.equal(securityToolId("github", "github__create_issue"), "github/create_issue");
});
