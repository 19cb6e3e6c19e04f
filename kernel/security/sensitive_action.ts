/**
 * Sensitive actions: what a host call asks the security pipeline about, and how each kind maps
 * to a capability token permission and a canonical resource string (`docs/capabilities.md`).
 *
 * The caller (a host call, the VFS, the process host, the LLM interceptor) builds the action
 * from canonical values: file paths already resolved by the VFS to absolute canonical paths
 * (schemes such as `workspace://` expanded, symlinks resolved), and `insideWorkspace` computed
 * from those canonical paths. The pipeline never resolves paths itself; it rejects what is not
 * canonical (policy layer).
 *
 * @example
 * ```ts
 * import { describeAction } from "./sensitive_action.ts";
 * const info = describeAction({
 *   kind: "fs.write", principal: "default", session: "s1", workspace: "w1",
 *   path: "/work/repo/src/a.ts", insideWorkspace: true,
 * });
 * if (info.permission !== "write" || info.resource !== "fs:/work/repo/src/a.ts") throw new Error();
 * ```
 *
 * @module
 */
import { type Permission, PERMISSIONS } from "../capabilities/mod.ts";
import { isPrincipalId } from "../identity/mod.ts";
import { SecurityCode, SecurityError } from "./errors.ts";

/** Every kind of sensitive action, in documentation order. */
export const ACTION_KINDS = [
  "fs.read",
  "fs.write",
  "fs.delete",
  "process.spawn",
  "net.request",
  "tool.execute",
  "llm.generate",
  "capability.mint",
  "capability.change",
  "identity.admin",
] as const;

/** One kind of {@link ACTION_KINDS}. */
export type ActionKind = typeof ACTION_KINDS[number];

/** Kinds that widen what an agent may do: only a human's answer allows them, every time. */
export const WIDENING_KINDS: readonly ActionKind[] = [
  "capability.mint",
  "capability.change",
  "identity.admin",
];

/** The token permission each kind needs. */
export const KIND_PERMISSION: Readonly<Record<ActionKind, Permission>> = {
  "fs.read": "read",
  "fs.write": "write",
  "fs.delete": "delete",
  "process.spawn": "execute",
  "net.request": "network",
  "tool.execute": "execute",
  "llm.generate": "execute",
  "capability.mint": "admin",
  "capability.change": "admin",
  "identity.admin": "admin",
};

/** Fields every action carries. */
export interface ActionBase {
  /** The acting principal (stamped by the kernel, never chosen by a capsule). */
  principal: string;
  /** The session (conversation) the action belongs to. */
  session: string;
  /** The id of the workspace the session is bound to (`.astrid/workspace-id`). */
  workspace: string;
  /**
   * Whether the action's canonical path lies inside the workspace root, as the caller computed
   * it from canonical paths. Read by the mode table for `fs.*`; default false (the stricter
   * row).
   */
  insideWorkspace?: boolean;
}

/** Reading, writing or deleting one file or directory. */
export interface FsAction extends ActionBase {
  /** `fs.read`, `fs.write` or `fs.delete`. */
  kind: "fs.read" | "fs.write" | "fs.delete";
  /** The absolute canonical path the VFS resolved (no `.`/`..`, no `//`, no trailing `/`). */
  path: string;
}

/** Running a native command. */
export interface ProcessSpawnAction extends ActionBase {
  /** `process.spawn`. */
  kind: "process.spawn";
  /** The program as invoked and its arguments; `argv[0]` names the program. */
  argv: readonly string[];
}

/** An outbound network connection or HTTP request. */
export interface NetRequestAction extends ActionBase {
  /** `net.request`. */
  kind: "net.request";
  /** The host name or address (canonicalized here: lowercase, IDNA ASCII, IPv4 dotted). */
  host: string;
  /** The port, 1 to 65535. */
  port: number;
  /**
   * True when the request carries a model call: the capsule's invocation was triggered by an
   * `llm.v1.request.generate.<provider>` message whose call the budget guard allowed (priced,
   * reserved, audited) and still holds (`LlmBudget.metered`). The mode table then reads it as
   * `model`, not `network`.
   */
  modelCall?: boolean;
}

