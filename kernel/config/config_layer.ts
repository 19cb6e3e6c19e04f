/**
 * The shapes layers are passed around in: a layer is a validated list of entries, each a key,
 * its value and where it was written. Producing layers (parsing, reading the environment) and
 * merging them are separate steps, so merging can be tested without disk.
 *
 * @module
 */

/** The config layers, lowest precedence first. */
export const LAYER_ORDER = ["defaults", "env", "system", "user", "workspace"] as const;

/** A config layer kind (DESIGN §6: workspace > user > system > env > defaults). */
export type LayerKind = typeof LAYER_ORDER[number];

/** One validated value of a layer. */
export interface LayerEntry {
  /** Dotted key as TOML writes it: `security.mode`, `pricing."local/*"`. */
  readonly key: string;
  /** The key split into names (`["pricing", "local/*"]`). */
  readonly path: readonly string[];
  /** The normalised value (`yolo` is already `autonomous`). */
  readonly value: unknown;
  /** The value as written, for messages (`"yolo"`). */
  readonly raw: unknown;
  /** 1-based line in the layer's file, when it could be located. */
  readonly line?: number;
  /** 1-based column in the layer's file, when known. */
  readonly column?: number;
  /** The environment variable, for the env layer. */
  readonly variable?: string;
}

/** A validated layer, ready for `mergeLayers`. */
export interface ConfigLayer {
  /** Which layer this is; decides its precedence and whether the tightening rule applies. */
  readonly kind: LayerKind;
  /** The file it was read from (absent for `env` and `defaults`). */
  readonly file?: string;
  /** Its values, in file order. */
  readonly entries: readonly LayerEntry[];
}

/** Where a config value came from. */
export interface ConfigOrigin {
  /** The layer. */
  readonly layer: LayerKind;
  /** The file, for file layers. */
  readonly file?: string;
  /** The 1-based line in `file`, when known. */
  readonly line?: number;
  /** The environment variable, for the env layer. */
  readonly variable?: string;
}

/** Codes of {@link ConfigWarning}. */
export const ConfigWarningCode = {
  /** A workspace value would loosen security (higher mode or budget, longer timeout, wider allow-list). */
  WORKSPACE_LOOSENS: "WORKSPACE_LOOSENS",
  /** A workspace set a key it may never set (pricing, storage.url, daemon-wide runtime keys). */
  WORKSPACE_FORBIDDEN: "WORKSPACE_FORBIDDEN",
} as const;

/** A code of {@link ConfigWarningCode}. */
export type ConfigWarningCode = typeof ConfigWarningCode[keyof typeof ConfigWarningCode];

/** A value that was ignored, and why. Loading goes on; the CLI shows these to the operator. */
export interface ConfigWarning {
  /** What kind of problem. */
  readonly code: ConfigWarningCode;
  /** The file that set the value. */
  readonly file?: string;
  /** The 1-based line in `file`, when known. */
  readonly line?: number;
  /** The dotted key. */
  readonly key: string;
  /** A full sentence naming the value, file, line, key and reason. */
  readonly message: string;
}
