/**
 * `astrid capsule list [--verbose] [--json]` and `astrid capsule tree`: the capsules installed
 * for a principal and in the current workspace, and the graph of their imports and exports.
 * Both read install records only; neither needs the daemon. `list` marks each workspace capsule
 * `trusted`, `untrusted` or `changed` (since it was trusted), from the operator's decisions in
 * the state database (`StoreWorkspaceTrust`, read only when there are workspace capsules).
 *
 * @module
 */
import { join } from "node:path";
import {
  type CapabilitiesSection,
  type CapsuleManifest,
  type DiscoveredCapsule,
  effectiveExports,
  interfaceMatches,
  StoreWorkspaceTrust,
  toposortCapsules,
  type TrustRecord,
  trustSubject,
  VersionRange,
} from "../kernel/capsule/mod.ts";
import { SqliteStore } from "../kernel/storage/mod.ts";
import { parseVerbArgs } from "./args.ts";
import { type CapsuleTarget, openTarget, shortHash, visibleCapsules } from "./capsule_scope.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

/** Usage of `astrid capsule list`. */
export const LIST_USAGE = `Usage: astrid capsule list [--principal P] [--verbose] [--json]
  List the capsules installed for the principal and in this workspace`;

/** Usage of `astrid capsule tree`. */
export const TREE_USAGE = `Usage: astrid capsule tree [--principal P]
  Show what each installed capsule imports (and from whom) and exports (and to whom)`;

/** The granted capabilities of a manifest as short `key=value` items (nothing for defaults). */
export function capabilityItems(c: CapabilitiesSection): string[] {
  const out: string[] = [];
  const lists: (keyof CapabilitiesSection)[] = [
    "fs_read",
    "fs_write",
    "net",
    "net_bind",
    "host_process",
  ];
  for (const key of lists) {
    const v = c[key] as readonly string[];
    if (v.length > 0) out.push(`${key}=${v.join(",")}`);
  }
  const flags: (keyof CapabilitiesSection)[] = [
    "allow_persistent",
    "kv",
    "http",
    "uplink",
    "approval",
    "allow_prompt_injection",
  ];
  for (const key of flags) if (c[key] === true) out.push(key);
  if (c.identity !== undefined) out.push(`identity=${c.identity}`);
  return out;
}

/** A workspace capsule's trust, as `list` and `trust` show it. */
export interface TrustState {
  /** The workspace id (`.astrid/workspace-id`), when the workspace has one yet. */
  readonly workspaceId: string | undefined;
  /** `blake3:<hex>` of the record's manifest text. */
  readonly manifestHash: string;
  /** `trusted`, `changed` (trusted, but another manifest or binary) or `untrusted`. */
  readonly trust: "trusted" | "changed" | "untrusted";
  /** The operator's decision, when there is one. */
  readonly decision?: TrustRecord;
}

/**
 * The trust state of each workspace capsule of `capsules` (by name), from the decisions of the
 * target's workspace in the state database; the database is not opened (nor created) when no
 * capsule is a workspace one.
 */
export async function workspaceTrustStates(
  target: CapsuleTarget,
  capsules: readonly DiscoveredCapsule[],
): Promise<Map<string, TrustState>> {
  const out = new Map<string, TrustState>();
  const ws = capsules.filter((c) => c.scope === "workspace");
  if (ws.length === 0) return out;
  const id = await Deno.readTextFile(join(target.workspace, ".astrid", "workspace-id"))
    .then((t) => t.trim(), () => undefined);
  const decisions = id === undefined ? [] : await trustDecisions(target, id);
  for (const c of ws) {
    const subject = trustSubject(id ?? "-", c);
    const decision = decisions.find((d) => d.name === c.name);
    out.set(c.name, {
      workspaceId: id,
      manifestHash: subject.manifestHash,
      trust: decision === undefined
        ? "untrusted"
        : decision.manifestHash === subject.manifestHash && decision.wasmHash === subject.wasmHash
        ? "trusted"
        : "changed",
      ...(decision === undefined ? {} : { decision }),
    });
  }
  return out;
}

async function trustDecisions(target: CapsuleTarget, workspaceId: string): Promise<TrustRecord[]> {
  const path = target.home.statePath;
  if (!await Deno.stat(path).then(() => true, () => false)) return [];
  const store = await SqliteStore.open(path);
  try {
    return await new StoreWorkspaceTrust(store).list(workspaceId);
  } finally {
    await store.close();
  }
}

