/**
 * `WorkspaceDirectory`: which host directory a workspace id names. Messages carry only the id
 * (`workspace_id`, stamped by the daemon); the host services need the root to open the
 * session's overlay, and the registry needs it to find `<root>/.astrid/capsules`.
 *
 * Roots are learnt from whoever binds a session to a workspace (`remember`) and, at start,
 * from the workspace capsules directories installs recorded (`seedFromInstalls`: each
 * `<root>/.astrid/capsules` whose `<root>/.astrid/workspace-id` can be read). A root is
 * accepted only when its `.astrid/workspace-id` holds the id, so a stale entry never maps an
 * id to another project.
 *
 * @module
 */
import { dirname, join } from "node:path";

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Maps workspace ids to their roots; see the module doc. */
export class WorkspaceDirectory {
  readonly #roots = new Map<string, string>();
  readonly #listeners: ((id: string, root: string) => void)[] = [];

  /**
   * Records that `id` is the workspace at `root` (an absolute path) and tells the
   * {@link onRemember} listeners (a session was bound there); false when it is not.
   */
  async remember(id: string, root: string): Promise<boolean> {
    if (!ID_RE.test(id) || !root.startsWith("/")) return false;
    if (await readId(root) !== id) return false;
    this.#roots.set(id, root);
    for (const listener of this.#listeners) {
      try {
        listener(id, root);
      } catch {
        // A listener's failure is its own to report.
      }
    }
    return true;
  }

  /** Calls `listener` after each successful {@link remember} (not for seeds). */
  onRemember(listener: (id: string, root: string) => void): void {
    this.#listeners.push(listener);
  }

  /** Records roots from workspace capsules directories (`<root>/.astrid/capsules`). */
  async seedFromInstalls(capsulesDirs: readonly string[]): Promise<number> {
    let n = 0;
    for (const dir of capsulesDirs) {
      const root = dirname(dirname(dir));
      const id = await readId(root);
      if (id !== undefined && ID_RE.test(id)) {
        this.#roots.set(id, root);
        n++;
      }
    }
    return n;
  }

  /** The root of workspace `id`, if known. */
  root(id: string): string | undefined {
    return this.#roots.get(id);
  }

  /** Every known (id, root). */
  entries(): [string, string][] {
    return [...this.#roots.entries()];
  }
}

async function readId(root: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(join(root, ".astrid", "workspace-id"))).trim();
  } catch {
    return undefined;
  }
}
