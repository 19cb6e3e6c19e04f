/**
 * The setup script a sandboxed command runs under: pure text built from a {@link SandboxPlan},
 * executed by `sh` as PID 1 of fresh user, mount, PID, IPC, UTS, cgroup (and, unless the
 * network is allowed, network) namespaces made by `unshare`. It builds a new root on a tmpfs
 * (read-only system binds, a private `/tmp` and `/dev`, the workspace as a kernel overlayfs,
 * masks over denied paths, a fresh `/proc`), pivots into it, then runs the command in a
 * nested user + mount namespace (which locks every mount) with every capability dropped and
 * `no_new_privs` set. Every path is single-quoted, so no path can inject shell text.
 *
 * Protocol with the runner: the setup's own output goes to `<cmd>/setup.log`; when the root is
 * ready the script writes {@link READY_MARKER} to the real stdout, restores stdout/stderr and
 * runs the command in the foreground; its exit status (128 + n for a signal) is the script's.
 * No marker means the setup failed. The command's environment is sourced from `<cmd>/env`
 * (fd 5) by a shell that runs after the capabilities are dropped, so no variable the caller
 * chose (`LD_PRELOAD`…) ever reaches a privileged setup step, and none appears in an argv.
 *
 * @module
 */
import type { Remount } from "./_mountinfo.ts";

/** Written to stdout when the sandbox is ready and the command starts. */
export const READY_MARKER = "ASTRID-SANDBOX-READY\n";

/** The directories of the host bound into every sandbox root (those that exist). */
export const SYSTEM_PATHS: readonly string[] = [
  "/usr",
  "/bin",
  "/sbin",
  "/lib",
  "/lib32",
  "/lib64",
  "/libx32",
  "/etc",
  "/opt",
];

/** Files and directories of `/etc` always masked (secrets a command never needs). */
export const ETC_SECRETS: readonly string[] = [
  "/etc/shadow",
  "/etc/shadow-",
  "/etc/gshadow",
  "/etc/gshadow-",
  "/etc/sudoers",
  "/etc/sudoers.d",
  "/etc/ssl/private",
  "/etc/security/opasswd",
  "/etc/krb5.keytab",
  "/etc/ssh/ssh_host_dsa_key",
  "/etc/ssh/ssh_host_ecdsa_key",
  "/etc/ssh/ssh_host_ed25519_key",
  "/etc/ssh/ssh_host_rsa_key",
];

/** One host path made visible in the sandbox root. */
export type PlanBind =
  | {
    /** A directory or file bound recursively. */
    readonly kind: "dir" | "file";
    /** Its host path, the same inside the root. */
    readonly path: string;
    /** Remounts applied after the bind (read-only and `nosuid,nodev`, flags kept). */
    readonly remounts: readonly Remount[];
  }
  | {
    /** A symlink recreated as it is (`/bin -> usr/bin`). */
    readonly kind: "symlink";
    /** Its host path. */
    readonly path: string;
    /** Its target, as stored. */
    readonly target: string;
  };

/** One workspace path shown in a narrowed view (see {@link SandboxPlan.view}). */
export interface ViewEntry {
  /** Workspace-relative, canonical (no `.`, `..` or empty segment). */
  readonly path: string;
  /** A directory or a file in the overlay view. */
  readonly kind: "dir" | "file";
}

/** Everything the setup script needs: host paths and switches, already validated. */
export interface SandboxPlan {
  /** The command's own directory (`root/`, `upper/`, `work/`, `env`, `mask`, `setup.log`). */
  readonly cmdDir: string;
  /** The workspace's real path: the overlay is mounted there inside the root. */
  readonly workspace: string;
  /** The overlay's lower layers, top first (`[session upper, workspace]`). */
  readonly lowers: readonly string[];
  /** The working directory inside the root (absolute, inside the workspace). */
  readonly cwd: string;
  /** Host paths made visible, in mount order. */
  readonly binds: readonly PlanBind[];
  /** Size of the private `/tmp`, bytes. */
  readonly tmpBytes: number;
  /**
   * When set, the workspace view shows only these workspace-relative paths: the overlay is
   * mounted at `<cmd>/view`, the workspace root is a read-only tmpfs holding the directories
   * leading to them, and each is bound there from the view. Absent: the overlay is mounted at
   * the workspace root itself.
   */
  readonly view?: readonly ViewEntry[];
  /** Absolute paths inside the root to mask as files (a 0/0 device bound over them). */
  readonly maskFiles: readonly string[];
  /** Absolute paths inside the root to mask as directories (an empty read-only tmpfs). */
  readonly maskDirs: readonly string[];
  /** True to share the host's network namespace. */
  readonly network: boolean;
  /** The uid and gid the command runs as inside (the daemon's own). */
  readonly uid: number;
  /** See `uid`. */
  readonly gid: number;
}

/** Single-quotes `text` for `sh` (any bytes but NUL survive). */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** Characters the overlay mount options cannot carry in a layer path. */
export const OVERLAY_UNSAFE = /[,:\\\n]/;

/** The `unshare` arguments that make the outer namespaces (before `sh -c`). */
export function unshareArgs(plan: Pick<SandboxPlan, "network">): string[] {
  return [
    "--user",
    "--map-root-user",
    "--mount",
    "--propagation",
    "private",
    "--pid",
    "--fork",
    "--kill-child=SIGKILL",
    "--ipc",
    "--uts",
    "--cgroup",
    ...(plan.network ? [] : ["--net"]),
  ];
}