/** The engines a manifest uses (`wasm`, `mcp`, `static`). */
export function capsuleEngines(m: CapsuleManifest): string[] {
  const out: string[] = [];
  if (m.wasm) out.push("wasm");
  if (m.mcp_server.length > 0) out.push("mcp");
  if (m.static.context_files.length + m.skill.length + m.command.filter((c) => c.file).length > 0) {
    out.push("static");
  }
  return out;
}

function row(c: DiscoveredCapsule, trust: TrustState | undefined) {
  const m = c.manifest;
  return {
    name: c.name,
    version: m.package.version,
    scope: c.scope,
    wasm_hash: c.meta.wasm_hash,
    description: m.package.description ?? null,
    source: c.meta.source,
    installed_at: c.meta.installed_at,
    engines: capsuleEngines(m),
    capabilities: capabilityItems(m.capabilities),
    imports: m.imports.map((i) => ({ id: i.id, version: i.version, optional: i.optional })),
    exports: m.exports.map((e) => ({ id: e.id, version: e.version })),
    tools: m.tool.map((t) => t.name),
    env: m.env.map((f) => ({ name: f.name, type: f.type, required: f.required })),
    ...(trust === undefined ? {} : { trust: trust.trust, manifest_hash: trust.manifestHash }),
  };
}

