import assert from "node:assert/strict";
import { hasCode } from "../errors.ts";
import {
  actionDetails,
  canonicalHost,
  describeAction,
  KIND_PERMISSION,
  type SensitiveAction,
} from "./sensitive_action.ts";
import { SecurityCode } from "./errors.ts";

const who = { principal: "default", session: "s1", workspace: "w1" };

Deno.test("describeAction() maps every kind to a permission and a canonical resource", () => {
  const cases: [SensitiveAction, string, string, boolean][] = [
    [{ ...who, kind: "fs.read", path: "/w/a.ts" }, "read", "fs:/w/a.ts", false],
    [{ ...who, kind: "fs.write", path: "/w/a.ts" }, "write", "fs:/w/a.ts", false],
    [{ ...who, kind: "fs.delete", path: "/w/a.ts" }, "delete", "fs:/w/a.ts", false],
    [{ ...who, kind: "process.spawn", argv: ["git", "status"] }, "execute", "process:git", false],
    [
      { ...who, kind: "net.request", host: "API.GitHub.com.", port: 443 },
      "network",
      "net:api.github.com:443",
      false,
    ],
    [{ ...who, kind: "net.request", host: "::1", port: 8080 }, "network", "net:[::1]:8080", false],
    [{ ...who, kind: "tool.execute", tool: "read_file" }, "execute", "tool:read_file", false],
    [
      { ...who, kind: "tool.execute", tool: "github/create_issue" },
      "execute",
      "tool:github/create_issue",
      false,
    ],
    [
      {
        ...who,
        kind: "llm.generate",
        provider: "openai",
        model: "gpt-4o",
        promptChars: 10,
        maxTokens: 5,
      },
      "execute",
      "llm:openai/gpt-4o",
      false,
    ],
    [
      {
        ...who,
        kind: "capability.mint",
        grant: { principal: "default", resource: "fs:/w/**", permissions: ["read"] },
      },
      "admin",
      "capability:default:fs:/w/**",
      true,
    ],
    [
      { ...who, kind: "capability.change", capsule: "weather", change: "add net" },
      "admin",
      "capsule:weather",
      true,
    ],
    [
      { ...who, kind: "identity.admin", operation: "link", target: "telegram:1" },
      "admin",
      "identity:telegram:1",
      true,
    ],
  ];
  for (const [action, permission, resource, widening] of cases) {
    const info = describeAction(action);
    assert.equal(info.permission, permission, action.kind);
    assert.equal(info.resource, resource, action.kind);
    assert.equal(info.widening, widening, action.kind);
    assert.equal(KIND_PERMISSION[action.kind], permission);
  }
});

Deno.test("describeAction() rejects malformed actions with ACTION_INVALID naming the field", async (t) => {
  const bad: [string, unknown][] = [
    ["kind", { ...who, kind: "fs.chmod", path: "/a" }],
    ["principal", { ...who, principal: "Bad Name", kind: "fs.read", path: "/a" }],
    ["session", { ...who, session: "a/b", kind: "fs.read", path: "/a" }],
    ["workspace", { ...who, workspace: "", kind: "fs.read", path: "/a" }],
    ["path", { ...who, kind: "fs.read", path: 3 }],
    ["argv", { ...who, kind: "process.spawn", argv: [] }],
    ["argv", { ...who, kind: "process.spawn", argv: [""] }],
    ["port", { ...who, kind: "net.request", host: "a.com", port: 70000 }],
    ["tool", { ...who, kind: "tool.execute", tool: "a b" }],
    ["promptChars", {
      ...who,
      kind: "llm.generate",
      provider: "p",
      model: "m",
      promptChars: -1,
      maxTokens: 1,
    }],
    ["grant.permissions", {
      ...who,
      kind: "capability.mint",
      grant: { principal: "default", resource: "x", permissions: ["root"] },
    }],
    ["insideWorkspace", { ...who, kind: "fs.read", path: "/a", insideWorkspace: "yes" }],
  ];
  for (const [field, action] of bad) {
    await t.step(`${field}: ${JSON.stringify(action).slice(0, 60)}`, () => {
      assert.throws(
        () => describeAction(action as SensitiveAction),
        (err: unknown) =>
          hasCode(err, SecurityCode.ACTION_INVALID) &&
          (err.data as { field: string }).field === field,
      );
    });
  }
});

Deno.test("canonicalHost() normalizes names and numeric IPv4 forms", () => {
  const cases: [string, string | null][] = [
    ["Example.COM", "example.com"],
    ["example.com.", "example.com"],
    ["169.254.169.254", "169.254.169.254"],
    ["2852039166", "169.254.169.254"],
    ["0xa9fea9fe", "169.254.169.254"],
    ["0251.0376.0251.0376", "169.254.169.254"],
    ["[::ffff:169.254.169.254]", "169.254.169.254"],
    ["::1", "[::1]"],
    ["bücher.de", "xn--bcher-kva.de"],
    ["a.com/path", null],
    ["user@a.com", null],
    ["a.com:80", null],
    ["", null],
    ["a b", null],
  ];
  for (const [input, expected] of cases) assert.equal(canonicalHost(input), expected, input);
});

Deno.test("actionDetails() keeps kind-specific fields and the workspace", () => {
  const details = JSON.parse(
    actionDetails({ ...who, kind: "process.spawn", argv: ["ls", "-l"] }, { permission: "execute" }),
  );
  assert.deepEqual(details, { workspace: "w1", argv: ["ls", "-l"], permission: "execute" });
});