/** Calling a tool. */
export interface ToolExecuteAction extends ActionBase {
  /** `tool.execute`. */
  kind: "tool.execute";
  /** The tool name, e.g. `read_file` or `github/create_issue`. */
  tool: string;
  /**
   * True when the tool runs opaque native code (an MCP server, the shell tool): the mode
   * table treats it as a native command. Wasm tools' own host calls are checked one by one.
   */
  native?: boolean;
  /** A command line the tool will run (the shell tool), checked by the policy like `argv`. */
  argv?: readonly string[];
  /** Canonical absolute paths the call names, checked by the policy like `fs.*` paths. */
  paths?: readonly string[];
}

/** One model request, before the provider sees it. */
export interface LlmGenerateAction extends ActionBase {
  /** `llm.generate`. */
  kind: "llm.generate";
  /** The provider capsule's name, e.g. `anthropic`. */
  provider: string;
  /** The model name the provider sends. */
  model: string;
  /** Characters of the whole prompt (system, messages, tool schemas). */
  promptChars: number;
  /** The request's `max_tokens` (output bound). */
  maxTokens: number;
}

/** Minting a capability token (a widening action). */
export interface CapabilityMintAction extends ActionBase {
  /** `capability.mint`. */
  kind: "capability.mint";
  /** What the token would grant. */
  grant: {
    /** The principal the token is for. */
    principal: string;
    /** The resource glob pattern. */
    resource: string;
    /** The permissions. */
    permissions: readonly Permission[];
  };
}

/** Changing a capsule's declared capabilities (a widening action). */
export interface CapabilityChangeAction extends ActionBase {
  /** `capability.change`. */
  kind: "capability.change";
  /** The capsule whose capabilities change. */
  capsule: string;
  /** What changes, in a sentence or compact JSON (shown to the human and audited). */
  change: string;
}

/** Identity administration: creating users, linking outside identities (a widening action). */
export interface IdentityAdminAction extends ActionBase {
  /** `identity.admin`. */
  kind: "identity.admin";
  /** The operation, e.g. `create_user`, `link`, `unlink`. */
  operation: string;
  /** What it acts on, e.g. a principal id or `telegram:12345`. */
  target: string;
}

/** Any action the security pipeline decides on. */
export type SensitiveAction =
  | FsAction
  | ProcessSpawnAction
  | NetRequestAction
  | ToolExecuteAction
  | LlmGenerateAction
  | CapabilityMintAction
  | CapabilityChangeAction
  | IdentityAdminAction;

/** What the pipeline derives from an action before deciding. */
export interface ActionInfo {
  /** The action's kind. */
  readonly kind: ActionKind;
  /** The token permission it needs. */
  readonly permission: Permission;
  /** The canonical resource string tokens and allowances are matched against. */
  readonly resource: string;
  /** True for {@link WIDENING_KINDS}. */
  readonly widening: boolean;
  /** `insideWorkspace` as given (false when absent). */
  readonly inside: boolean;
  /** The canonical host of a `net.request`; null when it cannot be canonicalized. */
  readonly host?: string | null;
  /** One line for an approval prompt, e.g. `write /work/repo/a.ts`. */
  readonly summary: string;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const TOOL_RE = /^[A-Za-z0-9_-]{1,64}(?:\/[A-Za-z0-9_-]{1,64})?$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$/;
const MAX_TEXT = 4096;

function invalid(field: string, kind: string, why: string): SecurityError {
  return new SecurityError(
    SecurityCode.ACTION_INVALID,
    `Invalid sensitive action field "${field}": ${why}`,
    { data: { field, kind } },
  );
}

function quote(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return `"${text.length > 64 ? text.slice(0, 64) + "…" : text}"`;
}

function text(action: Record<string, unknown>, field: string, kind: string): string {
  const v = action[field];
  if (typeof v !== "string" || v === "" || v.length > MAX_TEXT) {
    throw invalid(field, kind, `expected 1 to ${MAX_TEXT} characters, got ${quote(v)}`);
  }
  return v;
}

function count(action: Record<string, unknown>, field: string, kind: string): number {
  const v = action[field];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw invalid(field, kind, `expected a whole number ≥ 0, got ${quote(v)}`);
  }
  return v;
}

