/**
 * `OverlayService`: the daemon's door to the session overlays (DESIGN §6a) for frontends —
 * `astrid diff`, `astrid commit`, `astrid discard` and `/diff`, `/commit`, `/discard` in chat,
 * over the protocol methods `diff`, `commit`, `discard`.
 *
 * The overlay of a (principal, workspace, session) lives in
 * `home/{principal}/.local/tmp/overlay/<workspace-id>/<session>/` (`overlaySessionDir`). Each
 * call opens it with `OverlayVfs.open`, acts, and closes its handle; within the daemon's process
 * every `OverlayVfs` of one session directory shares one state and one exclusive lock, so this
 * handle and the capsule host's cached one (`CapsuleHostServices`) never disagree, and a commit
 * waits for a write in progress. A session that never wrote has no directory: diff is empty,
 * commit and discard do nothing (no directory is created for them).
 *
 * It also keeps which root each workspace id names, learnt from the hellos that bind sessions
 * ({@link remember}), and tells listeners (the capsule host's `WorkspaceDirectory`, whose VFS
 * routing needs the root to open a session's overlay).
 *
 * @module
 */
import { dirname, join } from "node:path";
import type { Clock } from "../clock.ts";
import type { AstridHome } from "../home/mod.ts";
import { type CommitResult, overlaySessionDir, OverlayVfs, type VfsChange } from "../vfs/mod.ts";

const SESSION_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Which overlay: a principal's session bound to a workspace. */
export interface OverlayScope {
  /** The principal. */
  readonly principal: string;
  /** The session. */
  readonly session: string;
  /** The workspace id the session is bound to. */
  readonly workspaceId: string;
  /** The workspace root (the overlay's lower layer). */
  readonly root: string;
}

/** What a before-access hook settles: a session's overlay, or every session of a workspace. */
export interface SettleScope {
  /** The principal. */
  readonly principal: string;
  /** The workspace id. */
  readonly workspaceId: string;
  /** The session; absent: every session of (principal, workspace). */
  readonly session?: string;
}

/** Options of {@link OverlayService}. */
export interface OverlayServiceOptions {
  /** The kernel's clock (stamps a new overlay's `created_at`). */
  readonly clock?: Clock;
}

/** Diff, commit and discard of session overlays; see the module doc. */
export class OverlayService {
  readonly #home: Pick<AstridHome, "principalDir">;
  readonly #clock: Clock | undefined;
  readonly #roots = new Map<string, string>();
  readonly #listeners: ((id: string, root: string) => void)[] = [];
  readonly #before: ((scope: SettleScope) => Promise<void>)[] = [];

  /** Serves the overlays under `home`. */
  constructor(home: Pick<AstridHome, "principalDir">, options: OverlayServiceOptions = {}) {
    this.#home = home;
    this.#clock = options.clock;
  }

  /** Records that workspace `id` is at `root` and tells the listeners (once per change). */
  remember(id: string, root: string): void {
    if (this.#roots.get(id) === root) return;
    this.#roots.set(id, root);
    for (const l of this.#listeners) {
      try {
        l(id, root);
      } catch {
        // A listener's failure is its own.
      }
    }
  }

  /** The root of workspace `id`, when a hello named it. */
  root(id: string): string | undefined {
    return this.#roots.get(id);
  }

  /** Calls `listener` for every workspace remembered from now on, and each known one now. */
  onRemember(listener: (id: string, root: string) => void): void {
    this.#listeners.push(listener);
    for (const [id, root] of this.#roots) listener(id, root);
  }

  /**
   * Runs `hook` before every diff, commit, discard and listing: whatever else writes into the
   * overlays of that scope (a sandboxed MCP server's upper dir: `McpHost.settle`) folds its
   * writes first. A hook's failure fails the operation.
   */
  onBeforeAccess(hook: (scope: SettleScope) => Promise<void>): void {
    this.#before.push(hook);
  }

  /** The session directory of `scope`. */
  sessionDir(scope: OverlayScope): string {
    return overlaySessionDir(this.#home, {
      principal: scope.principal,
      workspaceId: scope.workspaceId,
      session: scope.session,
    });
  }

  /** The overlay's changes against the workspace (`text`: unified diffs of small text files). */
  async diff(
    scope: OverlayScope,
    options: { paths?: readonly string[]; text?: boolean } = {},
  ): Promise<VfsChange[]> {
    await this.#settle(scope);
    return await this.#with(scope, [], (vfs) => vfs.diff(options));
  }

  /** Applies the overlay's changes (or those under `paths`); conflicting ones stay. */
  async commit(
    scope: OverlayScope,
    options: { paths?: readonly string[]; force?: boolean } = {},
  ): Promise<CommitResult> {
    await this.#settle(scope);
    return await this.#with(scope, { applied: [], conflicts: [] }, (vfs) => vfs.commit(options));
  }

  /** Drops every uncommitted change; resolves how many there were. */
  async discard(scope: OverlayScope): Promise<number> {
    await this.#settle(scope);
    return await this.#with(scope, 0, async (vfs) => {
      const n = (await vfs.diff()).length;
      await vfs.discard();
      return n;
    });
  }

  /**
   * The sessions of (principal, workspace) whose overlays hold changes, newest change first:
   * `{ session, changes, changedAt }` (`changedAt`: the newest modification in its upper layer).
   */
  async sessions(
    scope: Omit<OverlayScope, "session">,
  ): Promise<{ session: string; changes: number; changedAt: number }[]> {
    const dir = dirname(this.sessionDir({ ...scope, session: "x" }));
    await this.#settle({ principal: scope.principal, workspaceId: scope.workspaceId });
    const out: { session: string; changes: number; changedAt: number }[] = [];
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
    for (const e of entries) {
      if (!e.isDirectory || !SESSION_RE.test(e.name)) continue;
      // The upper layer's times, read before the diff opens the overlay (which may touch
      // its bookkeeping files).
      const changedAt = await newestMtime(join(dir, e.name, "upper"));
      const changes = (await this.#with({ ...scope, session: e.name }, [], (v) => v.diff())).length;
      if (changes > 0) out.push({ session: e.name, changes, changedAt });
    }
    return out.sort((a, b) => b.changedAt - a.changedAt || (a.session < b.session ? -1 : 1));
  }

  async #settle(scope: SettleScope): Promise<void> {
    for (const hook of this.#before) {
      await hook({
        principal: scope.principal,
        workspaceId: scope.workspaceId,
        ...(scope.session === undefined ? {} : { session: scope.session }),
      });
    }
  }

  async #with<T>(scope: OverlayScope, none: T, fn: (vfs: OverlayVfs) => Promise<T>): Promise<T> {
    const dir = this.sessionDir(scope);
    try {
      await Deno.lstat(dir);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return none;
      throw err;
    }
    const vfs = await OverlayVfs.open(scope.root, dir, { clock: this.#clock });
    try {
      return await fn(vfs);
    } finally {
      vfs.close();
    }
  }
}

/** The newest modification time under `dir` (at most 10,000 entries looked at), ms. */
async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  let budget = 10_000;
  const walk = async (path: string): Promise<void> => {
    if (budget-- <= 0) return;
    const info = await Deno.lstat(path).catch(() => null);
    if (info === null) return;
    newest = Math.max(newest, info.mtime?.getTime() ?? 0);
    if (!info.isDirectory) return;
    for await (const e of Deno.readDir(path)) await walk(join(path, e.name));
  };
  await walk(dir);
  return newest;
}
