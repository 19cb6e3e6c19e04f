/**
 * MCP elicitation relayed to the user. A server's `elicitation/create` (form mode) becomes
 * questions on the bus through an {@link McpElicitor} — the kernel's elicitation service
 * (`astrid.v1.elicit.<id>` → `astrid.v1.elicit.response.<id>`, `host_abi/lifecycle.ts`), shown
 * by the frontends attached to the calling session like an approval prompt:
 *
 * - a form without fields is one yes/no question (`confirm`): yes accepts, no declines;
 * - otherwise one question per field, in schema order: `boolean` → `confirm`, an enum (`enum`
 *   or `oneOf` consts) → `select`, `number`/`integer` → `text` read as a number, `string` →
 *   `text`; the first question carries the server's message;
 * - the user declining any question declines the elicitation; no frontend, a timeout or an
 *   invalid answer cancels it; URL mode is declined (Astrid opens no URLs for a server).
 *
 * @module
 */
import type { ElicitRequest, ElicitResult } from "./mcp_connection.ts";

/** A question for the user (structurally `ElicitQuestion` of `host_abi/lifecycle.ts`). */
export interface McpElicitQuestion {
  /** The prompt shown. */
  readonly message: string;
  /** The kind of answer. */
  readonly type: "text" | "secret" | "select" | "confirm";
  /** The choices of a `select`. */
  readonly options?: readonly string[];
  /** A default answer. */
  readonly default?: string;
}

/** Where to ask (structurally `ElicitScope` of `host_abi/lifecycle.ts`). */
export interface McpElicitScope {
  /** The principal whose frontends are asked. */
  readonly principal: string;
  /** The session whose frontends are asked. */
  readonly session: string;
  /** Who asks, shown to the user (`mcp:<server>`). */
  readonly capsule: string;
  /** Aborting withdraws the question. */
  readonly signal: AbortSignal;
  /** When the question expires, ms since the epoch. */
  readonly expiresAt: number;
}

/** Asks the user (structurally `ElicitationService`; `BusElicitor` implements it). */
export interface McpElicitor {
  /** Resolves with the answer; rejects when declined, unanswerable or withdrawn. */
  elicit(question: McpElicitQuestion, scope: McpElicitScope): Promise<string | boolean>;
}

type FieldSchema = {
  type?: string;
  title?: string;
  description?: string;
  enum?: unknown[];
  oneOf?: { const?: unknown; title?: string }[];
  default?: unknown;
};

/** True when `err` is the user's refusal (the host status `CANCELLED`, as its `code`). */
function declined(err: unknown): boolean {
  return (err as { code?: unknown })?.code === "CANCELLED";
}

/** Relays one elicitation request (see the module doc). */
export async function relayElicitation(
  params: ElicitRequest["params"],
  elicitor: McpElicitor,
  scope: McpElicitScope,
): Promise<ElicitResult> {
  const p = params as { mode?: string; message: string; requestedSchema?: unknown };
  if (p.mode === "url") return { action: "decline" };
  const schema = (p.requestedSchema ?? {}) as { properties?: Record<string, FieldSchema> };
  const fields = Object.entries(schema.properties ?? {});
  const head = `${scope.capsule} asks: ${p.message}`;
  try {
    if (fields.length === 0) {
      const yes = await elicitor.elicit({ message: head, type: "confirm" }, scope);
      return yes === true ? { action: "accept", content: {} } : { action: "decline" };
    }
    const content: Record<string, string | number | boolean | string[]> = {};
    let first = true;
    for (const [key, f] of fields) {
      const label = [f.title ?? key, f.description].filter(Boolean).join(" — ");
      const message = first ? `${head}\n${label}` : label;
      first = false;
      const choices = f.enum?.map(String) ?? f.oneOf?.map((o) => String(o.const));
      const dflt = f.default === undefined ? {} : { default: String(f.default) };
      if (f.type === "boolean") {
        const v = await elicitor.elicit({ message, type: "confirm" }, scope);
        content[key] = v === true;
      } else if (choices !== undefined && choices.length > 0) {
        content[key] = String(
          await elicitor.elicit({ message, type: "select", options: choices, ...dflt }, scope),
        );
      } else if (f.type === "number" || f.type === "integer") {
        const v = Number(await elicitor.elicit({ message, type: "text", ...dflt }, scope));
        if (!Number.isFinite(v) || (f.type === "integer" && !Number.isInteger(v))) {
          return { action: "cancel" };
        }
        content[key] = v;
      } else {
        content[key] = String(await elicitor.elicit({ message, type: "text", ...dflt }, scope));
      }
    }
    return { action: "accept", content };
  } catch (err) {
    return declined(err) ? { action: "decline" } : { action: "cancel" };
  }
}