function strings(value: unknown, field: string, kind: string, min: number): readonly string[] {
  if (!Array.isArray(value) || value.length < min || value.length > 4096) {
    throw invalid(field, kind, `expected an array of ${min} to 4096 strings, got ${quote(value)}`);
  }
  for (const s of value) {
    if (typeof s !== "string") throw invalid(field, kind, `holds a non-string ${quote(s)}`);
  }
  return value as readonly string[];
}

/**
 * Checks the action's shape and derives its permission, canonical resource and prompt line.
 * Throws `ACTION_INVALID` naming the field for a malformed action (a caller bug). Values that
 * are well typed but unsafe (a non-canonical path, an unparsable host) are left to the policy
 * layer, which denies them with an audit entry.
 */
export function describeAction(action: SensitiveAction): ActionInfo {
  if (typeof action !== "object" || action === null) {
    throw invalid("(action)", "", "expected an object");
  }
  const a = action as unknown as Record<string, unknown>;
  const kind = a.kind as ActionKind;
  const permission = KIND_PERMISSION[kind];
  if (
    typeof kind !== "string" || permission === undefined || !Object.hasOwn(KIND_PERMISSION, kind)
  ) {
    throw invalid(
      "kind",
      String(kind),
      `unknown kind ${quote(kind)}: use ${ACTION_KINDS.join(", ")}`,
    );
  }
  if (typeof a.principal !== "string" || !isPrincipalId(a.principal)) {
    throw invalid("principal", kind, `expected a principal id, got ${quote(a.principal)}`);
  }
  for (const field of ["session", "workspace"]) {
    if (typeof a[field] !== "string" || !ID_RE.test(a[field] as string)) {
      throw invalid(
        field,
        kind,
        `expected 1 to 128 characters of A-Z, a-z, 0-9, ".", "_" or "-", got ${quote(a[field])}`,
      );
    }
  }
  if (a.insideWorkspace !== undefined && typeof a.insideWorkspace !== "boolean") {
    throw invalid("insideWorkspace", kind, `expected a boolean, got ${quote(a.insideWorkspace)}`);
  }
  const inside = a.insideWorkspace === true;
  const widening = WIDENING_KINDS.includes(kind);
  const base = { kind, permission, widening, inside };
  switch (kind) {
    case "fs.read":
    case "fs.write":
    case "fs.delete": {
      const path = text(a, "path", kind);
      const verb = kind === "fs.read" ? "read" : kind === "fs.write" ? "write" : "delete";
      return { ...base, resource: "fs:" + path, summary: `${verb} ${path}` };
    }
    case "process.spawn": {
      const argv = strings(a.argv, "argv", kind, 1);
      if (argv[0] === "") throw invalid("argv", kind, "argv[0] must name the program");
      return { ...base, resource: "process:" + argv[0], summary: `run ${argv.join(" ")}` };
    }
    case "net.request": {
      const raw = text(a, "host", kind);
      const port = count(a, "port", kind);
      if (port < 1 || port > 65535) {
        throw invalid("port", kind, `expected 1 to 65535, got ${quote(port)}`);
      }
      const host = canonicalHost(raw);
      return {
        ...base,
        host,
        resource: `net:${host ?? raw}:${port}`,
        summary: `connect to ${host ?? raw}:${port}`,
      };
    }
    case "tool.execute": {
      const tool = text(a, "tool", kind);
      if (!TOOL_RE.test(tool)) {
        throw invalid(
          "tool",
          kind,
          `expected a tool name (a-z, A-Z, 0-9, "_", "-"), got ${quote(tool)}`,
        );
      }
      if (a.native !== undefined && typeof a.native !== "boolean") {
        throw invalid("native", kind, `expected a boolean, got ${quote(a.native)}`);
      }
      if (a.argv !== undefined) strings(a.argv, "argv", kind, 1);
      if (a.paths !== undefined) strings(a.paths, "paths", kind, 0);
      return { ...base, resource: "tool:" + tool, summary: `call tool ${tool}` };
    }
    case "llm.generate": {
      const provider = text(a, "provider", kind);
      const model = text(a, "model", kind);
      for (const [field, v] of [["provider", provider], ["model", model]]) {
        if (!NAME_RE.test(v)) throw invalid(field, kind, `expected a plain name, got ${quote(v)}`);
      }
      count(a, "promptChars", kind);
      count(a, "maxTokens", kind);
      return {
        ...base,
        resource: `llm:${provider}/${model}`,
        summary: `ask ${provider}/${model}`,
      };
    }
    case "capability.mint": {
      const grant = a.grant as Record<string, unknown> | undefined;
      if (typeof grant !== "object" || grant === null) {
        throw invalid("grant", kind, `expected an object, got ${quote(grant)}`);
      }
      if (typeof grant.principal !== "string" || !isPrincipalId(grant.principal)) {
        throw invalid(
          "grant.principal",
          kind,
          `expected a principal id, got ${quote(grant.principal)}`,
        );
      }
      const resource = text(grant, "resource", kind);
      const perms = strings(grant.permissions, "grant.permissions", kind, 1);
      for (const p of perms) {
        if (!PERMISSIONS.includes(p as Permission)) {
          throw invalid("grant.permissions", kind, `unknown permission ${quote(p)}`);
        }
      }
      return {
        ...base,
        resource: `capability:${grant.principal}:${resource}`,
        summary: `grant ${grant.principal} ${perms.join(",")} on ${resource}`,
      };
    }
    case "capability.change": {
      const capsule = text(a, "capsule", kind);
      const change = text(a, "change", kind);
      return {
        ...base,
        resource: "capsule:" + capsule,
        summary: `change capsule ${capsule}: ${change}`,
      };
    }
    case "identity.admin": {
      const operation = text(a, "operation", kind);
      const target = text(a, "target", kind);
      return {
        ...base,
        resource: "identity:" + target,
        summary: `identity ${operation} ${target}`,
      };
    }
  }
}

