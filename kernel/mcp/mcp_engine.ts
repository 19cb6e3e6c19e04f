/**
 * `McpEngine`: the mcp engine wired to a booted kernel — what the daemon holds. It
 *
 * 1. reads `etc/servers.toml` (the operator's servers and `[settings]`);
 * 2. asks the sandbox whether it works here (`sandboxStatus`): a {@link SandboxLauncher} when
 *    it does; otherwise a {@link DirectLauncher} that starts servers only when the operator
 *    set `allow_unsandboxed`, each start warned (and every server refused without it);
 * 3. builds the {@link McpHost} (scratch in `var/mcp/`, server logs in `log/mcp/<server>.log`,
 *    grants to `home://`/`global://` resolved under the home);
 * 4. declares the operator's servers, then the `[[mcp_server]]` entries of every loaded capsule
 *    of the registry — and keeps them in step: after each `astrid.v1.capsules_loaded` the
 *    capsules' servers are synced (new capsules' servers probed, unloaded ones' stopped);
 * 5. starts (each server probed for its catalog).
 *
 * {@link McpEngine.reloadConfig} re-reads `servers.toml` (changed, added and removed operator
 * servers) without restarting the daemon; {@link McpHost.reload} restarts one server.
 *
 * @module
 */
import { join } from "node:path";
import type { CapsuleManifest } from "../capsule/mod.ts";
import type { Clock } from "../clock.ts";
import type { BusMessage, EventBus, Listener, Timers } from "../events/mod.ts";
import type { AstridHome } from "../home/mod.ts";
import type { SandboxStatus } from "../sandbox/mod.ts";
import { overlaySessionDir, OverlayVfs } from "../vfs/mod.ts";
import type { McpElicitor } from "./elicit_relay.ts";
import { DirectLauncher, type McpLauncher } from "./launcher.ts";
import {
  type McpAudit,
  McpHost,
  type McpOwner,
  type McpScopeResolver,
  type McpSecurity,
  type McpServerStatus,
  SESSION_ENDED_TOPIC,
} from "./mcp_host.ts";
import { fileLogSink } from "./mcp_log.ts";
import { type BackgroundSandbox, SandboxLauncher } from "./sandbox_launcher.ts";
import type { McpLogEntry } from "./server_instance.ts";
import { type McpServerSpec, specsFromManifest } from "./server_spec.ts";
import { loadServersToml, type McpSettings } from "./servers_toml.ts";

/** What the engine needs of the sandbox (`NativeSandbox` fits). */
export interface EngineSandbox extends BackgroundSandbox {
  /** Whether the namespace sandbox works here. */
  status(): Promise<SandboxStatus>;
}

/** A loaded capsule, as the engine reads it (`LoadedCapsule` fits). */
export interface LoadedCapsuleView {
  /** Its key (bus source name). */
  readonly key: string;
  /** Its name. */
  readonly name: string;
  /** Its scope. */
  readonly scope: {
    readonly kind: string;
    readonly principal: string;
    readonly workspaceId?: string;
  };
  /** Its install record. */
  readonly record: { readonly dir: string; readonly manifest: CapsuleManifest };
}

/** The capsule registry, as the engine reads it (`CapsuleRegistry` fits). */
export interface CapsuleSource {
  /** Every known capsule. */
  listAll(): readonly {
    readonly key: string;
    readonly state: string;
    readonly engines: readonly string[];
  }[];
  /** The loaded capsule `key`. */
  capsule(key: string): LoadedCapsuleView | undefined;
}

/** Options of {@link McpEngine.open}. */
export interface McpEngineOptions {
  /** The Astrid home (`etc/servers.toml`, `var/mcp/`, `log/mcp/`). */
  home: AstridHome;
  /** The bus. */
  bus: EventBus;
  /** The security pipeline every call passes. */
  security: McpSecurity;
  /** The audit log. */
  audit: McpAudit;
  /** Time. */
  clock: Clock;
  /** Restart and idle timers. */
  timers: Timers;
  /**
   * Finds a session's overlay. Default: opens `overlaySessionDir(home, …)` over the root
   * {@link McpEngineOptions.workspaceRoot} names (handles shared in-process with every other
   * `OverlayVfs` of that session, closed when the session ends).
   */
  resolveScope?: McpScopeResolver;
  /** The root of a workspace id (the daemon's `OverlayService.root`), for the default resolver. */
  workspaceRoot?: (workspaceId: string) => string | undefined;
  /** The native sandbox (none: servers run only with `allow_unsandboxed`). */
  sandbox?: EngineSandbox;
  /** Relays servers' elicitations to the user. */
  elicitor?: McpElicitor;
  /** The capsule registry whose `[[mcp_server]]` entries to run. */
  capsules?: CapsuleSource;
  /** Engine events for the daemon log (refusals, unsandboxed starts). */
  log?: (entry: McpLogEntry) => void;
  /** The servers file (default `<home>/etc/servers.toml`). */
  serversFile?: string;
  /** Overrides of the file's settings (tests). */
  settings?: Partial<McpSettings>;
}

