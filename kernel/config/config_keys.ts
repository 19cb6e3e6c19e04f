/**
 * The config schema as data: one row per leaf key with its expected form, how layers merge
 * it, what a workspace may do with it and its environment variable. `[pricing]` is the one
 * open table; its entries are checked by {@link checkPriceKey} and {@link PRICE_FIELDS}.
 *
 * @module
 */
import { LOG_LEVELS, SECURITY_MODES } from "./astrid_config.ts";

/**
 * What a workspace layer may do with a key (DESIGN §6: a workspace can only tighten security):
 * - `free`: any valid value applies;
 * - `stricter_mode`: only a mode at or left of the current one (safe < guided < autonomous);
 * - `lower`: only a number at or below the current one;
 * - `union`: entries are added to the current list, never removed;
 * - `narrow`: only a subset of the current allow-list;
 * - `forbidden`: never settable from a workspace.
 */
export type WorkspaceRule = "free" | "stricter_mode" | "lower" | "union" | "narrow" | "forbidden";

/** One leaf key of the schema. */
export interface ConfigKeySpec {
  /** Dotted key, e.g. `security.policy.denied_paths`. */
  readonly key: string;
  /** The key split into TOML table and key names. */
  readonly path: readonly string[];
  /** What a valid value looks like, for messages: `a whole number of seconds ≥ 1`. */
  readonly expected: string;
  /** How a higher operator layer combines with a lower one: replace, or union of lists. */
  readonly merge: "replace" | "union";
  /** What the workspace layer may do. */
  readonly workspace: WorkspaceRule;
  /** The environment variable that sets this key, if any. */
  readonly env?: string;
  /** Returns the normalised value, or undefined when `value` is not valid. */
  normalize(value: unknown): unknown;
  /** Converts an environment string to the value {@link ConfigKeySpec.normalize} expects. */
  fromEnv(text: string): unknown;
}

const INT_RE = /^[0-9]+$/;
const NUM_RE = /^[0-9]+(\.[0-9]+)?$/;
const PROVIDER_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

function enumKey(values: readonly string[], aliases: Record<string, string> = {}) {
  const shown = [...values, ...Object.keys(aliases)].map((v) => JSON.stringify(v)).join(", ");
  return {
    expected: `one of ${shown}`,
    normalize: (v: unknown) =>
      typeof v === "string" ? (values.includes(v) ? v : aliases[v]) : undefined,
    fromEnv: (t: string) => t,
  };
}

function intKey(min: number, unit?: string) {
  return {
    expected: unit ? `a whole number of ${unit} ≥ ${min}` : `a whole number ≥ ${min}`,
    normalize: (v: unknown) =>
      typeof v === "number" && Number.isSafeInteger(v) && v >= min ? v : undefined,
    fromEnv: (t: string) => (INT_RE.test(t) ? Number(t) : t),
  };
}

function usdKey() {
  return {
    expected: "a number of US dollars ≥ 0, e.g. 5.0",
    normalize: (v: unknown) =>
      typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : undefined,
    fromEnv: (t: string) => (NUM_RE.test(t) ? Number(t) : t),
  };
}

function stringListKey(what: string) {
  return {
    expected: `an array of ${what} (strings)`,
    normalize: (v: unknown) =>
      Array.isArray(v) && v.every((s) => typeof s === "string" && s !== "") ? [...v] : undefined,
    fromEnv: (t: string) => t,
  };
}

function stringKey(expected: string, ok: (s: string) => boolean) {
  return {
    expected,
    normalize: (v: unknown) => (typeof v === "string" && ok(v) ? v : undefined),
    fromEnv: (t: string) => t,
  };
}

function row(
  key: string,
  kind: Pick<ConfigKeySpec, "expected" | "normalize" | "fromEnv">,
  options: { workspace: WorkspaceRule; merge?: "replace" | "union"; env?: string },
): ConfigKeySpec {
  return {
    key,
    path: key.split("."),
    merge: options.merge ?? "replace",
    workspace: options.workspace,
    ...(options.env ? { env: options.env } : {}),
    ...kind,
  };
}

