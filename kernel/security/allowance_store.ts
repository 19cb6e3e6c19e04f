/**
 * Allowances: what an "Allow Session" or "Allow Workspace" answer leaves behind, so later
 * calls it covers pass without asking.
 *
 * An allowance covers one action kind and a resource glob pattern. By default the pattern is
 * the escaped resource itself (`escapeGlob`), so it matches exactly the same (kind, resource)
 * again; the human's answer may widen it to a pattern (`fs:/work/repo/src/**`), which must
 * start with the resource's `<kind>:` prefix and match the resource. Widening kinds never get
 * an allowance.
 *
 * - Session scope: kept in memory keyed (principal, session), so every frontend attached to
 *   that session sees it; dropped by {@link AllowanceStore.endSession}, which the daemon calls
 *   when the last connection attached to the session closes.
 * - Workspace scope: persisted keyed (principal, workspace) in namespace
 *   `{principal}:kernel:allowances`, key `workspace/<workspace id>/<allowance id>` → the
 *   allowance as JSON; loaded once per (principal, workspace) and cached.
 *
 * Allow Always is not an allowance: it mints a capability token (token layer).
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { compileGlob, escapeGlob, type Glob } from "../capabilities/mod.ts";
import { toHex } from "../crypto/mod.ts";
import { kernelNamespace, type Store } from "../storage/mod.ts";
import { SecurityCode, SecurityError } from "./errors.ts";
import { ACTION_KINDS, type ActionKind, WIDENING_KINDS } from "./sensitive_action.ts";

/** How long an allowance lasts. */
export type AllowanceScope = "session" | "workspace";

/** A stored allowance. */
export interface Allowance {
  /** 128 random bits as 32 lowercase hex characters; the audit entry's `rule`. */
  readonly id: string;
  /** Session or workspace. */
  readonly scope: AllowanceScope;
  /** The principal it is for. */
  readonly principal: string;
  /** The session (session scope) or workspace id (workspace scope) it is keyed by. */
  readonly key: string;
  /** The action kind it covers. */
  readonly kind: ActionKind;
  /** The resource glob pattern it covers. */
  readonly pattern: string;
  /** When it was granted, ms since the epoch. */
  readonly created_at: number;
  /** The approval request whose answer granted it. */
  readonly request_id: string;
}

/** What {@link AllowanceStore.grant} records. */
export interface AllowanceGrant {
  /** The principal. */
  principal: string;
  /** The session (used for session scope). */
  session: string;
  /** The workspace id (used for workspace scope). */
  workspace: string;
  /** The action kind. */
  kind: ActionKind;
  /** The resource of the approved action. */
  resource: string;
  /** A wider pattern the human chose; default: exactly `resource`. */
  pattern?: string;
  /** The approval request whose answer grants it. */
  requestId: string;
}

/** Options of {@link AllowanceStore}. */
export interface AllowanceStoreOptions {
  /** Stamps `created_at`. */
  clock: Clock;
  /** Told about a stored record that was skipped because it is unreadable. */
  onInvalid?(key: string, error: unknown): void;
}

interface Entry {
  allowance: Allowance;
  glob: Glob;
}

interface Index {
  exact: Map<string, Entry>;
  patterns: Entry[];
}

type KindIndex = Map<ActionKind, Index>;

const SUBSYSTEM = "allowances";
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Session allowances in memory and workspace allowances in the store; see the module doc. */
export class AllowanceStore {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #onInvalid: AllowanceStoreOptions["onInvalid"];
  readonly #sessions = new Map<string, KindIndex>();
  readonly #workspaces = new Map<string, KindIndex>();
  readonly #loading = new Map<string, Promise<KindIndex>>();

  /** Keeps workspace allowances in `store`. */
  constructor(store: Store, options: AllowanceStoreOptions) {
    this.#store = store;
    this.#clock = options.clock;
    this.#onInvalid = options.onInvalid;
  }