/** The setup script for `plan`; run as `sh -c SCRIPT astrid-sandbox ARGV...`. */
export function buildSandboxScript(plan: SandboxPlan): string {
  const q = shellQuote;
  const cmd = plan.cmdDir;
  const r = (path: string) => `"$R"${q(path)}`;
  const lines: string[] = [
    "set -eu",
    "IFS=' \t\n'",
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "export PATH",
    `exec 3>&1 4>&2 >${q(`${cmd}/setup.log`)} 2>&1 5<${q(`${cmd}/env`)}`,
    `R=${q(`${cmd}/root`)}`,
    `mount -t tmpfs -o mode=0755,nosuid,nodev,size=1m astrid-root "$R"`,
    `mkdir -p "$R/tmp" "$R/dev" "$R/proc"`,
    `mount -t tmpfs -o mode=1777,nosuid,nodev,size=${plan.tmpBytes} astrid-tmp "$R/tmp"`,
    `mount -t tmpfs -o mode=0755,nosuid,size=64k astrid-dev "$R/dev"`,
    `for n in null zero full random urandom tty; do`,
    `  touch "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"`,
    `done`,
    `ln -s /proc/self/fd "$R/dev/fd"`,
    `ln -s /proc/self/fd/0 "$R/dev/stdin"`,
    `ln -s /proc/self/fd/1 "$R/dev/stdout"`,
    `ln -s /proc/self/fd/2 "$R/dev/stderr"`,
    `mkdir "$R/dev/shm"`,
    `mount -t tmpfs -o mode=1777,nosuid,nodev,size=${plan.tmpBytes} astrid-shm "$R/dev/shm"`,
  ];
  let varBound = false;
  for (const bind of plan.binds) {
    if (bind.path === "/var" || bind.path.startsWith("/var/")) varBound = true;
    if (bind.kind === "symlink") {
      lines.push(`mkdir -p "$(dirname ${r(bind.path)})"`);
      lines.push(`ln -s ${q(bind.target)} ${r(bind.path)}`);
      continue;
    }
    if (bind.kind === "dir") lines.push(`mkdir -p ${r(bind.path)}`);
    else lines.push(`mkdir -p "$(dirname ${r(bind.path)})"; touch ${r(bind.path)}`);
    lines.push(`mount --rbind ${q(bind.path)} ${r(bind.path)}`);
    for (const m of bind.remounts) {
      lines.push(`mount -o remount,bind,${m.flags.join(",")} ${r(m.path)}`);
    }
  }
  if (!varBound) lines.push(`mkdir -p "$R/var"`, `ln -s /tmp "$R/var/tmp"`);
  const lowerdir = plan.lowers.join(":");
  const overlayAt = plan.view === undefined ? r(plan.workspace) : q(`${cmd}/view`);
  lines.push(
    `mkdir -p ${r(plan.workspace)}`,
    `mount -t overlay astrid-overlay -o ${
      q(`lowerdir=${lowerdir},upperdir=${cmd}/upper,workdir=${cmd}/work,userxattr`)
    } ${overlayAt}`,
  );
  if (plan.view !== undefined) {
    // A narrowed view: an empty read-only root holding only the granted paths, each bound
    // from the overlay (which stays outside the new root and goes with the old one).
    const ws = (rel: string) => r(`${plan.workspace}/${rel}`);
    lines.push(
      `mount -t tmpfs -o mode=0755,nosuid,nodev,size=64k astrid-view ${r(plan.workspace)}`,
    );
    for (const e of plan.view) {
      if (e.kind === "dir") lines.push(`mkdir -p ${ws(e.path)}`);
      else lines.push(`mkdir -p "$(dirname ${ws(e.path)})"; touch ${ws(e.path)}`);
    }
    if (plan.cwd !== plan.workspace) lines.push(`mkdir -p ${r(plan.cwd)}`);
    lines.push(`mount -o remount,ro,nosuid,nodev ${r(plan.workspace)}`);
    for (const e of plan.view) {
      lines.push(`mount --bind ${q(`${cmd}/view/${e.path}`)} ${ws(e.path)}`);
    }
  }
  for (const path of plan.maskFiles) lines.push(`mount --bind ${q(`${cmd}/mask`)} ${r(path)}`);
  for (const path of plan.maskDirs) {
    lines.push(`mount -t tmpfs -o ro,mode=000,size=4k,nosuid,nodev,noexec astrid-mask ${r(path)}`);
  }
  lines.push(
    `mount -t proc -o nosuid,nodev,noexec proc "$R/proc"`,
    // This namespace's limit: the nested namespace below is the only one the command gets.
    `echo 1 > "$R/proc/sys/user/max_user_namespaces" || true`,
  );
  if (!plan.network) lines.push(`ip link set lo up 2>/dev/null || true`);
  lines.push(
    `cd "$R"`,
    `mkdir .astrid-old-root`,
    `pivot_root . .astrid-old-root`,
    `umount -l /.astrid-old-root`,
    `rmdir /.astrid-old-root`,
    `mount -o remount,bind,ro,nosuid,nodev /`,
    `cd ${q(plan.cwd)}`,
    `set +e`,
    `printf %s ${q(READY_MARKER)} >&3`,
    `exec 1>&3 2>&4 3>&- 4>&-`,
    [
      `unshare --user --mount --map-user=${plan.uid} --map-group=${plan.gid} --`,
      `setpriv --no-new-privs`,
      plan.uid === 0 ? `--bounding-set=-all --inh-caps=-all --ambient-caps=-all` : "",
      `-- /bin/sh -c 'unset OLDPWD; . /proc/self/fd/5; exec 5<&-; exec "$@"' astrid-exec "$@"`,
    ].filter((s) => s !== "").join(" "),
    `exit $?`,
  );
  return lines.join("\n") + "\n";
}

/** The command's environment as `sh` text sourced after the capabilities are dropped. */
export function envScript(env: Readonly<Record<string, string>>): string {
  return Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}\n`).join("");
}
