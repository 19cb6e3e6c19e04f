/**
 * `ManifestSecurityGate`: the first wall every host call passes. What a capsule's
 * `[capabilities]` (and `[publish]`/`[subscribe]`) does not declare is denied.
 *
 * The manifest is compiled once per capsule (cached per manifest object):
 *
 * - `fs_read`/`fs_write`: each entry becomes a canonical `(scheme, glob)` pair in the VFS's own
 *   namespace — `workspace://src` allows `workspace://src` and everything under it, `*`/`**`
 *   in the rest are globs, other characters are literal; `"*"` is `workspace://` (the workspace
 *   root, never the whole disk). A target is a canonical URI the VFS router produced (symlinks
 *   resolved), so a path can only be allowed inside the root of its scheme. A target with a
 *   `..` segment is denied before any prefix comparison.
 * - `net`: `host:port` with `*` (any host), `*.example.com` (subdomains), `*` ports.
 * - `net_bind`: `unix:<name>`, `*` standing for any characters.
 * - `host_process`: exact program names.
 * - `identity`: `admin` > `link` > `resolve`.
 * - booleans: `kv`, `http`, `approval`, `uplink`, `allow_persistent`, `allow_prompt_injection`.
 * - `publish`: a `[publish]` key matches the topic; `subscribe`: a `[subscribe]` key covers
 *   the pattern (the bus ACL's rules).
 *
 * A denial names the capability and how to declare it in `Capsule.toml`, and the dispatcher
 * records it in the audit log (layer `manifest`, decider `manifest`, rule = the capability)
 * before answering `DENIED`.
 *
 * @example
 * ```ts
 * import { parseManifest } from "../kernel/capsule/mod.ts";
 * import { ManifestSecurityGate } from "./gate.ts";
 *
 * const manifest = parseManifest(
 *   `[package]
 * name = "notes"
 * version = "0.1.0"
 *
 * [capabilities]
 * fs_read = ["workspace://docs"]
 * kv = true
 * `,
 *   { file: "notes/Capsule.toml" },
 * );
 * const gate = ManifestSecurityGate.for(manifest);
 * if (gate.check({ capability: "fs_read", target: "workspace://docs/a.md" }) !== null) {
 *   throw new Error("docs is declared");
 * }
 * const denial = gate.check({ capability: "fs_write", target: "workspace://docs/a.md" });
 * if (denial?.capability !== "fs_write") throw new Error("fs_write is not declared");
 * ```
 *
 * @module
 */
import { compileGlob, escapeGlob, type Glob } from "../kernel/capabilities/mod.ts";
import { type CapsuleManifest, identityAllows, manifestAcl } from "../kernel/capsule/mod.ts";
import { matchTopic, patternCovers } from "../kernel/events/mod.ts";
import { HostAbiCode, HostAbiError } from "./errors.ts";
import type { GateRequirement, GateSpec, HostCallContext } from "./host_function.ts";
import { HostCallError, HostStatus } from "./status.ts";

/** The VFS schemes a `fs_read`/`fs_write` entry may name. */
export const GATE_SCHEMES: readonly string[] = ["workspace", "home", "global"];

/** A refused requirement: what was missing and how to declare it. */
export interface GateDenial {
  /** The capability that does not cover the call, e.g. `fs_write`. */
  readonly capability: GateRequirement["capability"];
  /** The target or level asked for (`workspace://a.ts`, `api.x.com:443`, `link`), if any. */
  readonly target?: string;
  /** The message the guest receives (sentence case, the fix after a semicolon). */
  readonly message: string;
}

/** One compiled `fs_read`/`fs_write` entry. */
export interface CompiledFsPattern {
  /** The entry as written in the manifest. */
  readonly source: string;
  /** The scheme it grants under. */
  readonly scheme: string;
  /** The canonical root-relative path it names (`""`: the scheme's root). */
  readonly path: string;
  /** Matches a canonical root-relative path it allows; null when it allows the whole root. */
  readonly globs: readonly Glob[] | null;
}

interface NetPattern {
  readonly source: string;
  readonly host: string; // "*", "*.suffix" or literal
  readonly port: number | "*";
}

