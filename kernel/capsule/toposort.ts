/**
 * Load order of capsules: Kahn's topological sort over `[imports]`/`[exports]`.
 *
 * - An import is met by every other capsule exporting a matching interface whose version lies
 *   in the import's range; all of them load before the importer. Names match exactly, except
 *   under the typed prefixes `topic:`, `tool:`, `llm:` and `uplink:`, where the body is
 *   dot-separated segments and a `*` on either side matches exactly one segment
 *   (`topic:llm.v1.stream.*` matches `topic:llm.v1.stream.anthropic`, not `topic:llm.v1.stream`).
 * - Besides `[exports]`, a capsule exports at its package version `tool:<name>` for each
 *   `[[tool]]`, `topic:<key>` for each `[publish]` key and `uplink:<name>` for each `[[uplink]]`.
 * - A required import nobody meets blocks the capsule, and in turn every capsule whose required
 *   import only blocked capsules meet; the others load. An optional import never blocks: it
 *   orders the load when a provider is present, and gives way inside a cycle.
 * - A cycle of required imports is an error naming its capsules in order ({@link CapsuleCode}
 *   `CAPSULE_CYCLE`), unless `blockCycles` blocks those capsules and their dependents instead.
 * - Uplink capsules (`capabilities.uplink`) come first; ties are broken by name, so the order
 *   is the same for the same input whatever order it came in.
 *
 * @module
 */
import { CapsuleCode, CapsuleError } from "./errors.ts";
import {
  type CapsuleManifest,
  type ExportEntry,
  type ImportEntry,
  TYPED_PREFIXES,
} from "./manifest.ts";
import { VersionRange } from "./semver.ts";

/** A capsule that will not be loaded, and why. */
export interface BlockedCapsule {
  /** The capsule's name. */
  readonly name: string;
  /** Why, as a sentence fragment with the fix: `import "astrid:llm" "^1.0" is exported by no capsule: …`. */
  readonly reason: string;
  /** The import ids that could not be met, if that is the cause. */
  readonly missing?: readonly string[];
  /** The cycle, in order with the first repeated last, if that is the cause. */
  readonly cycle?: readonly string[];
}

/** The result of {@link toposortCapsules}. */
export interface LoadPlan {
  /** Names of the capsules to load, in this order. */
  readonly order: readonly string[];
  /** Capsules that will not load, sorted by name. */
  readonly blocked: readonly BlockedCapsule[];
}

/** Options of {@link toposortCapsules}. */
export interface ToposortOptions {
  /** Block the capsules of a cycle (and their dependents) instead of throwing `CAPSULE_CYCLE`. */
  readonly blockCycles?: boolean;
}

function split(id: string): [string, string] {
  const i = id.indexOf(":");
  return i < 0 ? ["", id] : [id.slice(0, i), id.slice(i + 1)];
}

/** True when the required interface id matches the provided one (see the module doc). */
export function interfaceMatches(required: string, provided: string): boolean {
  const [rn, rb] = split(required);
  const [pn, pb] = split(provided);
  if (rn !== pn) return false;
  if (!TYPED_PREFIXES.includes(rn)) return rb === pb;
  const r = rb.split(".");
  const p = pb.split(".");
  if (r.length !== p.length) return false;
  return r.every((s, i) => s === "*" || p[i] === "*" || s === p[i]);
}

/** Everything `manifest` exports: `[exports]` plus the derived `tool:`, `topic:`, `uplink:` ids. */
export function effectiveExports(manifest: CapsuleManifest): ExportEntry[] {
  const out = [...manifest.exports];
  const version = manifest.package.version;
  const derive = (namespace: string, name: string) => {
    const id = `${namespace}:${name}`;
    if (!out.some((e) => e.id === id)) out.push({ id, namespace, name, version });
  };
  for (const t of manifest.tool) derive("tool", t.name);
  for (const p of manifest.publish) derive("topic", p.topic);
  for (const u of manifest.uplink) derive("uplink", u.name);
  return out;
}

interface Dep {
  readonly imp: ImportEntry;
  readonly providers: readonly number[];
  /** Capsules exporting a matching name at a version outside the range. */
  readonly near: readonly { index: number; version: string }[];
}

const q = JSON.stringify;

