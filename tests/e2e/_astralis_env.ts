/**
 * A temporary Astralis installation for end-to-end tests through the real CLI and daemon: a short
 * `ASTRID_HOME`, workspaces, the astralis capsules copied from `capsules/` into a temporary source
 * tree (the provider manifests' `net` lists rewritten to `127.0.0.1:*`, so a fake on port 0 is
 * reachable: the shipped lists only name the fixed local-server ports), a temporary `Distro.toml`
 * naming them, installed with `astrid init --distro <that file>`, prices for the fake models in
 * `$ASTRID_HOME/etc/config.toml`, and the daemon started with `astrid start`.
 *
 * Why `astrid init --distro <temp Distro.toml>` ({@link AstralisEnv.create}) and not the shipped
 * `distros/astralis`: init is the operator's path (groups, variables, `[env]` templates, the lock),
 * and the temporary file lets the sources be the loopback copies, both provider groups be installed
 * at once and the orchestrator call a provider route directly. Every capsule it names is required:
 * a failed install fails init, and so the test. Per-test fakes need no reinstall: the providers and
 * the orchestrator read their `[env]` values on every call, so {@link AstralisEnv.setEnv} rewrites
 * the principal's stored values (`home/<principal>/.config/env/<capsule>.env.json`, the file
 * `astrid capsule install --env` writes) to point a provider at another fake or the orchestrator at
 * another route. Extra capsules (the crash tool) go in with `astrid capsule install <dir>`.
 *
 * {@link AstralisEnv.createShipped} installs the shipped `distros/astralis/Distro.toml` itself,
 * unchanged: the file is copied to `<root>/distros/astralis/` beside copies of the capsules it
 * names under `<root>/capsules/` (the providers' loopback copies), so its `source_root = "../.."`
 * resolves to the temporary tree, and `astrid init` runs with the operator's groups and variables.
 *
 * Every child runs under a hard kill deadline (`CLI_DEADLINE_MS` of `tests/fixtures/run_astrid.ts`);
 * {@link AstralisEnv.close} stops the daemon (and kills it by its lock-file pid if `stop` failed)
 * and removes every directory.
 *
 * @module
 */
import { join } from "node:path";
import { testBuildCacheDir } from "../../sdk/testing/mod.ts";
import { setCapsuleEnv } from "../fixtures/capsule_env.ts";
import { copyCapsule, loopbackCopy } from "../fixtures/loopback_capsule.ts";
import {
  type AstridRun,
  type AuditRow,
  runAstrid,
  type RunAstridOptions,
} from "../fixtures/run_astrid.ts";

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
/**
 * Where the capsule sources are copied from: the repository's `capsules/`, or the directory in
 * `ASTRID_E2E_CAPSULES` (a tree of the same shape, e.g. a checkout of another commit's capsules).
 */
const CAPSULES = Deno.env.get("ASTRID_E2E_CAPSULES") || join(REPO, "capsules");

/** The model the fakes serve, priced for both providers (and the router) in etc/config.toml. */
export const FAKE_MODEL = "fake-model";

/** The repository's shipped Astralis distro. */
export const SHIPPED_DISTRO = join(REPO, "distros", "astralis", "Distro.toml");

/** The capsules whose `net` list is rewritten to loopback in the copies (the providers). */
const LOOPBACK = new Set(["provider-anthropic", "provider-openai-compat"]);

/**
 * The capsules of the temporary distro, in install order, the group each belongs to and its
 * `env` table's members. The cache starts disabled so it answers only the case that turns it on.
 */
const DISTRO_CAPSULES: { name: string; group?: string; env?: string }[] = [
  { name: "session" },
  { name: "prompt-builder" },
  {
    name: "orchestrator",
    env: 'PROVIDER = "{{ provider }}", MODEL = "{{ model }}", STEP_TIMEOUT_MS = "30000", ' +
      'TOOL_TIMEOUT_MS = "30000"',
  },
  { name: "router" },
  { name: "cache", env: 'ENABLED = "false"' },
  { name: "tools-fs" },
  { name: "tools-shell" },
  {
    name: "provider-anthropic",
    group: "anthropic",
    env: 'API_KEY = "{{ anthropic_api_key }}", BASE_URL = "{{ anthropic_base_url }}", ' +
      `MODEL = "${FAKE_MODEL}", RETRY_WAIT_MAX_MS = "0"`,
  },
  {
    name: "provider-openai-compat",
    group: "openai",
    env: 'API_KEY = "{{ openai_api_key }}", BASE_URL = "{{ openai_base_url }}", ' +
      `MODEL = "${FAKE_MODEL}", RETRY_WAIT_MAX_MS = "0"`,
  },
];

