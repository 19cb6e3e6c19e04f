/**
 * The seam between the daemon and the capsule runtime.
 *
 * The daemon does not know how capsules are discovered, loaded or run; it asks a
 * {@link CapsuleHost}. The management requests (`ListCapsules`, `GetCommands`,
 * `GetCapsuleMetadata`, `GetPromptContext`, `ReloadCapsules`) and `status` read it,
 * `TrustCapsule` and `UntrustCapsule` act through its {@link WorkspaceTrustHost}, the idle
 * monitor asks it whether a daemon or cron capsule keeps the daemon up, and shutdown unloads
 * through it.
 *
 * By default the daemon boots the capsule runtime's host (`_runtime_capsule_host.ts`: the
 * `CapsuleRegistry` over a `WasmEngine` whose host calls go through the host ABI); a test or
 * an embedder passes another through `DaemonOptions.capsules`, a factory that receives the
 * booted kernel parts, or {@link EmptyCapsuleHost} for none. The daemon calls
 * {@link CapsuleHost.load} once during boot, before the socket opens, and publishes
 * `astrid.v1.capsules_loaded` after it (and after `ReloadCapsules`).
 *
 * @module
 */
import type { JsonValue } from "../events/mod.ts";

/** One capsule, as `ListCapsules` and `status` show it (snake_case: it goes on the wire). */
export interface CapsuleSummary {
  /** The capsule name. */
  readonly name: string;
  /** Its version. */
  readonly version: string;
  /** Its one-line description. */
  readonly description?: string;
  /**
   * Where it was installed: the operator's (`system`, under principal `default`), a
   * principal's own (`principal`) or a workspace's (`workspace`).
   */
  readonly scope?: "system" | "principal" | "workspace";
  /** Its engines (`wasm`, `mcp`, `static`). */
  readonly engines?: readonly string[];
  /**
   * `loaded`; `failed` (broken record, hash, engine, binding, uplink not ready); `blocked` (an
   * unmet import or a cycle); `untrusted` (a workspace capsule the operator has not trusted).
   */
  readonly state: "loaded" | "failed" | "blocked" | "untrusted";
  /** Why it is not loaded. */
  readonly error?: string;
  /** Its key on the bus (`name`, `name@principal`, `name@principal/workspace`). */
  readonly key?: string;
  /** The workspace id of a workspace capsule. */
  readonly workspace_id?: string;
  /** `ok`, or `unhealthy` when its invocations keep failing. */
  readonly health?: "ok" | "unhealthy";
  /** The last failure, when unhealthy or failing. */
  readonly last_error?: string;
  /** Its run loop: `running`, `restarting`, `returned`, `failed`, `stopped`. */
  readonly run_loop?: string;
  /** For an uplink: whether it signalled ready. */
  readonly ready?: boolean;
}

/** A slash command a capsule declares (`[[command]]`). */
export interface CommandSummary {
  /** The command name, without the slash. */
  readonly name: string;
  /** The capsule declaring it. */
  readonly capsule: string;
  /** What it does. */
  readonly description: string;
}

/** A context file a capsule contributes (`[static] context_files`), as the static engine read it. */
export interface ContextFileSummary {
  /** The capsule's name. */
  readonly capsule: string;
  /** The file as the manifest names it (`static/context.md`). */
  readonly file: string;
  /** Its text. */
  readonly text: string;
}

/** A skill a capsule contributes (`[[skill]]`): its manifest entry and its file's text. */
export interface SkillSummary {
  /** The capsule's name. */
  readonly capsule: string;
  /** The skill's name. */
  readonly name: string;
  /** When to use it. */
  readonly description: string;
  /** The skill file as the manifest names it (`static/skills/research.md`). */
  readonly file: string;
  /** The skill file's text (its instructions). */
  readonly text: string;
}

/** The static context files and skills of the capsules a principal sees, unbounded. */
export interface PromptContextSource {
  /** Context files, by capsule key, then manifest order. */
  readonly context: readonly ContextFileSummary[];
  /** Skills, by capsule key, then manifest order. */
  readonly skills: readonly SkillSummary[];
}

/** What a reload did. */
export interface ReloadReport {
  /** Capsules loaded after the reload. */
  readonly loaded: readonly string[];
  /** Capsules that failed, with reasons. */
  readonly failed: readonly { readonly name: string; readonly error: string }[];
}

/** The operator's decision on a workspace capsule, as the trust store keeps it (wire form). */
export interface TrustDecisionWire {
  /** `blake3:<hex>` of the manifest text trusted. */
  readonly manifest_hash: string;
  /** The `wasm_hash` trusted (`null` for a capsule without `[wasm]`). */
  readonly wasm_hash: string | null;
  /** When, ms since the epoch. */
  readonly trusted_at: number;
  /** Who decided (`operator`). */
  readonly by: string;
}