const cache = new WeakMap<CapsuleManifest, ManifestSecurityGate>();
const q = JSON.stringify;

/** The compiled `[capabilities]` of one capsule, and the check every host call passes. */
export class ManifestSecurityGate {
  /** The capsule's name. */
  readonly capsule: string;
  readonly #manifest: CapsuleManifest;
  readonly #fsRead: readonly CompiledFsPattern[];
  readonly #fsWrite: readonly CompiledFsPattern[];
  readonly #net: readonly NetPattern[];
  readonly #netBind: readonly RegExp[];
  readonly #programs: ReadonlySet<string>;
  readonly #publish: readonly string[];
  readonly #subscribe: readonly string[];

  /** The gate of `manifest`, compiled once and cached for the manifest object. */
  static for(manifest: CapsuleManifest): ManifestSecurityGate {
    let gate = cache.get(manifest);
    if (gate === undefined) {
      gate = new ManifestSecurityGate(manifest);
      cache.set(manifest, gate);
    }
    return gate;
  }

  /** Compiles `manifest`'s capabilities; throws `HOST_ABI_BAD_CAPABILITY` naming the entry. */
  constructor(manifest: CapsuleManifest) {
    this.capsule = manifest.package.name;
    this.#manifest = manifest;
    const caps = manifest.capabilities;
    this.#fsRead = caps.fs_read.map((e) => compileFsPattern(e, this.capsule, "fs_read"));
    this.#fsWrite = caps.fs_write.map((e) => compileFsPattern(e, this.capsule, "fs_write"));
    this.#net = caps.net.map((e) => compileNet(e, this.capsule));
    this.#netBind = caps.net_bind.map((e) =>
      new RegExp(`^${e.split("*").map(escapeRegExp).join(".*")}$`)
    );
    this.#programs = new Set(caps.host_process);
    const acl = manifestAcl(manifest);
    this.#publish = acl.publish;
    this.#subscribe = acl.subscribe;
  }

  /** The compiled `fs_read` entries. */
  get fsRead(): readonly CompiledFsPattern[] {
    return this.#fsRead;
  }

  /** The compiled `fs_write` entries. */
  get fsWrite(): readonly CompiledFsPattern[] {
    return this.#fsWrite;
  }

  /** Null when the manifest declares `req`, else the denial. Pure: no audit, no I/O. */
  check(req: GateRequirement): GateDenial | null {
    const caps = this.#manifest.capabilities;
    const who = `Capsule ${q(this.capsule)}`;
    switch (req.capability) {
      case "fs_read":
      case "fs_write": {
        const patterns = req.capability === "fs_read" ? this.#fsRead : this.#fsWrite;
        const verb = req.capability === "fs_read" ? "read" : "write";
        const target = splitUri(req.target);
        if (target !== null && patterns.some((p) => fsAllows(p, target))) return null;
        const why = target === null
          ? `the path is not a canonical VFS URI`
          : `no ${req.capability} entry covers it`;
        return {
          capability: req.capability,
          target: req.target,
          message: `${who} may not ${verb} ${q(req.target)}: ${why}; declare it in Capsule.toml ` +
            `under [capabilities]: ${req.capability} = [${q(suggestFs(req.target))}]`,
        };
      }
      case "net": {
        const target = splitHostPort(req.target);
        if (target !== null && this.#net.some((p) => netAllows(p, target))) return null;
        return {
          capability: "net",
          target: req.target,
          message: `${who} may not connect to ${q(req.target)}: no net entry covers it; ` +
            `declare it in Capsule.toml under [capabilities]: net = [${q(req.target)}]` +
            (caps.http ? "" : " and http = true"),
        };
      }
      case "net_bind": {
        if (this.#netBind.some((re) => re.test(req.target))) return null;
        return {
          capability: "net_bind",
          target: req.target,
          message: `${who} may not bind ${q(req.target)}: no net_bind entry covers it; ` +
            `declare it in Capsule.toml under [capabilities]: net_bind = [${q(req.target)}]`,
        };
      }
      case "host_process": {
        if (this.#programs.has(req.target)) return null;
        return {
          capability: "host_process",
          target: req.target,
          message: `${who} may not run ${q(req.target)}: it is not in host_process; ` +
            `declare it in Capsule.toml under [capabilities]: host_process = [${q(req.target)}]`,
        };
      }
      case "publish": {
        if (this.#publish.some((p) => safeMatch(p, req.target))) return null;
        return {
          capability: "publish",
          target: req.target,
          message: `${who} may not publish on ${q(req.target)}: no [publish] key covers it; ` +
            `declare it in Capsule.toml: [publish] ${q(req.target)} = { schema = … }`,
        };
      }
      case "subscribe": {
        if (this.#subscribe.some((p) => safeCovers(p, req.target))) return null;
        return {
          capability: "subscribe",
          target: req.target,
          message: `${who} may not subscribe to ${q(req.target)}: no [subscribe] key covers it; ` +
            `declare it in Capsule.toml: [subscribe] ${q(req.target)} = { schema = … }`,
        };
      }
      case "identity": {
        if (identityAllows(caps.identity, req.level)) return null;
        return {
          capability: "identity",
          target: req.level,
          message: `${who} may not perform identity operations of level ${q(req.level)}: ` +
            `it declares ${caps.identity === undefined ? "none" : q(caps.identity)}; ` +
            `declare it in Capsule.toml under [capabilities]: identity = ${q(req.level)}`,
        };
      }
      case "kv":
      case "http":
      case "approval":
      case "uplink":
      case "allow_persistent":
      case "allow_prompt_injection": {
        if (caps[req.capability] === true) return null;
        return {
          capability: req.capability,
          message: `${who} may not use ${req.capability}: [capabilities] does not declare it; ` +
            `declare it in Capsule.toml under [capabilities]: ${req.capability} = true`,
        };
      }
    }
    const unknown = (req as { capability: unknown }).capability;
    return {
      capability: String(unknown) as GateRequirement["capability"],
      message: `${who} may not use unknown capability ${q(String(unknown))}`,
    };
  }

  /** The first denial among `spec`'s requirements, or null when all hold. */
  checkAll(spec: GateSpec): GateDenial | null {
    if (spec === null) return null;
    const list: readonly GateRequirement[] = Array.isArray(spec) ? spec : [spec as GateRequirement];
    for (const req of list) {
      const denial = this.check(req);
      if (denial !== null) return denial;
    }
    return null;
  }

  /**
   * Checks `spec` for `fn` called in `call`; on a denial appends the audit entry (layer
   * `manifest`, decider `manifest`, rule = the capability) and throws `HostCallError(DENIED)`.
   * An audit failure is passed to `onAuditError` and the call is denied all the same.
   */
  async enforce(
    spec: GateSpec,
    call: HostCallContext,
    options: { fn: string; onAuditError?: (error: unknown) => void },
  ): Promise<void> {
    const denial = this.checkAll(spec);
    if (denial === null) return;
    try {
      await call.services.audit.append({
        principal: call.principal,
        action: `host.${options.fn}`,
        resource: denial.target !== undefined && denial.capability !== "identity"
          ? denial.target
          : `capsule:${this.capsule}`,
        decision: "denied",
        reason: denial.message,
        layer: "manifest",
        rule: denial.capability,
        decider: "manifest",
        session: call.session.id,
        details: JSON.stringify({
          capsule: this.capsule,
          function: options.fn,
          capability: denial.capability,
          target: denial.target,
          request_id: call.requestId,
        }),
      });
    } catch (err) {
      options.onAuditError?.(err);
    }
    throw new HostCallError(HostStatus.DENIED, denial.message);
  }
}

/** Splits a canonical `scheme://path` URI; null when it is not one (or holds `..`). */
function splitUri(uri: string): { scheme: string; path: string } | null {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/s.exec(uri);
  if (m === null) return null;
  const path = m[2];
  // `..` is refused before any prefix comparison, as are other non-canonical spellings.
  if (path !== "") {
    const segments = path.split("/");
    if (segments.some((s) => s === ".." || s === "." || s === "") || path.includes("\0")) {
      return null;
    }
  }
  return { scheme: m[1], path };
}

function fsAllows(p: CompiledFsPattern, target: { scheme: string; path: string }): boolean {
  if (p.scheme !== target.scheme) return false;
  if (p.globs === null) return true;
  return p.globs.some((g) => g.regex.test(target.path));
}

function suggestFs(target: string): string {
  return splitUri(target) === null ? "workspace://…" : target;
}

/** Compiles one `fs_read`/`fs_write` entry; exported for tests and introspection. */
export function compileFsPattern(
  entry: string,
  capsule: string,
  field: "fs_read" | "fs_write",
): CompiledFsPattern {
  const bad = (why: string, cause?: unknown) =>
    new HostAbiError(
      HostAbiCode.HOST_ABI_BAD_CAPABILITY,
      `Capsule ${q(capsule)}: capabilities.${field} entry ${q(entry)} ${why}`,
      { data: { capsule, field, value: entry }, cause },
    );
  if (entry === "*") return { source: entry, scheme: "workspace", path: "", globs: null };
  const m = /^([a-z]+):\/\/(.*)$/s.exec(entry);
  if (m === null || !GATE_SCHEMES.includes(m[1])) {
    throw bad(`is not a VFS path: use "workspace://…", "home://…", "global://…" or "*"`);
  }
  const raw = m[2];
  if (raw.includes("\0") || raw.includes("\\")) throw bad("contains a NUL or a backslash");
  const segments = raw.split("/");
  // `..` is refused before anything else looks at the path.
  if (segments.some((s) => s === "..")) throw bad(`contains ".."`);
  const kept = segments.filter((s) => s !== "" && s !== ".");
  const path = kept.join("/");
  if (kept.length === 0 || (kept.length === 1 && kept[0] === "**")) {
    return { source: entry, scheme: m[1], path: "", globs: null };
  }
  const body = kept.map((seg) => seg.split("*").map(escapeGlob).join("*")).join("/");
  try {
    const globs = [compileGlob(body)];
    if (!body.endsWith("/**")) globs.push(compileGlob(`${body}/**`));
    return { source: entry, scheme: m[1], path, globs };
  } catch (cause) {
    throw bad(`is not a valid pattern: ${(cause as Error).message}`, cause);
  }
}

function compileNet(entry: string, capsule: string): NetPattern {
  const parsed = splitHostPort(entry.toLowerCase());
  if (parsed === null) {
    throw new HostAbiError(
      HostAbiCode.HOST_ABI_BAD_CAPABILITY,
      `Capsule ${q(capsule)}: capabilities.net entry ${q(entry)} is not host:port`,
      { data: { capsule, field: "net", value: entry } },
    );
  }
  return { source: entry, host: parsed.host, port: parsed.port };
}

function splitHostPort(value: string): { host: string; port: number | "*" } | null {
  const v6 = /^(\[[0-9a-f:.]+\]):(\*|\d{1,5})$/i.exec(value);
  const m = v6 ?? /^([^:\[\]]+):(\*|\d{1,5})$/.exec(value);
  if (m === null) return null;
  const port = m[2] === "*" ? "*" : Number(m[2]);
  if (port !== "*" && !(port >= 1 && port <= 65535)) return null;
  return { host: m[1].toLowerCase(), port };
}

function netAllows(p: NetPattern, target: { host: string; port: number | "*" }): boolean {
  if (target.port === "*" || target.host.includes("*")) return false; // targets are concrete
  if (p.port !== "*" && p.port !== target.port) return false;
  if (p.host === "*") return true;
  if (p.host.startsWith("*.")) {
    const suffix = p.host.slice(1); // ".example.com"
    return target.host.endsWith(suffix) && target.host.length > suffix.length;
  }
  return p.host === target.host;
}

function safeMatch(pattern: string, topic: string): boolean {
  try {
    return matchTopic(pattern, topic);
  } catch {
    return false;
  }
}

function safeCovers(outer: string, inner: string): boolean {
  try {
    return patternCovers(outer, inner);
  } catch {
    return false;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
