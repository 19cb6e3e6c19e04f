/**
 * The virtual filesystem: every file a capsule touches goes through here. It owns path
 * resolution (the one choke point: `..`, absolute paths, symlinks, NUL and length limits are
 * rejected before the host filesystem is touched), the schemes (`workspace://`, `home://`,
 * `global://`), the host filesystem, and the session overlay with its diff, commit, discard,
 * lock and fold. Deciding whether an access is allowed belongs to `security/` (which checks
 * canonical paths from {@link resolveVfsPath} or {@link VfsRouter.route}); running native
 * subprocesses over the overlay belongs to the process host. See `docs/vfs.md`.
 *
 * @module
 */
export type {
  MkdirOptions,
  ReadFileOptions,
  ResolvedVfsPath,
  ResolveOptions,
  RmdirOptions,
  Vfs,
  VfsEntry,
  VfsKind,
  VfsStat,
  WriteFileOptions,
} from "./vfs.ts";
export {
  canonicalize,
  type CanonicalizeOptions,
  parseVfsUri,
  utf8Length,
  VFS_LIMITS,
} from "./canonicalize.ts";
export { resolveVfsPath, type ResolveVfsPathOptions } from "./resolve_vfs_path.ts";
export { HostVfs, type HostVfsOptions } from "./host_vfs.ts";
export { OverlayVfs, type OverlayVfsOptions } from "./overlay_vfs.ts";
export type { DiffOptions, VfsChange } from "./overlay_diff.ts";
export type { CommitOptions, CommitResult, VfsConflict } from "./overlay_commit.ts";
export type { FoldResult } from "./fold_upper.ts";
export { describeBase, type FileStamp, type LowerBase } from "./lower_base.ts";
export {
  HOME_RESERVED,
  overlaySessionDir,
  type RoutedVfsPath,
  type SessionVfsOptions,
  VfsRouter,
} from "./vfs_router.ts";
export { SessionLock } from "./session_lock.ts";
export {
  defaultWhiteoutFormat,
  isOpaqueDir,
  isWhiteoutInfo,
  makeWhiteout,
  probeWhiteoutFormat,
  WHITEOUT_MARKER_PREFIX,
  type WhiteoutFormat,
} from "./whiteout.ts";
export { unifiedDiff, type UnifiedDiffOptions } from "./unified_diff.ts";
export { VfsCode, VfsError, type VfsErrorData } from "./errors.ts";