/** The temporary Distro.toml naming the {@link DISTRO_CAPSULES} under `capsules/`. */
function distroToml(): string {
  const lines = [
    "schema_version = 1",
    "",
    "[distro]",
    'name = "astralis-e2e"',
    'version = "0.1.0"',
    'description = "Astralis for the end-to-end tests: loopback providers"',
    'source_root = "capsules"',
    "",
    "[variables]",
    'anthropic_api_key = { description = "key", secret = true, required = true }',
    'anthropic_base_url = { description = "base URL", default = "http://127.0.0.1:9" }',
    'openai_api_key = { description = "key", secret = true, required = true }',
    'openai_base_url = { description = "base URL", default = "http://127.0.0.1:9/v1" }',
    'provider = { description = "route", default = "openai" }',
    `model = { description = "model", default = "${FAKE_MODEL}" }`,
    "",
    "[[group]]",
    'name = "anthropic"',
    "",
    "[[group]]",
    'name = "openai"',
  ];
  for (const c of DISTRO_CAPSULES) {
    lines.push("", "[[capsule]]", `name = "${c.name}"`, `source = "${c.name}"`, 'version = "^0.1"');
    if (c.group !== undefined) lines.push(`group = "${c.group}"`);
    if (c.env !== undefined) lines.push(`env = { ${c.env} }`);
  }
  return lines.join("\n") + "\n";
}

/** The capsule names a Distro.toml's `[[capsule]]` sources name (`source = "capsules/<name>"`). */
function shippedCapsules(distro: string): string[] {
  return [...distro.matchAll(/^source = "capsules\/([a-z0-9-]+)"$/gm)].map((m) => m[1]);
}

/** Copies capsule `name` into `into` (a loopback copy for a provider). */
function copyInto(name: string, into: string): Promise<string> {
  return (LOOPBACK.has(name) ? loopbackCopy : copyCapsule)(name, into, { from: CAPSULES });
}

/** Options of {@link AstralisEnv.create}. */
export interface AstralisEnvOptions {
  /** The security mode written to etc/config.toml (default `autonomous`). */
  mode?: "safe" | "guided" | "autonomous";
  /** The API key the fakes require (default `sk-e2e`). */
  apiKey?: string;
}

/** Options of {@link AstralisEnv.createShipped}. */
export interface ShippedEnvOptions {
  /** The security mode written to etc/config.toml (default `autonomous`). */
  mode?: "safe" | "guided" | "autonomous";
  /** The `--group`s selected (e.g. `["openai"]`). */
  groups: readonly string[];
  /** The `--var name=value` answers. */
  vars: Readonly<Record<string, string>>;
}

/** One temporary Astralis home with its capsules installed and (after `start`) its daemon. */
export class AstralisEnv implements AsyncDisposable {
  /** The temporary root holding everything. */
  readonly root: string;
  /** `ASTRID_HOME`. */
  readonly home: string;
  /** The capsule source tree the distro installs from. */
  readonly sources: string;
  /** The capsules installed by init (names). */
  readonly capsules: readonly string[];
  /** The init output, for diagnostics. */
  initOutput = "";
  #workspaces: string[] = [];
  #started = false;

  private constructor(root: string, capsules: string[]) {
    this.root = root;
    this.home = join(root, "h");
    this.sources = join(root, "capsules");
    this.capsules = capsules;
  }

