/**
 * The environment layer: an explicit table of `ASTRID_*` variables, each setting one key
 * (no generic name mangling). It sits just above the compiled defaults and below every
 * config file. An empty variable counts as unset.
 *
 * @module
 */
import { CONFIG_KEYS } from "./config_keys.ts";
import type { ConfigLayer, LayerEntry } from "./config_layer.ts";
import { ConfigCode, ConfigError } from "./errors.ts";
import { redactSecret } from "./_describe.ts";

/** Something environment-shaped (`Deno.env`, or a `Map` in tests). */
export interface EnvSource {
  /** The value of `key`, or undefined when unset. */
  get(key: string): string | undefined;
}

/** The environment table: variable name → dotted key, in documentation order. */
export const ENV_VARS: ReadonlyMap<string, string> = new Map(
  CONFIG_KEYS.filter((s) => s.env !== undefined).map((s) => [s.env as string, s.key]),
);

/** Reads every variable of {@link ENV_VARS} from `env` into a validated layer. */
export function envLayer(env: EnvSource): ConfigLayer {
  const entries: LayerEntry[] = [];
  for (const spec of CONFIG_KEYS) {
    if (spec.env === undefined) continue;
    const text = env.get(spec.env);
    if (text === undefined || text === "") continue;
    const value = spec.normalize(spec.fromEnv(text.trim()));
    if (value === undefined) {
      const shown = JSON.stringify(redactSecret(spec.key, text));
      throw new ConfigError(
        ConfigCode.CONFIG_ENV,
        `Environment variable ${spec.env} (${spec.key}): expected ${spec.expected}, got ${shown}`,
        { data: { variable: spec.env, key: spec.key } },
      );
    }
    entries.push({ key: spec.key, path: spec.path, value, raw: text, variable: spec.env });
  }
  return { kind: "env", entries };
}