  /**
   * Records an allowance of `scope` for `grant`; a workspace one resolves once durable.
   * Throws `ALLOWANCE_INVALID` for a widening kind, or a pattern that does not compile, does
   * not start with the resource's `<kind>:` prefix or does not match the resource.
   */
  async grant(scope: AllowanceScope, grant: AllowanceGrant): Promise<Allowance> {
    const pattern = allowancePattern(grant);
    const allowance: Allowance = Object.freeze({
      id: toHex(crypto.getRandomValues(new Uint8Array(16))),
      scope,
      principal: grant.principal,
      key: scope === "session" ? grant.session : grant.workspace,
      kind: grant.kind,
      pattern,
      created_at: this.#clock.now(),
      request_id: grant.requestId,
    });
    if (scope === "session") {
      const k = grant.principal + "\0" + grant.session;
      let index = this.#sessions.get(k);
      if (index === undefined) {
        index = new Map();
        this.#sessions.set(k, index);
      }
      insert(index, allowance);
      return allowance;
    }
    const index = await this.#workspace(grant.principal, grant.workspace);
    await this.#store.set(
      kernelNamespace(grant.principal, SUBSYSTEM),
      recordKey(grant.workspace, allowance.id),
      encoder.encode(JSON.stringify(allowance)),
    );
    insert(index, allowance);
    return allowance;
  }

  /**
   * The allowance covering `kind` on `resource` for (principal, session) or, failing that,
   * (principal, workspace); null when none. Session allowances are tried first; within a
   * scope, exact patterns before wider ones.
   */
  find(
    action: { principal: string; session: string; workspace: string; kind: ActionKind },
    resource: string,
  ): Promise<Allowance | null> {
    const session = this.#sessions.get(action.principal + "\0" + action.session);
    const hit = session === undefined ? null : lookup(session, action.kind, resource);
    if (hit !== null) return Promise.resolve(hit);
    const ws = this.#workspaces.get(action.principal + "\0" + action.workspace);
    if (ws !== undefined) return Promise.resolve(lookup(ws, action.kind, resource));
    return this.#workspace(action.principal, action.workspace).then((index) =>
      lookup(index, action.kind, resource)
    );
  }

  /** The session allowances of (principal, session). */
  listSession(principal: string, session: string): Allowance[] {
    return all(this.#sessions.get(principal + "\0" + session));
  }

  /** The workspace allowances of (principal, workspace). */
  async listWorkspace(principal: string, workspace: string): Promise<Allowance[]> {
    return all(await this.#workspace(principal, workspace));
  }

  /** Deletes workspace allowance `id`; resolves true when it existed. */
  async revokeWorkspace(principal: string, workspace: string, id: string): Promise<boolean> {
    const index = await this.#workspace(principal, workspace);
    for (const entries of index.values()) {
      for (const [k, e] of entries.exact) if (e.allowance.id === id) entries.exact.delete(k);
      const at = entries.patterns.findIndex((e) => e.allowance.id === id);
      if (at >= 0) entries.patterns.splice(at, 1);
    }
    return await this.#store.delete(
      kernelNamespace(principal, SUBSYSTEM),
      recordKey(workspace, id),
    );
  }

  /**
   * Drops every session allowance of (principal, session); returns how many went. The daemon
   * calls it when the last connection attached to the session closes.
   */
  endSession(principal: string, session: string): number {
    const k = principal + "\0" + session;
    const n = all(this.#sessions.get(k)).length;
    this.#sessions.delete(k);
    return n;
  }

  #workspace(principal: string, workspace: string): Promise<KindIndex> {
    const k = principal + "\0" + workspace;
    const cached = this.#workspaces.get(k);
    if (cached !== undefined) return Promise.resolve(cached);
    let loading = this.#loading.get(k);
    if (loading === undefined) {
      loading = this.#load(principal, workspace).then((index) => {
        this.#workspaces.set(k, index);
        return index;
      }).finally(() => this.#loading.delete(k));
      this.#loading.set(k, loading);
    }
    return loading;
  }

  async #load(principal: string, workspace: string): Promise<KindIndex> {
    const index: KindIndex = new Map();
    const rows = await this.#store.scan(kernelNamespace(principal, SUBSYSTEM), {
      prefix: `workspace/${workspace}/`,
    });
    for (const { key, value } of rows) {
      try {
        const a = JSON.parse(decoder.decode(value)) as Allowance;
        if (
          a.scope !== "workspace" || a.principal !== principal || a.key !== workspace ||
          !ACTION_KINDS.includes(a.kind) || WIDENING_KINDS.includes(a.kind) ||
          typeof a.pattern !== "string" || key !== recordKey(workspace, a.id)
        ) {
          throw new Error(`Allowance record "${key}" does not belong here`);
        }
        insert(index, Object.freeze(a));
      } catch (err) {
        this.#onInvalid?.(key, err);
      }
    }
    return index;
  }
}

function recordKey(workspace: string, id: string): string {
  return `workspace/${workspace}/${id}`;
}

/**
 * The pattern an allowance (or an Allow Always token) for `grant` gets: `grant.pattern` when
 * it compiles, starts with the resource's `<kind>:` prefix and matches the resource, else
 * `ALLOWANCE_INVALID`; the escaped resource itself when no pattern is given. Widening kinds
 * are refused.
 */
export function allowancePattern(
  grant: { kind: ActionKind; resource: string; pattern?: string },
): string {
  const fail = (pattern: string, why: string): SecurityError =>
    new SecurityError(
      SecurityCode.ALLOWANCE_INVALID,
      `Invalid allowance pattern "${pattern}": ${why}`,
      { data: { pattern } },
    );
  if (WIDENING_KINDS.includes(grant.kind) || !ACTION_KINDS.includes(grant.kind)) {
    throw fail(grant.pattern ?? grant.resource, `kind "${grant.kind}" cannot have an allowance`);
  }
  const pattern = grant.pattern ?? escapeGlob(grant.resource);
  let glob: Glob;
  try {
    glob = compileGlob(pattern);
  } catch (err) {
    throw fail(pattern, (err as Error).message);
  }
  const prefix = grant.resource.slice(0, grant.resource.indexOf(":") + 1);
  if (prefix === "" || !pattern.startsWith(prefix)) {
    throw fail(pattern, `it must start with "${prefix}"`);
  }
  if (!glob.match(grant.resource)) {
    throw fail(pattern, `it does not match the approved resource "${grant.resource}"`);
  }
  return pattern;
}

function insert(index: KindIndex, allowance: Allowance): void {
  let entries = index.get(allowance.kind);
  if (entries === undefined) {
    entries = { exact: new Map(), patterns: [] };
    index.set(allowance.kind, entries);
  }
  const glob = compileGlob(allowance.pattern);
  if (glob.literal !== null) {
    if (!entries.exact.has(glob.literal)) entries.exact.set(glob.literal, { allowance, glob });
  } else {
    entries.patterns.push({ allowance, glob });
  }
}

function lookup(index: KindIndex, kind: ActionKind, resource: string): Allowance | null {
  const entries = index.get(kind);
  if (entries === undefined) return null;
  const exact = entries.exact.get(resource);
  if (exact !== undefined) return exact.allowance;
  for (const e of entries.patterns) if (e.glob.match(resource)) return e.allowance;
  return null;
}

function all(index: KindIndex | undefined): Allowance[] {
  if (index === undefined) return [];
  const out: Allowance[] = [];
  for (const entries of index.values()) {
    for (const e of entries.exact.values()) out.push(e.allowance);
    for (const e of entries.patterns) out.push(e.allowance);
  }
  return out.sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1));
}
