/**
 * Configuration of the kernel: the typed {@link AstridConfig} with compiled defaults, its
 * layers (defaults < env < system < user < workspace, DESIGN §6), validation with
 * file:line messages, the workspace tightening rule and where each value came from. What the
 * values mean at run time belongs to the folders that read them (security, budget, runtime,
 * storage); `docs/config.md` documents every key.
 *
 * @module
 */
export {
  type AstridConfig,
  type BudgetConfig,
  DEFAULT_CONFIG,
  LOG_LEVELS,
  type LogLevel,
  type ModelConfig,
  type ModelPrice,
  type PolicyConfig,
  type RuntimeConfig,
  SECURITY_MODES,
  type SecurityConfig,
  type SecurityMode,
  type StorageConfig,
} from "./astrid_config.ts";
export { CONFIG_KEYS, type ConfigKeySpec, type WorkspaceRule } from "./config_keys.ts";
export {
  type ConfigLayer,
  type ConfigOrigin,
  type ConfigWarning,
  ConfigWarningCode,
  LAYER_ORDER,
  type LayerEntry,
  type LayerKind,
} from "./config_layer.ts";
export { ENV_VARS, envLayer, type EnvSource } from "./env_layer.ts";
export { type LayerSource, parseLayer } from "./parse_layer.ts";
export { type MergedConfig, mergeLayers } from "./merge_layers.ts";
export {
  type ConfigFiles,
  type ConfigFileStatus,
  configPaths,
  loadConfig,
  type LoadConfigOptions,
  type LoadedConfig,
} from "./load_config.ts";
export { priceFor } from "./price_for.ts";
export { ConfigCode, ConfigError, type ConfigErrorData } from "./errors.ts";