/**
 * The canonical form of a host for `net:` resources and deny lists: lowercase, IDNA ASCII, no
 * trailing dot, IPv4 in dotted decimal (numeric forms such as `2852039166` or `0xa9fea9fe`
 * normalized, IPv4-mapped IPv6 unwrapped), IPv6 compressed in brackets. Null when `host` is
 * not a host (it holds a path, user info, a port or spaces).
 */
export function canonicalHost(host: string): string | null {
  let h = host.trim();
  if (h === "" || /[\s/?#@\\%]/.test(h)) return null;
  if (!h.startsWith("[") && h.includes(":")) h = `[${h}]`;
  if (h.endsWith(".") && !h.startsWith("[")) h = h.slice(0, -1);
  let parsed: string;
  try {
    const url = new URL(`http://${h}/`);
    if (url.port !== "" || url.pathname !== "/") return null;
    parsed = url.hostname;
  } catch {
    return null;
  }
  if (parsed.endsWith(".")) parsed = parsed.slice(0, -1);
  const mapped = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(parsed);
  if (mapped !== null) {
    const hi = parseInt(mapped[1], 16);
    const lo = parseInt(mapped[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return parsed === "" ? null : parsed;
}

/** Kind-specific fields of an action as compact JSON, for the audit entry's `details`. */
export function actionDetails(action: SensitiveAction, extra?: Record<string, unknown>): string {
  const {
    principal: _p,
    session: _s,
    workspace: _w,
    kind: _k,
    ...rest
  } = action as unknown as Record<string, unknown>;
  return JSON.stringify({ workspace: action.workspace, ...rest, ...extra });
}
