/**
 * Loads the layered configuration from disk and the environment:
 * compiled defaults < env vars < system (`$ASTRID_HOME/etc/config.toml`) < user
 * (`$ASTRID_HOME/home/{principal}/.config/config.toml`) < workspace
 * (`<workspace>/.astrid/config.toml`). Missing files are skipped; unreadable ones are errors.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { resolveHomePath } from "../home/mod.ts";
import { DEFAULT_PRINCIPAL, principalId } from "../identity/mod.ts";
import type { LayerKind } from "./config_layer.ts";
import { envLayer, type EnvSource } from "./env_layer.ts";
import { ConfigCode, ConfigError } from "./errors.ts";
import { type MergedConfig, mergeLayers } from "./merge_layers.ts";
import { parseLayer } from "./parse_layer.ts";

/** Reads config files; `undefined` means the file does not exist. */
export interface ConfigFiles {
  /** The text of `path`, or undefined when it does not exist; throws when it cannot be read. */
  readText(path: string): Promise<string | undefined>;
}

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** The Astrid home (default: `$ASTRID_HOME`, else `~/.astrid`, resolved from `env`). */
  homeDir?: string;
  /** Whose user layer to read (default `default`). */
  principal?: string;
  /** The workspace root; without it there is no workspace layer. */
  workspace?: string;
  /** The environment (default `Deno.env`). */
  env?: EnvSource;
  /** How files are read (default: the disk). */
  files?: ConfigFiles;
}

/** A config file that {@link loadConfig} consulted. */
export interface ConfigFileStatus {
  /** Its layer. */
  readonly kind: Exclude<LayerKind, "defaults" | "env">;
  /** Its absolute path. */
  readonly path: string;
  /** False when it does not exist. */
  readonly found: boolean;
}

/** The result of {@link loadConfig}: the merged config, warnings, origins and files. */
export interface LoadedConfig extends MergedConfig {
  /** The files consulted, lowest precedence first. */
  readonly files: readonly ConfigFileStatus[];
}

/** The config files of each layer, lowest precedence first. */
export function configPaths(
  options: { homeDir: string; principal?: string; workspace?: string },
): { kind: ConfigFileStatus["kind"]; path: string }[] {
  const home = resolve(options.homeDir);
  const principal = principalId(options.principal ?? DEFAULT_PRINCIPAL);
  const paths: { kind: ConfigFileStatus["kind"]; path: string }[] = [
    { kind: "system", path: join(home, "etc", "config.toml") },
    { kind: "user", path: join(home, "home", principal, ".config", "config.toml") },
  ];
  if (options.workspace !== undefined) {
    paths.push({
      kind: "workspace",
      path: join(resolve(options.workspace), ".astrid", "config.toml"),
    });
  }
  return paths;
}

/** Reads every layer and merges them; throws {@link ConfigError} on the first bad value. */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const env = options.env ?? Deno.env;
  const files = options.files ?? diskFiles;
  const paths = configPaths({
    homeDir: options.homeDir ?? resolveHomePath(env),
    principal: options.principal,
    workspace: options.workspace,
  });
  const texts = await Promise.all(paths.map((p) => files.readText(p.path)));
  const layers = [envLayer(env)];
  const status: ConfigFileStatus[] = [];
  paths.forEach((p, i) => {
    const text = texts[i];
    status.push({ kind: p.kind, path: p.path, found: text !== undefined });
    if (text !== undefined) layers.push(parseLayer(text, { kind: p.kind, file: p.path }));
  });
  return { ...mergeLayers(layers), files: status };
}

/** Reads from disk: NotFound is a missing file; any other failure is `CONFIG_READ`. */
const diskFiles: ConfigFiles = {
  async readText(path) {
    try {
      return await Deno.readTextFile(path);
    } catch (cause) {
      if (cause instanceof Deno.errors.NotFound) return undefined;
      throw new ConfigError(
        ConfigCode.CONFIG_READ,
        `Cannot read config file "${path}": ${(cause as Error).message}: ` +
          "check that it is a readable file, or remove it",
        { data: { file: path }, cause },
      );
    }
  },
};
