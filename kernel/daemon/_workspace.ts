/**
 * A workspace's id: `<root>/.astrid/workspace-id`, 32 random hex digits written on first use.
 * Overlays, Allow Workspace allowances, the workspace budget and config layer key on it, so a
 * moved or renamed project keeps its id.
 *
 * @module
 */
import { DaemonCode, DaemonError } from "./errors.ts";

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** A bound workspace. */
export interface WorkspaceBinding {
  /** The absolute root the client sent. */
  readonly root: string;
  /** Its id. */
  readonly id: string;
}

/** Reads (or creates) the id of the workspace at `root`; throws `INVALID_ARGUMENT`-like errors. */
export async function bindWorkspace(root: string): Promise<WorkspaceBinding> {
  if (!root.startsWith("/")) throw invalid(`Workspace "${root}" is not an absolute path`);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(root);
  } catch {
    throw invalid(`Workspace "${root}" does not exist`);
  }
  if (!info.isDirectory) throw invalid(`Workspace "${root}" is not a directory`);
  const file = `${root === "/" ? "" : root}/.astrid/workspace-id`;
  try {
    const id = (await Deno.readTextFile(file)).trim();
    if (!ID_RE.test(id)) {
      throw invalid(
        `Workspace id file "${file}", line 1: "${
          id.slice(0, 40)
        }" is not a valid id: delete the file to get a new one`,
      );
    }
    return { root, id };
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  await Deno.mkdir(`${root === "/" ? "" : root}/.astrid`, { recursive: true });
  // Create-if-absent, atomically: write a temporary file, then hard-link it into place; a
  // concurrent first use that linked first wins and this one reads its id.
  const tmp = `${file}.${id}.tmp`;
  await Deno.writeTextFile(tmp, id + "\n", { mode: 0o644 });
  try {
    await Deno.link(tmp, file);
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    return await bindWorkspace(root);
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
  return { root, id };
}

function invalid(message: string): DaemonError {
  return new DaemonError(DaemonCode.DAEMON_PROTOCOL, message, { data: { code: "INVALID_HELLO" } });
}
