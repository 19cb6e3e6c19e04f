/**
 * The native-command sandbox (DESIGN §6a): runs a native command of a (principal, workspace,
 * session) in fresh user, mount, PID, IPC, UTS, cgroup and network namespaces whose view of
 * the workspace is a kernel overlayfs stacked on the session's overlay, so what the command
 * writes lands in the diff that commit and discard act on; paths the policy denies are masked
 * inside the namespace; the rest of the host is a read-only system view with a private
 * `/tmp`. It owns the mechanism: the probe ({@link sandboxStatus}), the setup, timeouts,
 * output caps, background processes and the fold under the session lock. Deciding whether a
 * command may run (policy blocks such as `sudo`, approvals, the manifest's `host_process`)
 * belongs to `security/` and the process host calls; the overlay itself to `vfs/`. See
 * `docs/sandbox.md`.
 *
 * @module
 */
export { NativeSandbox, type NativeSandboxDefaults } from "./native_sandbox.ts";
export {
  DEFAULT_KILL_GRACE_MS,
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_TIMEOUT_MS,
  runSandboxed,
  type RunSandboxedOptions,
  type SandboxResult,
} from "./run_sandboxed.ts";
export {
  type BackgroundExit,
  DEFAULT_LOG_BYTES,
  type SandboxProcess,
  spawnBackground,
  type SpawnBackgroundOptions,
} from "./spawn_background.ts";
export {
  REQUIRED_TOOLS,
  type SandboxMechanism,
  type SandboxStatus,
  sandboxStatus,
} from "./sandbox_status.ts";
export {
  type SandboxCommand,
  type SandboxOptions,
  type SandboxTimers,
  systemSandboxTimers,
} from "./sandbox_command.ts";
export {
  findMaskedPaths,
  type FindMaskedPathsOptions,
  MASK_WALK_LIMIT,
  type MaskedPaths,
} from "./mask_paths.ts";
export { type LogChunk, type LogPage, LogRing, type LogStream } from "./log_ring.ts";
export { SandboxCode, SandboxError, type SandboxErrorData } from "./errors.ts";