/** A workspace capsule's install record as it is on disk now (wire form). */
export interface WorkspaceCapsuleWire {
  /** The workspace id. */
  readonly workspace_id: string;
  /** The capsule name. */
  readonly name: string;
  /** Its version. */
  readonly version: string;
  /** `blake3:<hex>` of its manifest text. */
  readonly manifest_hash: string;
  /** Its pinned `wasm_hash` (`null` without `[wasm]`). */
  readonly wasm_hash: string | null;
  /**
   * `trusted` (a decision pins exactly this manifest and binary), `changed` (a decision exists
   * but pins another manifest or binary) or `untrusted` (no decision).
   */
  readonly trust: "trusted" | "changed" | "untrusted";
  /** Its state in the registry, when a load pass saw it (`loaded`, `untrusted`, …). */
  readonly state?: CapsuleSummary["state"];
}

/** What {@link WorkspaceTrustHost.inspect} found; either part may be missing. */
export interface WorkspaceTrustView {
  /** The install record in `<root>/.astrid/capsules/<name>/`, when there is one. */
  readonly installed?: WorkspaceCapsuleWire;
  /** The operator's decision, when there is one. */
  readonly decision?: TrustDecisionWire;
}

/**
 * Workspace trust as the management requests `TrustCapsule` and `UntrustCapsule` use it: the
 * trust store (`StoreWorkspaceTrust`) and the registry's workspace passes. The router audits
 * before it calls {@link trust} or {@link untrust}, then reloads the workspace.
 */
export interface WorkspaceTrustHost {
  /** True when the daemon knows the root of workspace `workspaceId` (a session was bound there). */
  knows(workspaceId: string): boolean;
  /** The install record of capsule `name` in workspace `workspaceId` and the decision on it. */
  inspect(workspaceId: string, name: string): Promise<WorkspaceTrustView>;
  /** Records that the operator trusts `capsule` as inspected (its hashes pinned). */
  trust(capsule: WorkspaceCapsuleWire, options?: { by?: string }): Promise<TrustDecisionWire>;
  /** Forgets the decision on capsule `name` of workspace `workspaceId`; false when none. */
  untrust(workspaceId: string, name: string): Promise<boolean>;
  /** Unloads and loads the trusted capsules of workspace `workspaceId` again. */
  reloadWorkspace(workspaceId: string): Promise<ReloadReport>;
}

/** The daemon's view of the capsule runtime. */
export interface CapsuleHost {
  /** Workspace trust; absent (no capsule runtime), `TrustCapsule` answers `UNAVAILABLE`. */
  readonly workspaceTrust?: WorkspaceTrustHost;
  /** Loads every discovered capsule; called once during boot. */
  load(): Promise<ReloadReport>;
  /** The loaded (and failed) capsules visible to `principal`. */
  list(principal: string): CapsuleSummary[];
  /** The slash commands visible to `principal`. */
  commands(principal: string): CommandSummary[];
  /** One capsule's metadata (manifest summary) for `principal`, or undefined when unknown. */
  metadata(name: string, principal: string): JsonValue | undefined;
  /**
   * The context files and skills of the loaded capsules `principal` sees: the operator's, its
   * own, and those of workspace `options.workspaceId` when given.
   */
  promptContext(principal: string, options?: { workspaceId?: string }): PromptContextSource;
  /** Unloads and loads everything again. */
  reload(): Promise<ReloadReport>;
  /** True while a daemon or cron capsule runs, which keeps an idle daemon up. */
  keepsAlive(): boolean;
  /** Unloads everything (shutdown). */
  close(): Promise<void>;
}

/** The host used until the capsule runtime exists: no capsules, nothing to reload. */
export class EmptyCapsuleHost implements CapsuleHost {
  /** Loads nothing. */
  load(): Promise<ReloadReport> {
    return Promise.resolve({ loaded: [], failed: [] });
  }
  /** No capsules. */
  list(): CapsuleSummary[] {
    return [];
  }
  /** No commands. */
  commands(): CommandSummary[] {
    return [];
  }
  /** Nothing is known. */
  metadata(): JsonValue | undefined {
    return undefined;
  }
  /** No context, no skills. */
  promptContext(): PromptContextSource {
    return { context: [], skills: [] };
  }
  /** Reloads nothing. */
  reload(): Promise<ReloadReport> {
    return this.load();
  }
  /** Nothing keeps the daemon up. */
  keepsAlive(): boolean {
    return false;
  }
  /** Nothing to unload. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
