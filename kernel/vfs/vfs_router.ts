/**
 * `VfsRouter`: maps scheme paths to the filesystem that serves them, and is itself a
 * {@link Vfs}, so the host ABI holds one object per capsule invocation:
 *
 * | scheme | filesystem | root |
 * | --- | --- | --- |
 * | `workspace://` (and paths without a scheme) | the session's `OverlayVfs` | the workspace |
 * | `home://` | `HostVfs`, kernel dirs `.local/` and `.config/` reserved | `$ASTRID_HOME/home/{principal}/` |
 * | `global://` | `HostVfs`, read-only unless opened writable | `$ASTRID_HOME/global/` |
 *
 * `home://` never reaches `keys/`, `var/`, `run/` of the Astrid home or another principal's
 * directory: they lie outside its root, and `..`, absolute paths and symlinks cannot leave a
 * root.
 *
 * @module
 */
import { join } from "node:path";
import { AstridError, CommonCode } from "../errors.ts";
import type { AstridHome } from "../home/mod.ts";
import { principalId } from "../identity/mod.ts";
import { canonicalize, parseVfsUri } from "./canonicalize.ts";
import { quotePath, VfsCode, VfsError } from "./errors.ts";
import { HostVfs } from "./host_vfs.ts";
import type {
  MkdirOptions,
  ReadFileOptions,
  ResolvedVfsPath,
  ResolveOptions,
  RmdirOptions,
  Vfs,
  VfsEntry,
  VfsStat,
  WriteFileOptions,
} from "./vfs.ts";

/** A path resolved through the router: which filesystem, and the canonical URI. */
export interface RoutedVfsPath extends ResolvedVfsPath {
  /** The scheme that serves the path. */
  scheme: string;
  /** `scheme://canonical/path`: what policy globs and audit entries should see. */
  uri: string;
  /** The filesystem that serves the path. */
  vfs: Vfs;
}

/** Options of {@link VfsRouter.forSession}. */
export interface SessionVfsOptions {
  /** The acting principal. */
  principal: string;
  /** The session's workspace view (normally its `OverlayVfs`). */
  workspace: Vfs;
  /** Let `global://` be written (default read-only). */
  globalWritable?: boolean;
}

/** Top-level entries of a principal's home that `home://` does not serve. */
export const HOME_RESERVED: readonly string[] = [".local", ".config"];

/** Dispatches VFS paths to filesystems by scheme. */
export class VfsRouter implements Vfs {
  /** The scheme of paths written without one. */
  readonly scheme: string;
  #mounts: Map<string, Vfs>;

  /** Routes each scheme of `mounts` to its filesystem; `defaultScheme` serves bare paths. */
  constructor(mounts: Record<string, Vfs>, options: { defaultScheme?: string } = {}) {
    this.#mounts = new Map(Object.entries(mounts));
    for (const [scheme, vfs] of this.#mounts) {
      if (vfs.scheme !== scheme) {
        throw new AstridError(
          CommonCode.INVALID_ARGUMENT,
          `Cannot mount a "${vfs.scheme}" filesystem as "${scheme}://": open it with scheme "${scheme}"`,
          { data: { field: "mounts" } },
        );
      }
    }
    this.scheme = options.defaultScheme ?? "workspace";
    if (!this.#mounts.has(this.scheme)) {
      throw new AstridError(
        CommonCode.INVALID_ARGUMENT,
        `Default scheme "${this.scheme}" is not mounted: mount it or choose another`,
        { data: { field: "defaultScheme" } },
      );
    }
  }

  /**
   * The router of one session: `workspace://` is `options.workspace`, `home://` the
   * principal's directory (created), `global://` the shared `$ASTRID_HOME/global/` (created).
   */
  static async forSession(home: AstridHome, options: SessionVfsOptions): Promise<VfsRouter> {
    const principal = principalId(options.principal);
    const homeVfs = await HostVfs.open(home.principalDir(principal), {
      scheme: "home",
      reserved: HOME_RESERVED,
      create: true,
    });
    const globalVfs = await HostVfs.open(join(home.root, "global"), {
      scheme: "global",
      readOnly: !options.globalWritable,
      create: true,
    });
    return new VfsRouter({ workspace: options.workspace, home: homeVfs, global: globalVfs });
  }

  /** The filesystem mounted at `scheme`, if any. */
  mount(scheme: string): Vfs | undefined {
    return this.#mounts.get(scheme);
  }

