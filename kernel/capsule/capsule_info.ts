/**
 * What the registry reports of a capsule: {@link capsuleInfo} (`list()`: name, version, scope,
 * engines, state, health, run loop, readiness) and {@link capsuleMetadata} (`metadata()`:
 * `GetCapsuleMetadata` — the record, the manifest's declarations, cron, pool).
 *
 * @module
 */
import type { JsonValue } from "../events/mod.ts";
import type { CapsuleScopeRef, ScopeKind } from "./capsule_scope.ts";
import type { DiscoveredCapsule } from "./discovery.ts";
import { hasStaticContent } from "./engine/static/mod.ts";
import type { CapsuleHealth, LoadedCapsule, RunLoopState } from "./loaded_capsule.ts";
import type { JsonObject } from "./manifest.ts";

/** Where a capsule stands. */
export type CapsuleState = "loaded" | "failed" | "blocked" | "untrusted";

/** One capsule as {@link CapsuleRegistry.list} reports it. */
export interface CapsuleInfo {
  /** Its key (bus source name), unique across scopes. */
  readonly key: string;
  /** Its name. */
  readonly name: string;
  /** Its version (empty when the record could not be read). */
  readonly version: string;
  /** Its description. */
  readonly description?: string;
  /** The scope it was installed in. */
  readonly scope: ScopeKind;
  /** The scope's principal (`default` for system). */
  readonly principal: string;
  /** The workspace id of a workspace capsule. */
  readonly workspaceId?: string;
  /** Its engines: `wasm`, `static`, `mcp`. */
  readonly engines: readonly string[];
  /** Where it stands. */
  readonly state: CapsuleState;
  /** Why it is not loaded. */
  readonly error?: string;
  /** Health of a loaded capsule. */
  readonly health?: CapsuleHealth;
  /** Its run loop, when it has one. */
  readonly runLoop?: RunLoopState;
  /** For an uplink: whether it signalled ready. */
  readonly ready?: boolean;
}

/** A slash command a capsule declares. */
export interface CommandInfo {
  /** The command, without the slash. */
  readonly name: string;
  /** The capsule's name. */
  readonly capsule: string;
  /** One line of help. */
  readonly description: string;
  /** `handler` (a wasm export) or `file` (a static prompt). */
  readonly kind: "handler" | "file";
}

/** A tool as `tool.v1.request.describe` answers it, with its capsule. */
export interface ToolInfo {
  /** The tool's name. */
  readonly name: string;
  /** Its description. */
  readonly description: string;
  /** JSON Schema of its arguments. */
  readonly input_schema: JsonObject;
  /** The capsule answering it. */
  readonly capsule: string;
}

/** What the registry knows of one capsule. */
export interface RegistryEntry {
  /** Its key. */
  readonly key: string;
  /** Its name. */
  readonly name: string;
  /** Its scope. */
  readonly scope: CapsuleScopeRef;
  /** Its install record, unless it was too broken to read. */
  readonly record?: DiscoveredCapsule;
  /** Where it stands. */
  readonly state: CapsuleState;
  /** Why it is not loaded. */
  readonly error?: string;
  /** The bound capsule, when loaded. */
  readonly loaded?: LoadedCapsule;
}

/** What `list()` reports of `e`. */
export function capsuleInfo(e: RegistryEntry): CapsuleInfo {
  const m = e.record?.manifest;
  const engines: string[] = [];
  if (m?.wasm !== undefined) engines.push("wasm");
  if (m !== undefined && hasStaticContent(m)) engines.push("static");
  if ((m?.mcp_server.length ?? 0) > 0) engines.push("mcp");
  const loaded = e.loaded;
  const out: CapsuleInfo = {
    key: e.key,
    name: e.name,
    version: m?.package.version ?? "",
    ...(m?.package.description !== undefined ? { description: m.package.description } : {}),
    scope: e.scope.kind,
    principal: e.scope.principal,
    ...(e.scope.workspaceId !== undefined ? { workspaceId: e.scope.workspaceId } : {}),
    engines,
    state: e.state,
    ...(e.error !== undefined ? { error: e.error } : {}),
    ...(loaded !== undefined ? { health: loaded.health() } : {}),
    ...(loaded !== undefined && loaded.runLoopState !== "none"
      ? { runLoop: loaded.runLoopState }
      : {}),
    ...(loaded !== undefined && m?.capabilities.uplink ? { ready: loaded.ready } : {}),
  };
  return out;
}

/** What `metadata()` reports of `e` (`GetCapsuleMetadata`), as JSON. */
export function capsuleMetadata(e: RegistryEntry): JsonValue {
  const base = capsuleInfo(e) as unknown as Record<string, JsonValue>;
  const out: Record<string, JsonValue> = { ...stripUndefined(base) };
  const r = e.record;
  if (r === undefined) return out;
  const m = r.manifest;
  out.dir = r.dir;
  out.source = r.meta.source;
  out.installed_at = r.meta.installed_at;
  out.wasm_hash = r.meta.wasm_hash;
  out.package = stripUndefined({ ...m.package } as unknown as Record<string, JsonValue>);
  out.capabilities = { ...m.capabilities } as unknown as JsonValue;
  out.imports = m.imports.map((i) => ({ id: i.id, version: i.version, optional: i.optional }));
  out.exports = m.exports.map((x) => ({ id: x.id, version: x.version }));
  out.publish = m.publish.map((p) => p.topic);
  out.subscribe = m.subscribe.map((s): JsonValue =>
    s.handler === undefined
      ? { topic: s.topic }
      : s.detach
      ? { topic: s.topic, handler: s.handler, detach: true }
      : { topic: s.topic, handler: s.handler, priority: s.priority ?? 100 }
  );
  out.tools = m.tool.map((t) => ({ name: t.name, description: t.description }));
  out.commands = m.command.map((c) => ({ name: c.name, description: c.description }));
  out.skills = m.skill.map((s) => ({ name: s.name, description: s.description }));
  out.uplinks = m.uplink.map((u) => ({ name: u.name, platform: u.platform, profile: u.profile }));
  out.mcp_servers = m.mcp_server.map((s) => ({ name: s.name, command: s.command }));
  out.env = m.env.map((f) => ({ name: f.name, type: f.type, required: f.required }));
  const loaded = e.loaded;
  if (loaded !== undefined) {
    out.cron = loaded.cronJobs().map((j) => ({
      name: j.name,
      ...(j.next !== undefined ? { next: new Date(j.next).toISOString() } : {}),
    }));
    out.loaded_at = new Date(loaded.loadedAt).toISOString();
    const wasm = loaded.wasm;
    if (wasm !== undefined) out.pool = { ...wasm.stats() } as unknown as JsonValue;
  }
  return out;
}

function stripUndefined(o: Record<string, JsonValue | undefined>): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}
