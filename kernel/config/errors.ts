/**
 * Errors of configuration loading.
 *
 * @module
 */
import { AstridError } from "../errors.ts";

/** Codes raised by `kernel/config/`. */
export const ConfigCode = {
  /** A config file is not valid TOML; `data.file`, `data.line` and `data.column` locate it. */
  CONFIG_PARSE: "CONFIG_PARSE",
  /** A value has the wrong type, range or form; `data.file`, `data.line` and the dotted `data.key`. */
  CONFIG_TYPE: "CONFIG_TYPE",
  /** A key is not part of the config schema; `data.file`, `data.line`, `data.key`, `data.suggestion`. */
  CONFIG_UNKNOWN_KEY: "CONFIG_UNKNOWN_KEY",
  /** An `ASTRID_*` environment variable has a bad value; `data.variable` and `data.key`. */
  CONFIG_ENV: "CONFIG_ENV",
  /** A config file exists but cannot be read (permissions, a directory); `data.file`. */
  CONFIG_READ: "CONFIG_READ",
} as const;

/** A code of {@link ConfigCode}. */
export type ConfigCode = typeof ConfigCode[keyof typeof ConfigCode];

/** Where a config problem is: every field that is known. */
export interface ConfigErrorData {
  /** The config file (absent for environment variables). */
  file?: string;
  /** 1-based line in `file`, when it could be located. */
  line?: number;
  /** 1-based column in `file`, when known. */
  column?: number;
  /** The dotted key, e.g. `security.policy.denied_paths`. */
  key?: string;
  /** The environment variable, for `CONFIG_ENV`. */
  variable?: string;
  /** The closest known key, for `CONFIG_UNKNOWN_KEY`. */
  suggestion?: string;
}

/** Raised when configuration cannot be read, parsed or validated. */
export class ConfigError extends AstridError<ConfigCode, ConfigErrorData> {}