  /** The filesystem that serves `path` (by its scheme, or the default). */
  vfsFor(path: string): Vfs {
    if (typeof path !== "string") canonicalize(path); // throws VFS_PATH_INVALID
    const { scheme } = parseVfsUri(path);
    const vfs = this.#mounts.get(scheme ?? this.scheme);
    if (vfs !== undefined) return vfs;
    throw new VfsError(
      VfsCode.VFS_SCHEME_UNKNOWN,
      `Path ${quotePath(path)} has unknown scheme "${scheme}": use ${
        [...this.#mounts.keys()].map((s) => `${s}://`).join(", ")
      }`,
      { data: { path: path.slice(0, 4096), scheme: scheme ?? undefined } },
    );
  }

  /** Resolves `path` to its filesystem and canonical `scheme://path` URI. */
  async route(path: string, options: ResolveOptions = {}): Promise<RoutedVfsPath> {
    const vfs = this.vfsFor(path);
    const resolved = await vfs.resolve(path, options);
    return { ...resolved, scheme: vfs.scheme, uri: `${vfs.scheme}://${resolved.path}`, vfs };
  }

  /** Resolves `path` in its filesystem. */
  async resolve(path: string, options?: ResolveOptions): Promise<ResolvedVfsPath> {
    return await this.vfsFor(path).resolve(path, options);
  }

  /** True when `path` exists. */
  async exists(path: string): Promise<boolean> {
    return await this.vfsFor(path).exists(path);
  }

  /** Reads a file. */
  async readFile(path: string, options?: ReadFileOptions): Promise<Uint8Array> {
    return await this.vfsFor(path).readFile(path, options);
  }

  /** Writes a file. */
  async writeFile(
    path: string,
    data: Uint8Array | string,
    options?: WriteFileOptions,
  ): Promise<void> {
    return await this.vfsFor(path).writeFile(path, data, options);
  }

  /** Creates a directory. */
  async mkdir(path: string, options?: MkdirOptions): Promise<void> {
    return await this.vfsFor(path).mkdir(path, options);
  }

  /** Lists a directory. */
  async readdir(path: string): Promise<VfsEntry[]> {
    return await this.vfsFor(path).readdir(path);
  }

  /** Kind, size and mtime. */
  async stat(path: string): Promise<VfsStat> {
    return await this.vfsFor(path).stat(path);
  }

  /** Removes a file or symlink. */
  async unlink(path: string): Promise<void> {
    return await this.vfsFor(path).unlink(path);
  }

  /** Removes a directory. */
  async rmdir(path: string, options?: RmdirOptions): Promise<void> {
    return await this.vfsFor(path).rmdir(path, options);
  }

  /** Moves `from` to `to`; both must be served by the same filesystem. */
  async rename(from: string, to: string): Promise<void> {
    const a = this.vfsFor(from);
    const b = this.vfsFor(to);
    if (a !== b) {
      throw new VfsError(
        VfsCode.VFS_CROSS_SCHEME,
        `Cannot rename ${quotePath(from)} to ${
          quotePath(to)
        }: they are on different filesystems (${a.scheme}://, ${b.scheme}://); copy and delete instead`,
        { data: { from: from.slice(0, 4096), to: to.slice(0, 4096) } },
      );
    }
    return await a.rename(from, to);
  }
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * The session directory of an overlay:
 * `$ASTRID_HOME/home/{principal}/.local/tmp/overlay/<workspace-id>/<session>/`.
 * Ids must be 1–128 characters of `A-Z a-z 0-9 _ . -`, starting with a letter or digit.
 */
export function overlaySessionDir(
  home: Pick<AstridHome, "principalDir">,
  ids: { principal: string; workspaceId: string; session: string },
): string {
  for (const [field, value] of [["workspaceId", ids.workspaceId], ["session", ids.session]]) {
    if (!ID_RE.test(value)) {
      throw new AstridError(
        CommonCode.INVALID_ARGUMENT,
        `Invalid ${field} ${
          JSON.stringify(value)
        }: use 1 to 128 characters of A-Z, a-z, 0-9, "_", "." or "-", starting with a letter or digit`,
        { data: { field } },
      );
    }
  }
  const principal = principalId(ids.principal);
  return join(
    home.principalDir(principal),
    ".local",
    "tmp",
    "overlay",
    ids.workspaceId,
    ids.session,
  );
}
