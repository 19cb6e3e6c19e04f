/**
 * A temporary Astralis installation for end-to-end tests through the real CLI and daemon: a short
 * `ASTRID_HOME`, workspaces, the astralis capsules copied from `capsules/` into a temporary source
 * tree (the provider manifests' `net` lists rewritten to `127.0.0.1:*`, so a fake on port 0 is
 * reachable: the shipped lists only name the fixed local-server ports), a temporary `Distro.toml`
 * naming them, installed with `astrid init --distro <that file>`, prices for the fake models in
 * `$ASTRID_HOME/etc/config.toml`, and the daemon started with `astrid start`.
 *
 * Why `astrid init --distro <temp Distro.toml>` and not the shipped `distros/astralis`: init is the
 * operator's path (groups, variables, `[env]` templates, the lock), and the temporary file lets the
 * sources be the loopback copies and lists the capsules that exist now (session, cache, router are
 * added when their `capsules/<name>/` exists). Per-test fakes need no reinstall: the providers and
 * the orchestrator read their `[env]` values on every call, so {@link AstralisEnv.setEnv} rewrites
 * the principal's stored values (`home/<principal>/.config/env/<capsule>.env.json`, the file
 * `astrid capsule install --env` writes) to point a provider at another fake or the orchestrator at
 * another route. Extra capsules (the crash tool) go in with `astrid capsule install <dir>`.
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

/** The capsules of the temporary distro, in install order, and the group each belongs to. */
const DISTRO_CAPSULES: { name: string; group?: string; loopback?: boolean }[] = [
  { name: "prompt-builder" },
  { name: "orchestrator" },
  { name: "tools-fs" },
  { name: "tools-shell" },
  { name: "provider-anthropic", group: "anthropic", loopback: true },
  { name: "provider-openai-compat", group: "openai", loopback: true },
];

/**
 * Capsules being written while these tests were (issue 9): installed after init with
 * `astrid capsule install <dir>` when `capsules/<name>/` exists, each on its own, so one that does
 * not build yet fails only the cases that need it ({@link AstralisEnv.optional} says why). The
 * cache starts disabled so it answers only the case that turns it on.
 */
const OPTIONAL_CAPSULES: { name: string; env: Record<string, string> }[] = [
  { name: "session", env: {} },
  { name: "cache", env: { ENABLED: "false" } },
  { name: "router", env: {} },
];

/** The model the fakes serve, priced for both providers (and the router) in etc/config.toml. */
export const FAKE_MODEL = "fake-model";

/** True when `capsules/<name>/Capsule.toml` exists (in the source tree the tests copy). */
export async function capsuleExists(name: string): Promise<boolean> {
  try {
    return (await Deno.stat(join(CAPSULES, name, "Capsule.toml"))).isFile;
  } catch {
    return false;
  }
}

/** The temporary Distro.toml naming `names` under `root`. */
function distroToml(names: string[]): string {
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
    if (!names.includes(c.name)) continue;
    lines.push("", "[[capsule]]", `name = "${c.name}"`, `source = "${c.name}"`, 'version = "^0.1"');
    if (c.group !== undefined) lines.push(`group = "${c.group}"`);
    if (c.name === "orchestrator") {
      lines.push(
        'env = { PROVIDER = "{{ provider }}", MODEL = "{{ model }}", STEP_TIMEOUT_MS = "30000", ' +
          'TOOL_TIMEOUT_MS = "30000" }',
      );
    } else if (c.name === "provider-anthropic") {
      lines.push(
        'env = { API_KEY = "{{ anthropic_api_key }}", BASE_URL = "{{ anthropic_base_url }}", ' +
          `MODEL = "${FAKE_MODEL}", RETRY_WAIT_MAX_MS = "0" }`,
      );
    } else if (c.name === "provider-openai-compat") {
      lines.push(
        'env = { API_KEY = "{{ openai_api_key }}", BASE_URL = "{{ openai_base_url }}", ' +
          `MODEL = "${FAKE_MODEL}", RETRY_WAIT_MAX_MS = "0" }`,
      );
    }
  }
  return lines.join("\n") + "\n";
}

/** Options of {@link AstralisEnv.create}. */
export interface AstralisEnvOptions {
  /** The security mode written to etc/config.toml (default `autonomous`). */
  mode?: "safe" | "guided" | "autonomous";
  /** The API key the fakes require (default `sk-e2e`). */
  apiKey?: string;
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
  /** Each optional capsule: null when installed, else why it is not. */
  readonly optional = new Map<string, string | null>();
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
    const names = DISTRO_CAPSULES.map((c) => c.name);
    const env = new AstralisEnv(root, names);
    try {
      await Deno.mkdir(env.home, { recursive: true });
      for (const c of DISTRO_CAPSULES) {
        if (!names.includes(c.name)) continue;
        const copy = c.loopback === true ? loopbackCopy : copyCapsule;
        await copy(c.name, env.sources, { from: CAPSULES });
      }
      const distro = join(root, "Distro.toml");
      await Deno.writeTextFile(distro, distroToml(names));
      await env.writeConfig({ mode: options.mode ?? "autonomous" });
      const key = options.apiKey ?? "sk-e2e";
      const init = await env.astrid([
        "init",
        "--distro",
        distro,
        "--group",
        "anthropic,openai",
        "--var",
        `anthropic_api_key=${key}`,
        "--var",
        `openai_api_key=${key}`,
        "--yes",
      ], { cwd: root });
      env.initOutput = init.stdout + init.stderr;
      if (init.code !== 0) {
        throw new Error(`astrid init failed with exit code ${init.code}:\n${env.initOutput}`);
      }
      for (const c of OPTIONAL_CAPSULES) {
        if (!(await capsuleExists(c.name))) {
          env.optional.set(c.name, `capsules/${c.name}/Capsule.toml does not exist yet`);
          continue;
        }
        const dest = await copyCapsule(c.name, env.sources, { from: CAPSULES });
        const envArgs = Object.entries(c.env).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
        const r = await env.astrid(["capsule", "install", dest, "--yes", ...envArgs], {
          cwd: root,
        });
        env.optional.set(
          c.name,
          r.code === 0 ? null : `astrid capsule install failed (${r.code}): ${r.stderr}${r.stdout}`,
        );
      }
      return env;
    } catch (err) {
      await env.close();
      throw err;
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
