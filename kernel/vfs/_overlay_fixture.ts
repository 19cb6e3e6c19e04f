/**
 * Test fixtures for the overlay: a workspace and an Astrid home in temp dirs, overlays opened
 * at their real session paths, and a BLAKE3 snapshot of a tree to prove it unchanged.
 *
 * @module
 */
import { join } from "node:path";
import { blake3File } from "../crypto/mod.ts";
import { OverlayVfs, type OverlayVfsOptions } from "./overlay_vfs.ts";
import { overlaySessionDir } from "./vfs_router.ts";

/** A workspace, a home, and helpers to open overlays of principals' sessions over it. */
export interface OverlayFixture {
  /** The workspace (lower layer). */
  ws: string;
  /** The Astrid home root. */
  home: string;
  /** Opens the overlay of `principal`'s `session` over the workspace. */
  open(principal?: string, session?: string, options?: OverlayVfsOptions): Promise<OverlayVfs>;
  /** The session dir of `principal`'s `session`. */
  sessionDir(principal?: string, session?: string): string;
  /** Closes every overlay opened and removes the temp dirs. */
  dispose(): Promise<void>;
}

/** Makes an {@link OverlayFixture}. */
export async function overlayFixture(): Promise<OverlayFixture> {
  const base = await Deno.makeTempDir();
  const ws = join(base, "workspace");
  const home = join(base, "astrid");
  await Deno.mkdir(ws);
  await Deno.mkdir(home);
  const opened: OverlayVfs[] = [];
  const homeView = { principalDir: (p: string) => join(home, "home", p) };
  const sessionDir = (principal = "alice", session = "s1") =>
    overlaySessionDir(homeView, { principal, workspaceId: "ws1", session });
  return {
    ws,
    home,
    sessionDir,
    async open(principal = "alice", session = "s1", options = {}) {
      const vfs = await OverlayVfs.open(ws, sessionDir(principal, session), options);
      opened.push(vfs);
      return vfs;
    },
    async dispose() {
      for (const vfs of opened) vfs.close();
      await Deno.remove(base, { recursive: true });
    },
  };
}

/** Every entry below `dir` with its kind and, for files, BLAKE3 and mode. */
export async function treeSnapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (host: string, rel: string): Promise<void> => {
    for await (const entry of Deno.readDir(host)) {
      const childRel = rel === "" ? entry.name : `${rel}/${entry.name}`;
      const childHost = `${host}/${entry.name}`;
      const info = await Deno.lstat(childHost);
      if (info.isDirectory) {
        out[childRel] = "dir";
        await walk(childHost, childRel);
      } else if (info.isSymlink) {
        out[childRel] = `symlink ${await Deno.readLink(childHost)}`;
      } else if (info.isFile) {
        out[childRel] = `file ${(info.mode! & 0o777).toString(8)} ${await blake3File(childHost)}`;
      } else {
        out[childRel] = `other ${info.rdev}`;
      }
    }
  };
  await walk(dir, "");
  return out;
}
