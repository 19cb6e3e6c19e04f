import assert from "node:assert/strict";
import { MODE_TABLE, modeDecision, modeRow, normalizeMode } from "./modes.ts";
import type { SensitiveAction } from "./sensitive_action.ts";

const who = { principal: "default", session: "s1", workspace: "w1" };

/** One action of every kind (the tool both as wasm and native). */
const EVERY_KIND: SensitiveAction[] = [
  { ...who, kind: "fs.read", path: "/w/a" },
  { ...who, kind: "fs.write", path: "/w/a" },
  { ...who, kind: "fs.delete", path: "/w/a" },
  { ...who, kind: "process.spawn", argv: ["ls"] },
  { ...who, kind: "net.request", host: "example.com", port: 443 },
  { ...who, kind: "tool.execute", tool: "read_file" },
  { ...who, kind: "tool.execute", tool: "shell", native: true },
  { ...who, kind: "llm.generate", provider: "local", model: "m", promptChars: 4, maxTokens: 1 },
  {
    ...who,
    kind: "capability.mint",
    grant: { principal: "default", resource: "fs:/w/**", permissions: ["read"] },
  },
  { ...who, kind: "capability.change", capsule: "c", change: "net" },
  { ...who, kind: "identity.admin", operation: "link", target: "x" },
];

// [kind (+native), inside, safe, guided, autonomous]
const EXPECTED: [string, boolean, string, string, string][] = [
  ["fs.read", true, "allow", "allow", "allow"],
  ["fs.read", false, "ask", "allow", "allow"],
  ["fs.write", true, "ask", "ask", "allow"],
  ["fs.write", false, "ask", "ask", "allow"],
  ["fs.delete", true, "ask", "ask", "allow"],
  ["fs.delete", false, "ask", "ask", "allow"],
  ["process.spawn", true, "ask", "ask", "allow"],
  ["process.spawn", false, "ask", "ask", "allow"],
  ["net.request", true, "ask", "ask", "allow"],
  ["net.request", false, "ask", "ask", "allow"],
  ["tool.execute", true, "ask", "allow", "allow"],
  ["tool.execute", false, "ask", "allow", "allow"],
  ["tool.execute+native", true, "ask", "ask", "allow"],
  ["tool.execute+native", false, "ask", "ask", "allow"],
  ["llm.generate", true, "allow", "allow", "allow"],
  ["llm.generate", false, "allow", "allow", "allow"],
  ["capability.mint", true, "human", "human", "human"],
  ["capability.mint", false, "human", "human", "human"],
  ["capability.change", true, "human", "human", "human"],
  ["capability.change", false, "human", "human", "human"],
  ["identity.admin", true, "human", "human", "human"],
  ["identity.admin", false, "human", "human", "human"],
];

function label(a: SensitiveAction): string {
  return a.kind + (a.kind === "tool.execute" && a.native ? "+native" : "");
}

Deno.test("modeDecision() follows the DESIGN §6 table for every kind, inside and outside", () => {
  assert.equal(EXPECTED.length, EVERY_KIND.length * 2);
  for (const [name, inside, safe, guided, autonomous] of EXPECTED) {
    const base = EVERY_KIND.find((a) => label(a) === name)!;
    const action = { ...base, insideWorkspace: inside } as SensitiveAction;
    for (
      const [mode, outcome] of [["safe", safe], ["guided", guided], [
        "autonomous",
        autonomous,
      ]] as const
    ) {
      const d = modeDecision(mode, action);
      assert.equal(d.outcome, outcome, `${name} inside=${inside} ${mode}`);
      assert.equal(d.rule, `${mode}/${modeRow(action)}`);
    }
    assert.deepEqual(modeDecision("yolo", action), modeDecision("autonomous", action));
  }
});

Deno.test("modeDecision() reads a net.request carrying a model call as the model row", () => {
  const net = { ...who, kind: "net.request", host: "api.anthropic.com", port: 443 } as const;
  for (const mode of ["safe", "guided", "autonomous"] as const) {
    assert.deepEqual(modeDecision(mode, { ...net, modelCall: true }), {
      outcome: "allow",
      rule: `${mode}/model`,
    });
  }
  assert.equal(modeDecision("guided", net).outcome, "ask");
});

Deno.test("normalizeMode() resolves yolo and reads an unknown mode as safe", () => {
  assert.equal(normalizeMode("yolo"), "autonomous");
  assert.equal(normalizeMode("guided"), "guided");
  assert.equal(normalizeMode("wild"), "safe");
});

Deno.test("MODE_TABLE never allows a widening action and gets stricter leftwards", () => {
  const rank = { allow: 0, ask: 1, human: 2 } as const;
  for (const [row, cells] of Object.entries(MODE_TABLE)) {
    assert.ok(rank[cells.safe] >= rank[cells.guided], row);
    assert.ok(rank[cells.guided] >= rank[cells.autonomous], row);
  }
  assert.deepEqual(MODE_TABLE.widening, { safe: "human", guided: "human", autonomous: "human" });
});
