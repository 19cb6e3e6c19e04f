/**
 * The typed configuration of the kernel and its compiled defaults. Field names are the TOML
 * keys, so a value can be found in `docs/config.md` and in a config file under the same name.
 *
 * @module
 */

/** Security modes, strictest first; `yolo` is accepted on input as an alias of `autonomous`. */
export const SECURITY_MODES = ["safe", "guided", "autonomous"] as const;

/** A security mode (DESIGN §6), after the `yolo` alias is resolved. */
export type SecurityMode = typeof SECURITY_MODES[number];

/** Log levels, quietest first. */
export const LOG_LEVELS = ["error", "warn", "info", "debug", "trace"] as const;

/** A log level of `runtime.log_level`. */
export type LogLevel = typeof LOG_LEVELS[number];

/** The price of one model in US dollars per million tokens. */
export interface ModelPrice {
  /** USD per million prompt (input) tokens. */
  readonly input_per_mtok: number;
  /** USD per million completion (output) tokens. */
  readonly output_per_mtok: number;
}

/** `[security.policy]`: hard blocks (and the optional path allow-list) of the policy layer. */
export interface PolicyConfig {
  /** Globs of paths no action may touch. */
  readonly denied_paths: readonly string[];
  /** Globs of the only paths actions may touch; empty means no allow-list. */
  readonly allowed_paths: readonly string[];
  /** Hosts no network request may reach. */
  readonly denied_hosts: readonly string[];
  /** Command names no native command may run. */
  readonly denied_commands: readonly string[];
}

/** `[security]`. */
export interface SecurityConfig {
  /** How much an agent may do without asking. */
  readonly mode: SecurityMode;
  /** Hard blocks. */
  readonly policy: PolicyConfig;
  /** `[security.approval]`. */
  readonly approval: {
    /** Seconds a queued approval waits for a human before it is denied. */
    readonly timeout_secs: number;
  };
}

/** `[budget]`: spending limits in US dollars. */
export interface BudgetConfig {
  /** Limit for one session. */
  readonly session_usd: number;
  /** Limit for one workspace, across its sessions. */
  readonly workspace_usd: number;
  /** Limit for one action (one model call or tool call). */
  readonly per_action_usd: number;
}

/** `[runtime]`. */
export interface RuntimeConfig {
  /** Seconds a persistent daemon stays up with no client; 0 never stops. */
  readonly idle_timeout_secs: number;
  /** Seconds a tool call or native command may run before it is stopped. */
  readonly tool_timeout_secs: number;
  /** Most capsule instances alive at once; 0 sizes it from the host. */
  readonly max_instances: number;
  /** Daemon log level. */
  readonly log_level: LogLevel;
}

/** `[storage]`. */
export interface StorageConfig {
  /** Empty: the embedded SQLite store; else a `postgres://` URL. */
  readonly url: string;
}

/** `[model]`: the model the orchestrator asks by default. */
export interface ModelConfig {
  /** Provider capsule name, e.g. `anthropic`, `openai`, `local`. */
  readonly provider: string;
  /** Model name as the provider knows it. */
  readonly name: string;
  /** Upper bound of output tokens per request. */
  readonly max_tokens: number;
}

/** The whole kernel configuration after all layers are merged. */
export interface AstridConfig {
  /** `[security]`. */
  readonly security: SecurityConfig;
  /** `[budget]`. */
  readonly budget: BudgetConfig;
  /** `[pricing."provider/model"]`, keyed `provider/model` (a trailing `*` matches a prefix). */
  readonly pricing: Readonly<Record<string, ModelPrice>>;
  /** `[runtime]`. */
  readonly runtime: RuntimeConfig;
  /** `[storage]`. */
  readonly storage: StorageConfig;
  /** `[model]`. */
  readonly model: ModelConfig;
}

/** The compiled defaults, deeply frozen: the lowest config layer. */
export const DEFAULT_CONFIG: AstridConfig = deepFreeze({
  security: {
    mode: "guided",
    policy: {
      denied_paths: [
        "**/.env",
        "**/.ssh/**",
        "**/.gnupg/**",
        "**/.aws/credentials",
        "**/.netrc",
      ],
      allowed_paths: [],
      denied_hosts: ["169.254.169.254", "metadata.google.internal"],
      denied_commands: ["sudo", "su", "doas", "pkexec"],
    },
    approval: { timeout_secs: 300 },
  },
  budget: { session_usd: 5.0, workspace_usd: 50.0, per_action_usd: 1.0 },
  pricing: {
    "anthropic/claude-sonnet-4*": { input_per_mtok: 3, output_per_mtok: 15 },
    "anthropic/claude-opus-4*": { input_per_mtok: 15, output_per_mtok: 75 },
    "anthropic/claude-opus-4-5*": { input_per_mtok: 5, output_per_mtok: 25 },
    "anthropic/claude-haiku-4-5*": { input_per_mtok: 1, output_per_mtok: 5 },
    "anthropic/claude-3-5-haiku*": { input_per_mtok: 0.8, output_per_mtok: 4 },
    "openai/gpt-4o": { input_per_mtok: 2.5, output_per_mtok: 10 },
    "openai/gpt-4o-mini": { input_per_mtok: 0.15, output_per_mtok: 0.6 },
    "openai/gpt-4.1": { input_per_mtok: 2, output_per_mtok: 8 },
    "openai/gpt-4.1-mini": { input_per_mtok: 0.4, output_per_mtok: 1.6 },
    "local/*": { input_per_mtok: 0, output_per_mtok: 0 },
  },
  runtime: { idle_timeout_secs: 300, tool_timeout_secs: 300, max_instances: 0, log_level: "info" },
  storage: { url: "" },
  model: { provider: "anthropic", name: "claude-sonnet-4-20250514", max_tokens: 4096 },
});

/** Returns a deep mutable copy of the defaults (for building a merged config). */
export function cloneDefaults(): MutableConfig {
  return structuredClone(DEFAULT_CONFIG) as MutableConfig;
}

/** {@link AstridConfig} without `readonly`, used while layers are merged. */
export type MutableConfig = { -readonly [K in keyof AstridConfig]: Mutable<AstridConfig[K]> };
type Mutable<T> = T extends readonly (infer U)[] ? U[]
  : T extends object ? { -readonly [K in keyof T]: Mutable<T[K]> }
  : T;

/** Freezes `value` and everything reachable from it; returns it. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
