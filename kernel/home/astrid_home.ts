/**
 * The `$ASTRID_HOME` tree (default `~/.astrid`): where it is, and its FHS-style layout.
 *
 * ```
 * etc/   config.toml, servers.toml      var/  state (SQLite)
 * run/   system.sock, .token, .lock     log/  daemon logs
 * keys/  runtime.key (0600)             bin/  content-addressed wasm
 * home/{principal}/.local/{capsules,log,tmp}  home/{principal}/.config/{config.toml,env/}
 * ```
 *
 * Every directory is created 0700 on first use. There is never a `/tmp` fallback: a home that
 * cannot be resolved is a fatal error.
 *
 * @module
 */
import { isAbsolute, join, resolve } from "node:path";
import { HomeCode, HomeError } from "./errors.ts";

const TOP_DIRS = ["etc", "var", "run", "log", "keys", "bin", "home"] as const;

/** Resolves the home path from an environment: `$ASTRID_HOME`, else `$HOME/.astrid`. */
export function resolveHomePath(env: { get(key: string): string | undefined } = Deno.env): string {
  const explicit = env.get("ASTRID_HOME");
  if (explicit !== undefined && explicit !== "") {
    if (!isAbsolute(explicit)) {
      throw new HomeError(
        HomeCode.HOME_UNRESOLVABLE,
        `ASTRID_HOME must be an absolute path: "${explicit}"`,
        { data: { source: "ASTRID_HOME" } },
      );
    }
    return resolve(explicit);
  }
  const user = env.get("HOME");
  if (user === undefined || user === "" || !isAbsolute(user)) {
    throw new HomeError(
      HomeCode.HOME_UNRESOLVABLE,
      "Cannot resolve the Astrid home: set ASTRID_HOME or HOME to an absolute path",
      { data: { source: "HOME" } },
    );
  }
  return join(resolve(user), ".astrid");
}

/** The paths of one Astrid home. Construct with {@link AstridHome.open}. */
export class AstridHome {
  /** The root directory. */
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  /** Opens (and lays out, 0700) the home at `root`, or the resolved default. */
  static async open(root: string = resolveHomePath()): Promise<AstridHome> {
    const home = new AstridHome(resolve(root));
    await ensureDir(home.root);
    for (const dir of TOP_DIRS) await ensureDir(join(home.root, dir));
    return home;
  }

  /** `etc/`: system configuration. */
  get etc(): string {
    return join(this.root, "etc");
  }
  /** `var/`: persistent state (the SQLite store). */
  get var(): string {
    return join(this.root, "var");
  }
  /** `run/`: the socket, token, lock and ready sentinel. */
  get run(): string {
    return join(this.root, "run");
  }
  /** `log/`: daemon logs. */
  get log(): string {
    return join(this.root, "log");
  }
  /** `keys/`: key material, 0700. */
  get keys(): string {
    return join(this.root, "keys");
  }
  /** `bin/`: content-addressed capsule binaries. */
  get bin(): string {
    return join(this.root, "bin");
  }
  /** `keys/runtime.key`: the runtime's ed25519 signing key. */
  get runtimeKeyPath(): string {
    return join(this.keys, "runtime.key");
  }
  /** `var/state.db`: the embedded store. */
  get statePath(): string {
    return join(this.var, "state.db");
  }
  /** `etc/config.toml`: the system config layer. */
  get systemConfigPath(): string {
    return join(this.etc, "config.toml");
  }

  /** `home/{principal}`: the principal's own tree (not created by this getter). */
  principalDir(principal: string): string {
    return join(this.root, "home", principal);
  }

  /** `home/{principal}/.config/config.toml`: the user config layer of a principal. */
  userConfigPath(principal: string): string {
    return join(this.principalDir(principal), ".config", "config.toml");
  }

  /** Creates the principal's `.local/{capsules,log,tmp}` and `.config/env` dirs (0700). */
  async ensurePrincipal(principal: string): Promise<string> {
    const dir = this.principalDir(principal);
    for (const sub of [".local/capsules", ".local/log", ".local/tmp", ".config/env"]) {
      await ensureDir(join(dir, sub));
    }
    return dir;
  }
}

/** Creates `path` and its parents with mode 0700, and narrows an existing dir to 0700. */
export async function ensureDir(path: string): Promise<void> {
  try {
    await Deno.mkdir(path, { recursive: true, mode: 0o700 });
    const info = await Deno.stat(path);
    if (!info.isDirectory) throw new Error("not a directory");
    if (Deno.build.os !== "windows" && info.mode !== null && (info.mode & 0o077) !== 0) {
      await Deno.chmod(path, 0o700);
    }
  } catch (cause) {
    throw new HomeError(
      HomeCode.HOME_LAYOUT,
      `Cannot create directory "${path}": ${(cause as Error).message}`,
      { data: { path }, cause },
    );
  }
}
