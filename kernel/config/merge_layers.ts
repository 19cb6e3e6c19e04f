/**
 * Merges validated layers over the compiled defaults, lowest precedence first, applying the
 * tightening rule to workspace layers: a repository author controls `.astrid/config.toml`,
 * not the operator, so it may only make security stricter. A loosening value is ignored with
 * a {@link ConfigWarning}; nothing a workspace writes can widen what an agent may do.
 *
 * @module
 */
import {
  type AstridConfig,
  cloneDefaults,
  deepFreeze,
  type ModelPrice,
  SECURITY_MODES,
} from "./astrid_config.ts";
import { checkPriceKey, CONFIG_KEYS, keySpec, PRICE_FIELDS } from "./config_keys.ts";
import {
  type ConfigLayer,
  type ConfigOrigin,
  type ConfigWarning,
  ConfigWarningCode,
  LAYER_ORDER,
  type LayerEntry,
} from "./config_layer.ts";
import { ConfigCode, ConfigError } from "./errors.ts";
import { describeValue, isTable } from "./_describe.ts";
import { formatKey } from "./_toml_keys.ts";

/** The result of {@link mergeLayers}. */
export interface MergedConfig {
  /** The merged configuration, deeply frozen. */
  readonly config: AstridConfig;
  /** Values that were ignored, and why. */
  readonly warnings: readonly ConfigWarning[];
  /**
   * For every key (`security.mode`, `pricing."local/*"`), the layers that set it, lowest first:
   * the last one decides a scalar; every listed layer contributed to a `denied_*` union.
   */
  readonly sources: Readonly<Record<string, readonly ConfigOrigin[]>>;
}

/**
 * Merges `layers` over the compiled defaults. Layers are applied in precedence order
 * (defaults < env < system < user < workspace), whatever order they are passed in; layers of
 * one kind keep their order. Hand-built layers are validated again, so a test can pass
 * `{ kind: "workspace", file, entries: [{ key: "security.mode", ... }] }` directly.
 */
export function mergeLayers(layers: readonly ConfigLayer[]): MergedConfig {
  const merger = new Merger();
  const rank = (l: ConfigLayer) => LAYER_ORDER.indexOf(l.kind);
  const sorted = layers.map((l, i) => ({ l, i })).sort((a, b) =>
    rank(a.l) - rank(b.l) || a.i - b.i
  );
  for (const { l } of sorted) {
    for (const entry of l.entries) merger.apply(l, entry);
  }
  return merger.result();
}

/** True when allow-list entry `outer` allows everything glob `inner` allows. */
function covers(outer: string, inner: string): boolean {
  if (inner.split("/").includes("..")) return false;
  if (outer === inner || outer === "**") return true;
  return outer.endsWith("/**") && inner.startsWith(outer.slice(0, -2));
}

function unique(list: readonly string[]): string[] {
  return [...new Set(list)];
}

class Merger {
  #config = cloneDefaults();
  #sources: Record<string, ConfigOrigin[]> = {};
  #warnings: ConfigWarning[] = [];