/** Every leaf key except `[pricing]` entries, in documentation order. */
export const CONFIG_KEYS: readonly ConfigKeySpec[] = Object.freeze([
  row("security.mode", enumKey(SECURITY_MODES, { yolo: "autonomous" }), {
    workspace: "stricter_mode",
    env: "ASTRID_MODE",
  }),
  row("security.policy.denied_paths", stringListKey("path globs"), {
    workspace: "union",
    merge: "union",
  }),
  row("security.policy.allowed_paths", stringListKey("path globs"), { workspace: "narrow" }),
  row("security.policy.denied_hosts", stringListKey("host names or addresses"), {
    workspace: "union",
    merge: "union",
  }),
  row("security.policy.denied_commands", stringListKey("command names"), {
    workspace: "union",
    merge: "union",
  }),
  row("security.approval.timeout_secs", intKey(1, "seconds"), {
    workspace: "lower",
    env: "ASTRID_APPROVAL_TIMEOUT_SECS",
  }),
  row("budget.session_usd", usdKey(), { workspace: "lower", env: "ASTRID_SESSION_BUDGET_USD" }),
  row("budget.workspace_usd", usdKey(), {
    workspace: "lower",
    env: "ASTRID_WORKSPACE_BUDGET_USD",
  }),
  row("budget.per_action_usd", usdKey(), {
    workspace: "lower",
    env: "ASTRID_PER_ACTION_BUDGET_USD",
  }),
  row("runtime.idle_timeout_secs", intKey(0, "seconds"), {
    workspace: "forbidden",
    env: "ASTRID_IDLE_TIMEOUT_SECS",
  }),
  row("runtime.tool_timeout_secs", intKey(1, "seconds"), {
    workspace: "lower",
    env: "ASTRID_TOOL_TIMEOUT_SECS",
  }),
  row("runtime.max_instances", intKey(0), { workspace: "forbidden", env: "ASTRID_MAX_INSTANCES" }),
  row("runtime.log_level", enumKey(LOG_LEVELS), { workspace: "free", env: "ASTRID_LOG_LEVEL" }),
  row(
    "storage.url",
    stringKey(
      'an empty string (embedded SQLite) or a "postgres://" or "postgresql://" URL',
      (s) => s === "" || /^postgres(ql)?:\/\/\S+$/.test(s),
    ),
    { workspace: "forbidden", env: "ASTRID_DB_URL" },
  ),
  row(
    "model.provider",
    stringKey(
      'a provider name of a-z, 0-9, ".", "_" or "-", e.g. "anthropic"',
      (s) => PROVIDER_RE.test(s),
    ),
    { workspace: "free", env: "ASTRID_PROVIDER" },
  ),
  row(
    "model.name",
    stringKey("a non-empty model name without spaces", (s) => /^\S+$/.test(s)),
    { workspace: "free", env: "ASTRID_MODEL" },
  ),
  row("model.max_tokens", intKey(1, "tokens"), { workspace: "free", env: "ASTRID_MAX_TOKENS" }),
]);

/** The spec of a dotted key, or undefined. */
export function keySpec(key: string): ConfigKeySpec | undefined {
  return BY_KEY.get(key);
}
const BY_KEY = new Map(CONFIG_KEYS.map((s) => [s.key, s]));

/** The fields of a `[pricing."provider/model"]` entry; both are required. */
export const PRICE_FIELDS = ["input_per_mtok", "output_per_mtok"] as const;

/** What a price field expects, for messages. */
export const PRICE_EXPECTED = "a number of US dollars per million tokens ≥ 0, e.g. 3.0";

/** The expected form of a pricing key, for messages. */
export const PRICE_KEY_EXPECTED =
  'a "provider/model" name, e.g. "anthropic/claude-sonnet-4-20250514"; a trailing "*" matches a prefix of the model, e.g. "local/*"';

const PRICE_KEY_RE = /^[a-z0-9][a-z0-9._-]{0,62}\/([^\s*]+\*?|\*)$/;

/** True when `name` is a valid `[pricing]` key: `provider/model`, optionally ending in `*`. */
export function checkPriceKey(name: string): boolean {
  return PRICE_KEY_RE.test(name);
}

/** The top-level tables and, for each table, its children (tables and keys). */
export const CONFIG_TABLES: ReadonlyMap<string, readonly string[]> = (() => {
  const tables = new Map<string, string[]>();
  for (const spec of CONFIG_KEYS) {
    for (let i = 0; i < spec.path.length; i++) {
      const parent = spec.path.slice(0, i).join(".");
      const children = tables.get(parent) ?? [];
      if (!children.includes(spec.path[i])) children.push(spec.path[i]);
      tables.set(parent, children);
    }
  }
  tables.get("")?.splice(2, 0, "pricing");
  return tables;
})();