/** Orders `manifests` for loading; see the module doc. Throws `CAPSULE_DUPLICATE` on a repeated name. */
export function toposortCapsules(
  manifests: readonly CapsuleManifest[],
  options: ToposortOptions = {},
): LoadPlan {
  const caps = [...manifests].sort((a, b) => cmp(a.package.name, b.package.name));
  for (let i = 1; i < caps.length; i++) {
    if (caps[i].package.name === caps[i - 1].package.name) {
      const name = caps[i].package.name;
      throw new CapsuleError(
        CapsuleCode.CAPSULE_DUPLICATE,
        `Capsule "${name}" is given twice: ${caps[i - 1].file} and ${caps[i].file}`,
        { data: { name } },
      );
    }
  }
  const n = caps.length;
  const names = caps.map((c) => c.package.name);
  const exports = caps.map(effectiveExports);
  const deps: Dep[][] = caps.map((c, i) =>
    c.imports.map((imp) => {
      const range = VersionRange.parse(imp.version);
      const providers: number[] = [];
      const near: { index: number; version: string }[] = [];
      for (let j = 0; j < n; j++) {
        if (j === i) continue;
        const matching = exports[j].filter((e) => interfaceMatches(imp.id, e.id));
        if (matching.length === 0) continue;
        if (matching.some((e) => range.satisfiedBy(e.version))) providers.push(j);
        else near.push({ index: j, version: matching[0].version });
      }
      return { imp, providers, near };
    })
  );

  // Block capsules whose required imports nobody (or only blocked capsules) meets, to a fixpoint.
  const blocked = new Map<number, BlockedCapsule>();
  for (let changed = true; changed;) {
    changed = false;
    for (let i = 0; i < n; i++) {
      if (blocked.has(i)) continue;
      const unmet = deps[i].filter((d) =>
        !d.imp.optional && d.providers.every((j) => blocked.has(j))
      );
      if (unmet.length === 0) continue;
      const reasons = unmet.map((d) => unmetReason(d, names));
      blocked.set(i, {
        name: names[i],
        reason: reasons.join("; ") +
          ": install a capsule that exports it, or mark the import optional = true",
        missing: unmet.map((d) => d.imp.id),
      });
      changed = true;
    }
  }

  // Edges provider → importer among live capsules; required and optional counted apart.
  const out: Map<number, { optional: boolean; via: string }>[] = caps.map(() => new Map());
  const reqIn = new Array<number>(n).fill(0);
  const optIn = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    if (blocked.has(i)) continue;
    for (const d of deps[i]) {
      for (const j of d.providers) {
        if (blocked.has(j)) continue;
        const prev = out[j].get(i);
        if (prev && !prev.optional) continue;
        if (prev) optIn[i]--;
        out[j].set(i, { optional: d.imp.optional, via: d.imp.id });
        if (d.imp.optional) optIn[i]++;
        else reqIn[i]++;
      }
    }
  }

  const rank = (i: number) => (caps[i].capabilities.uplink ? "0" : "1") + names[i];
  const best = (list: number[]) => list.reduce((a, b) => (rank(b) < rank(a) ? b : a));
  const remaining = new Set<number>();
  for (let i = 0; i < n; i++) if (!blocked.has(i)) remaining.add(i);
  const order: string[] = [];
  while (remaining.size > 0) {
    const live = [...remaining];
    const ready = live.filter((i) => reqIn[i] === 0 && optIn[i] === 0);
    // Stuck: release a capsule whose only outstanding imports are optional (they give way).
    const soft = ready.length === 0 ? live.filter((i) => reqIn[i] === 0) : [];
    if (ready.length === 0 && soft.length === 0) {
      const cycle = findCycle(live, out, names);
      if (!options.blockCycles) {
        throw new CapsuleError(
          CapsuleCode.CAPSULE_CYCLE,
          `Capsule dependency cycle: ${cycle.text}: remove one of these imports`,
          { data: { cycle: cycle.names } },
        );
      }
      const members = new Set(cycle.names);
      for (const i of live) {
        blocked.set(
          i,
          members.has(names[i])
            ? {
              name: names[i],
              reason: `in a dependency cycle: ${cycle.text}: remove one of these imports`,
              cycle: cycle.names,
            }
            : {
              name: names[i],
              reason: `depends on capsules in a dependency cycle (${
                cycle.names.slice(0, -1).map((x) => q(x)).join(", ")
              })`,
              cycle: cycle.names,
            },
        );
      }
      break;
    }
    const next = best(ready.length > 0 ? ready : soft);
    remaining.delete(next);
    order.push(names[next]);
    for (const [to, edge] of out[next]) {
      if (!remaining.has(to)) continue;
      if (edge.optional) optIn[to]--;
      else reqIn[to]--;
    }
  }
  return {
    order,
    blocked: [...blocked.values()].sort((a, b) => cmp(a.name, b.name)),
  };
}

function unmetReason(d: Dep, names: readonly string[]): string {
  const what = `import ${q(d.imp.id)} ${q(d.imp.version)}`;
  if (d.providers.length > 0) {
    const by = d.providers.map((j) => q(names[j])).join(", ");
    return `${what} is exported only by blocked capsule${d.providers.length > 1 ? "s" : ""} ${by}`;
  }
  const near = d.near.map((x) => `${q(names[x.index])} exports ${x.version}`);
  return `${what} is exported by no capsule` +
    (near.length > 0 ? ` in that range (${near.join(", ")})` : "");
}

/** Finds a cycle among `live` capsules following required "imports from" edges. */
function findCycle(
  live: readonly number[],
  out: readonly Map<number, { optional: boolean; via: string }>[],
  names: readonly string[],
): { names: string[]; text: string } {
  const alive = new Set(live);
  // needs[i]: live providers j of i over required edges, smallest name first.
  const needs = (i: number) =>
    live.filter((j) => alive.has(j) && out[j].get(i)?.optional === false)
      .sort((a, b) => cmp(names[a], names[b]));
  let at = [...live].sort((a, b) => cmp(names[a], names[b]))[0];
  const path: number[] = [];
  const seen = new Map<number, number>();
  while (!seen.has(at)) {
    seen.set(at, path.length);
    path.push(at);
    const next = needs(at);
    if (next.length === 0) break; // cannot happen: a stuck capsule has a required live provider
    at = next[0];
  }
  let cyc = path.slice(seen.get(at) ?? 0);
  // Rotate so the smallest name leads: the same cycle always reads the same.
  const lead = cyc.reduce((a, b, k) => (cmp(names[b], names[cyc[a]]) < 0 ? k : a), 0);
  cyc = [...cyc.slice(lead), ...cyc.slice(0, lead)];
  const ring = [...cyc, cyc[0]];
  const hops = cyc.map((i, k) =>
    `${q(names[i])} imports ${q(out[ring[k + 1]].get(i)?.via ?? "?")} from ${q(names[ring[k + 1]])}`
  );
  const list = ring.map((i) => names[i]);
  return { names: list, text: `${list.join(" → ")} (${hops.join(", ")})` };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