  constructor() {
    for (const key of keysOf(this.#config)) this.#sources[key] = [{ layer: "defaults" }];
  }

  result(): MergedConfig {
    return {
      config: deepFreeze(this.#config) as AstridConfig,
      warnings: this.#warnings,
      sources: this.#sources,
    };
  }

  apply(layer: ConfigLayer, entry: LayerEntry): void {
    const origin: ConfigOrigin = {
      layer: layer.kind,
      ...(layer.file !== undefined ? { file: layer.file } : {}),
      ...(entry.line !== undefined ? { line: entry.line } : {}),
      ...(entry.variable !== undefined ? { variable: entry.variable } : {}),
    };
    const workspace = layer.kind === "workspace";
    if (entry.path[0] === "pricing") {
      const price = this.#checkPrice(layer, entry);
      if (workspace) {
        return this.#warn(
          ConfigWarningCode.WORKSPACE_FORBIDDEN,
          layer,
          entry,
          `Ignored ${entry.key} in ${where(layer, entry)}: a workspace cannot change pricing ` +
            "(it could make calls free); set prices in the system or user config",
        );
      }
      this.#config.pricing[entry.path[1]] = price;
      return this.#record(entry.key, origin);
    }

    const spec = keySpec(entry.path.join("."));
    if (!spec) {
      throw new ConfigError(
        ConfigCode.CONFIG_UNKNOWN_KEY,
        `${where(layer, entry)}: ${entry.key}: unknown key`,
        { data: { file: layer.file, line: entry.line, key: entry.key } },
      );
    }
    const value = spec.normalize(entry.value);
    if (value === undefined) {
      throw new ConfigError(
        ConfigCode.CONFIG_TYPE,
        `${where(layer, entry)}: ${spec.key}: expected ${spec.expected}, got ${
          describeValue(entry.value, spec.key)
        }`,
        { data: { file: layer.file, line: entry.line, key: spec.key } },
      );
    }
    const current = this.#get(spec.path);
    const rule = workspace ? spec.workspace : spec.merge === "union" ? "union" : "free";
    const shown = `${spec.key} = ${describeValue(entry.raw, spec.key)}`;
    const at = where(layer, entry);

    switch (rule) {
      case "free":
        this.#set(spec.path, value);
        return this.#record(spec.key, origin);
      case "union": {
        const added = value as string[];
        this.#set(spec.path, unique([...(current as string[]), ...added]));
        if (added.length > 0) this.#record(spec.key, origin);
        return;
      }
      case "forbidden":
        return this.#warn(
          ConfigWarningCode.WORKSPACE_FORBIDDEN,
          layer,
          entry,
          `Ignored ${shown} in ${at}: a workspace cannot set ${spec.key} ` +
            "(it is a daemon-wide setting); set it in the system or user config",
        );
      case "stricter_mode": {
        const from = SECURITY_MODES.indexOf(current as typeof SECURITY_MODES[number]);
        const to = SECURITY_MODES.indexOf(value as typeof SECURITY_MODES[number]);
        if (to <= from) {
          this.#set(spec.path, value);
          return this.#record(spec.key, origin);
        }
        return this.#warn(
          ConfigWarningCode.WORKSPACE_LOOSENS,
          layer,
          entry,
          `Ignored ${shown} in ${at}: a workspace may only tighten security ` +
            `(current ${JSON.stringify(current)})`,
        );
      }
      case "lower": {
        if ((value as number) <= (current as number)) {
          this.#set(spec.path, value);
          return this.#record(spec.key, origin);
        }
        const what = spec.path[0] === "budget" ? "lower budgets" : "shorten timeouts";
        return this.#warn(
          ConfigWarningCode.WORKSPACE_LOOSENS,
          layer,
          entry,
          `Ignored ${shown} in ${at}: a workspace may only ${what} (current ${current})`,
        );
      }
      case "narrow":
        return this.#narrow(layer, entry, current as string[], value as string[], origin);
    }
  }

  #narrow(
    layer: ConfigLayer,
    entry: LayerEntry,
    current: string[],
    wanted: string[],
    origin: ConfigOrigin,
  ): void {
    const at = where(layer, entry);
    const now = `current ${describeValue(current)}`;
    if (current.length === 0) {
      // No allow-list yet: every path not denied is reachable, so any list narrows.
      if (wanted.length === 0) return;
      this.#set(entry.path, unique(wanted));
      return this.#record(entry.key, origin);
    }
    if (wanted.length === 0) {
      return this.#warn(
        ConfigWarningCode.WORKSPACE_LOOSENS,
        layer,
        entry,
        `Ignored ${entry.key} = [] in ${at}: an empty list allows every path; ` +
          `a workspace may only narrow allowed_paths (${now})`,
      );
    }
    const accepted = wanted.filter((w) => current.some((c) => covers(c, w)));
    for (const w of wanted.filter((w) => !accepted.includes(w))) {
      this.#warn(
        ConfigWarningCode.WORKSPACE_LOOSENS,
        layer,
        entry,
        `Ignored ${JSON.stringify(w)} of ${entry.key} in ${at}: a workspace may only narrow ` +
          `allowed_paths to paths the current list allows (${now})`,
      );
    }
    if (accepted.length === 0) return;
    this.#set(entry.path, unique(accepted));
    this.#record(entry.key, origin);
  }

  #checkPrice(layer: ConfigLayer, entry: LayerEntry): ModelPrice {
    const value = isTable(entry.value) ? entry.value : {};
    const [input, output] = PRICE_FIELDS.map((f) => value[f]);
    const isPrice = (n: unknown): n is number =>
      typeof n === "number" && Number.isFinite(n) && n >= 0;
    if (
      entry.path.length !== 2 || !checkPriceKey(entry.path[1]) ||
      Object.keys(value).length !== PRICE_FIELDS.length || !isPrice(input) || !isPrice(output)
    ) {
      throw new ConfigError(
        ConfigCode.CONFIG_TYPE,
        `${where(layer, entry)}: ${entry.key}: expected a "provider/model" key with ` +
          "input_per_mtok and output_per_mtok numbers ≥ 0",
        { data: { file: layer.file, line: entry.line, key: entry.key } },
      );
    }
    return { input_per_mtok: input, output_per_mtok: output };
  }

  #get(path: readonly string[]): unknown {
    let node: unknown = this.#config;
    for (const p of path) node = (node as Record<string, unknown>)[p];
    return node;
  }

  #set(path: readonly string[], value: unknown): void {
    let node = this.#config as unknown as Record<string, unknown>;
    for (const p of path.slice(0, -1)) node = node[p] as Record<string, unknown>;
    node[path[path.length - 1]] = value;
  }

  #record(key: string, origin: ConfigOrigin): void {
    (this.#sources[key] ??= []).push(origin);
  }

  #warn(code: ConfigWarningCode, layer: ConfigLayer, entry: LayerEntry, message: string): void {
    this.#warnings.push({
      code,
      key: entry.key,
      message,
      ...(layer.file !== undefined ? { file: layer.file } : {}),
      ...(entry.line !== undefined ? { line: entry.line } : {}),
    });
  }
}

/** `file:line`, `file`, the variable, or the layer name: where an entry was written. */
function where(layer: ConfigLayer, entry: LayerEntry): string {
  if (layer.file !== undefined) {
    return entry.line !== undefined ? `${layer.file}:${entry.line}` : layer.file;
  }
  return entry.variable ?? `the ${layer.kind} layer`;
}

/** Every dotted key of a config: leaf keys and `pricing."…"` entries. */
function* keysOf(config: ReturnType<typeof cloneDefaults>): Generator<string> {
  for (const spec of CONFIG_KEYS) yield spec.key;
  for (const name of Object.keys(config.pricing)) yield formatKey(["pricing", name]);
}
