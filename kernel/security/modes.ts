/**
 * Security modes (DESIGN §6): which actions run without asking. The mode only says allow or
 * ask; the policy layer's blocks come before it and budgets apply after it in every mode.
 * Tokens and allowances answer an "ask" without asking. Widening actions (minting a token,
 * changing a capsule's capabilities, identity admin) are `human` in every mode: only a human's
 * answer allows them, never a token, an allowance, a mode or `--yes`.
 *
 * | row             | actions                                        | safe  | guided | autonomous |
 * | --------------- | ---------------------------------------------- | ----- | ------ | ---------- |
 * | `read_inside`   | `fs.read` inside the workspace                 | allow | allow  | allow      |
 * | `read_outside`  | `fs.read` outside it                           | ask   | allow  | allow      |
 * | `write_inside`  | `fs.write`, `fs.delete` inside it (overlay)    | ask   | ask    | allow      |
 * | `write_outside` | `fs.write`, `fs.delete` outside it             | ask   | ask    | allow      |
 * | `native`        | `process.spawn`, `tool.execute` with `native`  | ask   | ask    | allow      |
 * | `network`       | `net.request`                                  | ask   | ask    | allow      |
 * | `tool`          | `tool.execute` of a wasm tool                  | ask   | allow  | allow      |
 * | `model`         | `llm.generate`, a `net.request` with modelCall | allow | allow  | allow      |
 * | `widening`      | `capability.*`, `identity.admin`               | human | human  | human      |
 *
 * `yolo` is an alias of `autonomous`.
 *
 * A provider's HTTP request made while it serves a model call (`modelCall`: its invocation was
 * triggered by `llm.v1.request.generate.<provider>` and the budget guard holds that very call,
 * `LlmBudget.metered`) is the model call itself, already priced, reserved and audited as
 * `llm.generate`; asking again per request would make every
 * headless turn fail in `guided`. The policy layer (denied hosts) and the capsule's manifest
 * `net` list still apply, and the request is audited with the rule `<mode>/model`.
 *
 * @module
 */
import { SECURITY_MODES, type SecurityMode } from "../config/mod.ts";
import type { SensitiveAction } from "./sensitive_action.ts";

/** What a mode says about an action: run it, ask (a token or allowance may answer), or ask a human. */
export type ModeOutcome = "allow" | "ask" | "human";

/** The rows of the mode table. */
export const MODE_ROWS = [
  "read_inside",
  "read_outside",
  "write_inside",
  "write_outside",
  "native",
  "network",
  "tool",
  "model",
  "widening",
] as const;

/** One row of {@link MODE_TABLE}. */
export type ModeRow = typeof MODE_ROWS[number];

/** The mode table: row → mode → outcome. */
export const MODE_TABLE: Readonly<Record<ModeRow, Readonly<Record<SecurityMode, ModeOutcome>>>> = {
  read_inside: { safe: "allow", guided: "allow", autonomous: "allow" },
  read_outside: { safe: "ask", guided: "allow", autonomous: "allow" },
  write_inside: { safe: "ask", guided: "ask", autonomous: "allow" },
  write_outside: { safe: "ask", guided: "ask", autonomous: "allow" },
  native: { safe: "ask", guided: "ask", autonomous: "allow" },
  network: { safe: "ask", guided: "ask", autonomous: "allow" },
  tool: { safe: "ask", guided: "allow", autonomous: "allow" },
  model: { safe: "allow", guided: "allow", autonomous: "allow" },
  widening: { safe: "human", guided: "human", autonomous: "human" },
};

/** A mode's decision and the table cell it came from. */
export interface ModeDecision {
  /** The outcome. */
  readonly outcome: ModeOutcome;
  /** The cell, `<mode>/<row>`, e.g. `guided/write_inside`: the audit entry's `rule`. */
  readonly rule: string;
}

/** `mode` with `yolo` resolved to `autonomous`; an unknown mode reads as `safe` (fail closed). */
export function normalizeMode(mode: string): SecurityMode {
  if (mode === "yolo") return "autonomous";
  return (SECURITY_MODES as readonly string[]).includes(mode) ? mode as SecurityMode : "safe";
}

/** The table row of an action. */
export function modeRow(action: SensitiveAction): ModeRow {
  const inside = action.insideWorkspace === true;
  switch (action.kind) {
    case "fs.read":
      return inside ? "read_inside" : "read_outside";
    case "fs.write":
    case "fs.delete":
      return inside ? "write_inside" : "write_outside";
    case "process.spawn":
      return "native";
    case "net.request":
      return action.modelCall === true ? "model" : "network";
    case "tool.execute":
      return action.native === true ? "native" : "tool";
    case "llm.generate":
      return "model";
    default:
      return "widening";
  }
}

const cells = new Map<string, ModeDecision>();
for (const mode of SECURITY_MODES) {
  for (const row of MODE_ROWS) {
    cells.set(
      `${mode}/${row}`,
      Object.freeze({ outcome: MODE_TABLE[row][mode], rule: `${mode}/${row}` }),
    );
  }
}

/** What `mode` says about `action` (see the table in the module doc). */
export function modeDecision(mode: SecurityMode | "yolo", action: SensitiveAction): ModeDecision {
  return cells.get(`${normalizeMode(mode)}/${modeRow(action)}`)!;
}