const LOADED_TOPIC = "astrid.v1.capsules_loaded";

/** The engine as the daemon holds it; see the module doc. */
export class McpEngine {
  /** The host running the servers. */
  readonly host: McpHost;
  /** The sandbox's answer (or why there is none). */
  readonly sandbox: SandboxStatus;
  /** The settings in force. */
  readonly settings: McpSettings;
  readonly #o: McpEngineOptions;
  readonly #file: string;
  #operator = new Map<string, McpServerSpec>();
  readonly #capsules = new Set<string>();
  readonly #overlays: Map<string, Promise<OverlayVfs>>;
  #listeners: Listener[] = [];
  #syncing: Promise<void> = Promise.resolve();

  private constructor(
    options: McpEngineOptions,
    parts: {
      host: McpHost;
      sandbox: SandboxStatus;
      settings: McpSettings;
      file: string;
      overlays: Map<string, Promise<OverlayVfs>>;
    },
  ) {
    this.#o = options;
    this.#overlays = parts.overlays;
    this.host = parts.host;
    this.sandbox = parts.sandbox;
    this.settings = parts.settings;
    this.#file = parts.file;
  }

  /**
   * Builds and starts the engine (see the module doc). Rejects with `MCP_CONFIG_INVALID` when
   * `servers.toml` is invalid; a server that cannot start is `refused`, not an error.
   */
  static async open(options: McpEngineOptions): Promise<McpEngine> {
    const file = options.serversFile ?? join(options.home.etc, "servers.toml");
    const parsed = await loadServersToml(file);
    const settings = { ...parsed.settings, ...options.settings };
    const sandbox: SandboxStatus = options.sandbox === undefined
      ? { available: false, mechanism: "none", reason: "no sandbox was given to the engine" }
      : await options.sandbox.status();
    const scratch = join(options.home.var, "mcp");
    const launcher: McpLauncher = sandbox.available && options.sandbox !== undefined
      ? new SandboxLauncher(options.sandbox, { scratchDir: join(scratch, "overlays") })
      : new DirectLauncher();
    const serverLog = fileLogSink(join(options.home.log, "mcp"), options.clock);
    const overlays = new Map<string, Promise<OverlayVfs>>();
    const resolveScope: McpScopeResolver = options.resolveScope ??
      (async ({ principal, session, workspaceId }) => {
        const root = options.workspaceRoot?.(workspaceId);
        if (root === undefined) return undefined;
        const key = `${principal}\0${workspaceId}\0${session}`;
        let overlay = overlays.get(key);
        if (overlay === undefined) {
          overlay = OverlayVfs.open(
            root,
            overlaySessionDir(options.home, { principal, workspaceId, session }),
            { clock: options.clock },
          );
          overlays.set(key, overlay);
          overlay.catch(() => overlays.delete(key));
        }
        return { workspaceRoot: await Deno.realPath(root), overlay: await overlay };
      });
    const host = new McpHost({
      bus: options.bus,
      security: options.security,
      audit: options.audit,
      launcher,
      ...(sandbox.available ? {} : { noSandboxReason: sandbox.reason }),
      settings,
      scratchDir: scratch,
      resolveScope,
      roots: (principal) => ({
        home: options.home.principalDir(principal),
        global: join(options.home.root, "global"),
      }),
      ...(options.elicitor === undefined ? {} : { elicitor: options.elicitor }),
      log: (entry) => {
        serverLog(entry);
        if (entry.level === "error" || (entry.level === "warn" && entry.fields === undefined)) {
          options.log?.(entry);
        }
      },
      clock: options.clock,
      timers: options.timers,
    });
    const engine = new McpEngine(options, { host, sandbox, settings, file, overlays });
    for (const spec of parsed.servers) engine.#operator.set(spec.name, spec);
    await host.addServers(parsed.servers);
    await engine.#syncCapsules();
    if (options.capsules !== undefined) {
      engine.#listeners.push(
        options.bus.listen(LOADED_TOPIC, () => void engine.syncCapsules(), {
          name: "kernel:mcp.capsules",
        }),
      );
    }
    engine.#listeners.push(
      options.bus.listen(SESSION_ENDED_TOPIC, (msg) => void engine.#dropOverlays(msg), {
        name: "kernel:mcp.sessions",
      }),
    );
    await host.start();
    return engine;
  }

  /** Every declared server. */
  servers(): McpServerStatus[] {
    return this.host.servers();
  }

  /** Declares the servers of capsules loaded since the last sync; drops unloaded ones'. */
  syncCapsules(): Promise<void> {
    this.#syncing = this.#syncing.then(() => this.#syncCapsules(), () => this.#syncCapsules());
    return this.#syncing;
  }

  /** Re-reads `servers.toml`: new servers added, removed ones stopped, changed ones reloaded. */
  async reloadConfig(): Promise<McpServerStatus[]> {
    const parsed = await loadServersToml(this.#file);
    const next = new Map(parsed.servers.map((s) => [s.name, s]));
    for (const name of this.#operator.keys()) {
      if (!next.has(name)) await this.host.removeServer(name);
    }
    const added: McpServerSpec[] = [];
    for (const [name, spec] of next) {
      const old = this.#operator.get(name);
      if (old === undefined) added.push(spec);
      else if (JSON.stringify(old) !== JSON.stringify(spec)) await this.host.replaceSpec(spec);
    }
    if (added.length > 0) await this.host.addServers(added);
    this.#operator = next;
    return this.host.servers();
  }

  /** Stops the servers of an overlay so their writes are folded (before a diff). */
  settle(scope: { principal: string; workspaceId: string; session?: string }): Promise<void> {
    return this.host.settle(scope);
  }

  /** Stops every server. */
  async close(): Promise<void> {
    for (const l of this.#listeners.splice(0)) l.close();
    await this.#syncing.catch(() => {});
    await this.host.close();
    for (const o of this.#overlays.values()) (await o.catch(() => undefined))?.close();
    this.#overlays.clear();
  }

  /** Closes the default resolver's overlays of a session that ended (after its servers). */
  async #dropOverlays(msg: BusMessage): Promise<void> {
    if (msg.source.kind !== "kernel" || msg.payload.kind !== "json") return;
    const session = (msg.payload.value as { session?: unknown } | null)?.session;
    if (typeof session !== "string") return;
    await this.host.settleSession(msg.principal, session);
    for (const [key, o] of this.#overlays) {
      const [principal, , s] = key.split("\0");
      if (principal !== msg.principal || s !== session) continue;
      this.#overlays.delete(key);
      (await o.catch(() => undefined))?.close();
    }
  }

  async #syncCapsules(): Promise<void> {
    const source = this.#o.capsules;
    if (source === undefined) return;
    const present = new Set<string>();
    for (const info of source.listAll()) {
      if (info.state !== "loaded" || !info.engines.includes("mcp")) continue;
      present.add(info.key);
      if (this.#capsules.has(info.key)) continue;
      const loaded = source.capsule(info.key);
      if (loaded === undefined) continue;
      const owner: McpOwner = {
        capsuleKey: loaded.key,
        capsule: loaded.name,
        ...(loaded.scope.kind === "system" ? {} : { principal: loaded.scope.principal }),
        ...(loaded.scope.workspaceId === undefined
          ? {}
          : { workspaceId: loaded.scope.workspaceId }),
      };
      try {
        await this.host.addServers(
          specsFromManifest(loaded.record.manifest, loaded.record.dir),
          owner,
        );
        this.#capsules.add(info.key);
      } catch (err) {
        this.#o.log?.({
          level: "error",
          server: loaded.name,
          message: `Cannot run the MCP servers of capsule "${loaded.key}": ${
            (err as Error)?.message ?? err
          }`,
        });
      }
    }
    for (const key of [...this.#capsules]) {
      if (present.has(key)) continue;
      this.#capsules.delete(key);
      await this.host.removeOwner(key);
    }
  }
}