  /**
   * Copies the capsules, writes the distro, runs `astrid init` for both provider groups (the
   * providers pointed nowhere until {@link setEnv}) and writes etc/config.toml. Does not start the
   * daemon.
   */
  static async create(options: AstralisEnvOptions = {}): Promise<AstralisEnv> {
    // Short: the daemon socket lives under the home and unix socket paths are limited.
    const root = await Deno.makeTempDir({ dir: "/tmp", prefix: "ae" });
    const env = new AstralisEnv(root, DISTRO_CAPSULES.map((c) => c.name));
    try {
      for (const name of env.capsules) await copyInto(name, env.sources);
      const distro = join(root, "Distro.toml");
      await Deno.writeTextFile(distro, distroToml());
      const key = options.apiKey ?? "sk-e2e";
      await env.#init(distro, options.mode ?? "autonomous", ["anthropic", "openai"], {
        anthropic_api_key: key,
        openai_api_key: key,
      });
      return env;
    } catch (err) {
      await env.close();
      throw err;
    }
  }

  /**
   * Installs the shipped `distros/astralis/Distro.toml`, unchanged, with `groups` and `vars`: the
   * file is copied to `<root>/distros/astralis/` and every capsule it names to `<root>/capsules/`
   * (the providers as loopback copies), so its `source_root = "../.."` is `<root>`. Writes
   * etc/config.toml; does not start the daemon. Throws when init fails.
   */
  static async createShipped(options: ShippedEnvOptions): Promise<AstralisEnv> {
    const text = await Deno.readTextFile(SHIPPED_DISTRO);
    const root = await Deno.makeTempDir({ dir: "/tmp", prefix: "as" });
    const env = new AstralisEnv(root, shippedCapsules(text));
    try {
      if (env.capsules.length === 0) {
        throw new Error(`${SHIPPED_DISTRO} names no capsules/<name> source`);
      }
      for (const name of env.capsules) await copyInto(name, env.sources);
      const dir = join(root, "distros", "astralis");
      await Deno.mkdir(dir, { recursive: true });
      const distro = join(dir, "Distro.toml");
      await Deno.writeTextFile(distro, text);
      await env.#init(distro, options.mode ?? "autonomous", options.groups, options.vars);
      return env;
    } catch (err) {
      await env.close();
      throw err;
    }
  }

  /** Writes etc/config.toml and runs `astrid init --distro <distro> --yes`; throws on failure. */
  async #init(
    distro: string,
    mode: "safe" | "guided" | "autonomous",
    groups: readonly string[],
    vars: Readonly<Record<string, string>>,
  ): Promise<void> {
    await Deno.mkdir(this.home, { recursive: true });
    await this.writeConfig({ mode });
    const init = await this.astrid([
      "init",
      "--distro",
      distro,
      "--group",
      groups.join(","),
      ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}=${v}`]),
      "--yes",
    ], { cwd: this.root });
    this.initOutput = init.stdout + init.stderr;
    if (init.code !== 0) {
      throw new Error(`astrid init failed with exit code ${init.code}:\n${this.initOutput}`);
    }
  }

  /**
   * Writes `$ASTRID_HOME/etc/config.toml`: the security mode and a price for the fake model of
   * every provider route (the budget layer refuses unpriced models, docs/config.md `[pricing]`).
   * The daemon reads it at boot: call {@link restart} after a change.
   */
  async writeConfig(options: { mode: "safe" | "guided" | "autonomous" }): Promise<void> {
    const priced = [
      "openai",
      "anthropic",
      "provider-openai-compat",
      "provider-anthropic",
      "router",
    ];
    const lines = ["[security]", `mode = "${options.mode}"`];
    for (const p of priced) {
      lines.push(
        "",
        `[pricing."${p}/${FAKE_MODEL}"]`,
        "input_per_mtok = 1.0",
        "output_per_mtok = 2.0",
      );
    }
    await Deno.mkdir(join(this.home, "etc"), { recursive: true });
    await Deno.writeTextFile(join(this.home, "etc", "config.toml"), lines.join("\n") + "\n");
  }

  /** Makes a workspace (an `.astrid/` marker and `files`) and returns its real path. */
  async workspace(name: string, files: Record<string, string> = {}): Promise<string> {
    const dir = join(this.root, "w", name);
    await Deno.mkdir(join(dir, ".astrid"), { recursive: true });
    for (const [path, text] of Object.entries(files)) {
      await Deno.writeTextFile(join(dir, path), text);
    }
    const real = await Deno.realPath(dir);
    this.#workspaces.push(real);
    return real;
  }

  /** Runs `astrid …` (the real `main.ts` in a child) under the hard deadline. */
  astrid(args: string[], options: RunAstridOptions = {}): Promise<AstridRun> {
    return runAstrid(this.home, args, {
      ...options,
      cwd: options.cwd ?? this.#workspaces[0] ?? this.root,
      env: { ASTRID_BUILD_CACHE: testBuildCacheDir(), ASTRID_NO_PROMPT: "1", ...options.env },
    });
  }

  /** Replaces some of `capsule`'s stored `[env]` values for `principal` (read on every call). */
  async setEnv(
    capsule: string,
    values: Record<string, string>,
    principal = "default",
  ): Promise<void> {
    await setCapsuleEnv({ home: this.home, capsule, principal }, values);
  }

  /** `astrid capsule install <dir> --yes` (extra `--env K=V` from `env`); throws when it fails. */
  async installCapsule(dir: string, env: Record<string, string> = {}): Promise<void> {
    const envArgs = Object.entries(env).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
    const r = await this.astrid(["capsule", "install", dir, "--yes", ...envArgs], {
      cwd: this.root,
    });
    if (r.code !== 0) {
      throw new Error(`astrid capsule install ${dir} failed (${r.code}): ${r.stderr}${r.stdout}`);
    }
  }

  /** `astrid start` (a persistent daemon). */
  async start(): Promise<void> {
    const r = await this.astrid(["start"], { cwd: this.root });
    if (r.code !== 0) throw new Error(`astrid start failed (${r.code}): ${r.stderr}${r.stdout}`);
    this.#started = true;
  }

  /** Stops the daemon (killing it by pid if `stop` fails). */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    const r = await this.astrid(["stop"], { cwd: this.root }).catch(() => undefined);
    if (r?.code === 0) return;
    const pid = Number.parseInt(
      await Deno.readTextFile(join(this.home, "run", "system.lock")).catch(() => ""),
      10,
    );
    if (Number.isSafeInteger(pid) && pid > 0) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }

  /** Stops and starts the daemon (it reads etc/config.toml at boot). */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** The newest `limit` audit rows of the default principal. */
  async audit(limit = 1000): Promise<AuditRow[]> {
    const r = await this.astrid(["audit", "show", "--json", "--limit", String(limit)], {
      cwd: this.root,
    });
    if (r.code !== 0) throw new Error(`astrid audit show failed (${r.code}): ${r.stderr}`);
    const text = r.stdout.trim();
    return text === "" ? [] : text.split("\n").map((l) => JSON.parse(l) as AuditRow);
  }

  /** Stops the daemon and removes every temporary directory. */
  async close(): Promise<void> {
    await this.stop();
    await Deno.remove(this.root, { recursive: true }).catch(() => {});
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