/** Runs `astrid capsule list …`. */
export async function runCapsuleList(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("capsule", args, {
    principal: { type: "string" },
    verbose: { type: "boolean", short: "v" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(LIST_USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError("capsule", "capsule list takes no arguments");
  const target = await openTarget(values);
  const found = await visibleCapsules(target);
  const trust = await workspaceTrustStates(target, found.capsules);
  if (values.json) {
    const id = [...trust.values()][0]?.workspaceId;
    io.out(JSON.stringify({
      principal: target.principal,
      workspace: target.workspace,
      ...(id === undefined ? {} : { workspace_id: id }),
      capsules: found.capsules.map((c) => row(c, trust.get(c.name))),
      shadowed: found.shadowed.map((c) => ({ name: c.name, scope: c.scope, dir: c.dir })),
      problems: found.problems.map((p) => ({ dir: p.dir, scope: p.scope, error: p.error.message })),
    }));
    return 0;
  }
  if (found.capsules.length === 0) {
    io.out(`No capsules installed for principal ${target.principal} or in ${target.workspace}`);
  } else {
    // The TRUST column appears when the workspace has capsules of its own.
    const withTrust = trust.size > 0;
    const rows = found.capsules.map((c) => [
      c.name,
      c.manifest.package.version,
      shortHash(c.meta.wasm_hash),
      c.scope,
      ...(withTrust ? [trust.get(c.name)?.trust ?? "-"] : []),
    ]);
    const head = ["NAME", "VERSION", "HASH", "SCOPE", ...(withTrust ? ["TRUST"] : [])];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const fmt = (r: string[]) => r.map((v, i) => v.padEnd(widths[i])).join("  ").trimEnd();
    io.out(fmt(head));
    for (const [i, c] of found.capsules.entries()) {
      io.out(fmt(rows[i]));
      if (!values.verbose) continue;
      const t = trust.get(c.name);
      const r = row(c, t);
      const m = c.manifest;
      if (r.description) io.out(`    ${r.description}`);
      io.out(`    engines: ${r.engines.join(", ") || "none"}`);
      io.out(`    capabilities: ${r.capabilities.join(" ") || "none"}`);
      if (m.imports.length > 0) {
        io.out(
          `    imports: ${
            m.imports.map((x) => `${x.id} ${x.version}${x.optional ? " (optional)" : ""}`).join(
              ", ",
            )
          }`,
        );
      }
      if (m.exports.length > 0) {
        io.out(`    exports: ${m.exports.map((x) => `${x.id} ${x.version}`).join(", ")}`);
      }
      if (m.tool.length > 0) io.out(`    tools: ${m.tool.map((t) => t.name).join(", ")}`);
      if (m.env.length > 0) {
        io.out(
          `    env: ${
            m.env.map((f) => `${f.name} (${f.type}${f.required ? ", required" : ""})`).join(", ")
          }`,
        );
      }
      io.out(`    hash: ${c.meta.wasm_hash ?? "none (no module)"}`);
      if (t !== undefined) {
        io.out(`    manifest: ${t.manifestHash}`);
        io.out(
          `    trust: ${t.trust}${
            t.decision === undefined
              ? " (astrid capsule trust " + c.name + " to load it)"
              : ` (by ${t.decision.by} at ${new Date(t.decision.trustedAt).toISOString()}${
                t.trust === "changed"
                  ? `; it pinned manifest ${t.decision.manifestHash}, wasm ${
                    t.decision.wasmHash ?? "none"
                  }`
                  : ""
              })`
          }`,
        );
      }
      io.out(`    source: ${c.meta.source}`);
      io.out(`    installed: ${c.meta.installed_at}`);
    }
  }
  for (const s of found.shadowed) {
    io.err(`note: the workspace's ${s.name} is hidden by the principal's capsule of that name`);
  }
  for (const [name, t] of trust) {
    if (t.trust === "untrusted") {
      io.err(`note: workspace capsule ${name} is untrusted: astrid capsule trust ${name} loads it`);
    } else if (t.trust === "changed") {
      io.err(
        `warning: workspace capsule ${name} changed since it was trusted: it does not load until trusted again (astrid capsule trust ${name})`,
      );
    }
  }
  for (const p of found.problems) io.err(`warning: ${p.error.message}`);
  return 0;
}

/** The lines of the imports/exports graph of `capsules`, in load order; blocked ones last. */
export function treeLines(capsules: readonly CapsuleManifest[]): string[] {
  const plan = toposortCapsules(capsules, { blockCycles: true });
  const byName = new Map(capsules.map((m) => [m.package.name, m]));
  const imported = capsules.flatMap((m) => m.imports.map((i) => i.id));
  const lines: string[] = [];
  const names = [...plan.order, ...plan.blocked.map((b) => b.name)];
  for (const name of names) {
    const m = byName.get(name)!;
    const blocked = plan.blocked.find((b) => b.name === name);
    lines.push(`${name} ${m.package.version}${m.capabilities.uplink ? " [uplink]" : ""}`);
    const items: string[] = [];
    for (const imp of m.imports) {
      const range = VersionRange.parse(imp.version);
      const providers = capsules.filter((o) =>
        o !== m &&
        effectiveExports(o).some((e) =>
          interfaceMatches(imp.id, e.id) && range.satisfiedBy(e.version)
        )
      ).map((o) => `${o.package.name} ${o.package.version}`);
      items.push(
        `imports ${imp.id} ${imp.version}${imp.optional ? " (optional)" : ""} ← ${
          providers.length ? providers.join(", ") : "(none)"
        }`,
      );
    }
    for (const e of effectiveExports(m)) {
      const declared = m.exports.some((x) => x.id === e.id) || e.namespace === "tool" ||
        e.namespace === "uplink";
      if (!declared && !imported.some((id) => interfaceMatches(id, e.id))) continue;
      const users = capsules.filter((o) =>
        o !== m &&
        o.imports.some((i) =>
          interfaceMatches(i.id, e.id) && VersionRange.parse(i.version).satisfiedBy(e.version)
        )
      ).map((o) => o.package.name);
      items.push(`exports ${e.id} ${e.version}${users.length ? ` → ${users.join(", ")}` : ""}`);
    }
    if (blocked) items.push(`BLOCKED: ${blocked.reason}`);
    items.forEach((item, i) => lines.push(`${i === items.length - 1 ? "└─" : "├─"} ${item}`));
  }
  return lines;
}

/** Runs `astrid capsule tree`. */
export async function runCapsuleTree(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("capsule", args, {
    principal: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(TREE_USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError("capsule", "capsule tree takes no arguments");
  const target = await openTarget(values);
  const found = await visibleCapsules(target);
  if (found.capsules.length === 0) {
    io.out(`No capsules installed for principal ${target.principal} or in ${target.workspace}`);
    return 0;
  }
  for (const line of treeLines(found.capsules.map((c) => c.manifest))) io.out(line);
  for (const p of found.problems) io.err(`warning: ${p.error.message}`);
  return 0;
}
