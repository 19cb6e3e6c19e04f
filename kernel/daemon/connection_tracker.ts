/**
 * The connection tracker: which authenticated connections are open, per principal and per
 * session, and which workspace each session is bound to.
 *
 * Two things hang off it: the idle monitor (told the total on every change) and the end of a
 * session — when the last connection attached to a (principal, session) closes, the
 * `sessionEnded` callbacks run (the daemon publishes `astrid.v1.session.ended`; the allowance
 * store drops that session's Allow Session allowances there).
 *
 * @module
 */

/** One authenticated connection, as the tracker knows it. */
export interface TrackedConnection {
  /** The connection id, `c-<n>`. */
  readonly id: string;
  /** The principal it acts for. */
  readonly principal: string;
  /** The session it is attached to. */
  readonly session: string;
  /** The workspace id its session is bound to, if any. */
  readonly workspaceId?: string;
  /** What the client said it is (`cli`, …). */
  readonly client: string;
}

/** What {@link ConnectionTracker.attach} decided. */
export type AttachResult =
  /** Attached; `newSession` when it is the session's first connection. */
  | { readonly ok: true; readonly newSession: boolean }
  /** Refused: the session is bound to another workspace. */
  | { readonly ok: false; readonly boundTo: string };

interface SessionEntry {
  count: number;
  workspaceId: string | undefined;
}

/** Counts connections per principal and session; see the module doc. */
export class ConnectionTracker {
  readonly #connections = new Map<string, TrackedConnection>();
  readonly #byPrincipal = new Map<string, number>();
  readonly #sessions = new Map<string, SessionEntry>();
  readonly #changed: ((total: number) => void)[] = [];
  readonly #ended: ((principal: string, session: string) => void)[] = [];

  /** Open authenticated connections. */
  get total(): number {
    return this.#connections.size;
  }

  /** Sessions with at least one connection attached. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** Calls `callback` with the new total after every attach and detach. */
  onChange(callback: (total: number) => void): void {
    this.#changed.push(callback);
  }

  /** Calls `callback` when the last connection of a (principal, session) detaches. */
  onSessionEnded(callback: (principal: string, session: string) => void): void {
    this.#ended.push(callback);
  }

  /**
   * Records `conn`. Refuses (and records nothing) when its session is already bound to another
   * workspace; a session first attached without a workspace is bound by the first connection
   * that names one.
   */
  attach(conn: TrackedConnection): AttachResult {
    const key = sessionKey(conn.principal, conn.session);
    const entry = this.#sessions.get(key);
    if (
      entry !== undefined && entry.workspaceId !== undefined && conn.workspaceId !== undefined &&
      entry.workspaceId !== conn.workspaceId
    ) {
      return { ok: false, boundTo: entry.workspaceId };
    }
    if (entry === undefined) {
      this.#sessions.set(key, { count: 1, workspaceId: conn.workspaceId });
    } else {
      entry.count++;
      entry.workspaceId ??= conn.workspaceId;
    }
    this.#connections.set(conn.id, conn);
    this.#byPrincipal.set(conn.principal, (this.#byPrincipal.get(conn.principal) ?? 0) + 1);
    this.#notify();
    return { ok: true, newSession: entry === undefined };
  }

  /** Forgets connection `id` (unknown ids are ignored); may end its session. */
  detach(id: string): void {
    const conn = this.#connections.get(id);
    if (conn === undefined) return;
    this.#connections.delete(id);
    const n = (this.#byPrincipal.get(conn.principal) ?? 1) - 1;
    if (n <= 0) this.#byPrincipal.delete(conn.principal);
    else this.#byPrincipal.set(conn.principal, n);
    const key = sessionKey(conn.principal, conn.session);
    const entry = this.#sessions.get(key);
    let ended = false;
    if (entry !== undefined && --entry.count <= 0) {
      this.#sessions.delete(key);
      ended = true;
    }
    this.#notify();
    if (ended) {
      for (const cb of this.#ended) cb(conn.principal, conn.session);
    }
  }

  /** The workspace id the (principal, session) is bound to, if attached and bound. */
  sessionWorkspace(principal: string, session: string): string | undefined {
    return this.#sessions.get(sessionKey(principal, session))?.workspaceId;
  }

  /** Connections per principal, most first, then by name. */
  byPrincipal(): { principal: string; count: number }[] {
    return [...this.#byPrincipal]
      .map(([principal, count]) => ({ principal, count }))
      .sort((a, b) => b.count - a.count || (a.principal < b.principal ? -1 : 1));
  }

  /** A snapshot of the open connections. */
  list(): TrackedConnection[] {
    return [...this.#connections.values()];
  }

  #notify(): void {
    const total = this.#connections.size;
    for (const cb of this.#changed) cb(total);
  }
}

function sessionKey(principal: string, session: string): string {
  return `${principal}\u0000${session}`;
}
