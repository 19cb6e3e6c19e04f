/**
 * `sandboxStatus()`: whether native commands can run in the namespace sandbox here, probed
 * once per process by running a real one (user + mount + PID + network namespaces made with
 * `unshare`, a kernel overlayfs over a scratch workspace, a masked file, `pivot_root`) and
 * cached. `astrid status` prints it; the runner refuses to run a command when it says
 * unavailable, unless the caller allowed an unsandboxed run.
 *
 * @module
 */
import { join } from "node:path";
import { makeWhiteout } from "../vfs/mod.ts";
import { launch } from "./_launch.ts";
import { readMountInfo, remountsFor } from "./_mountinfo.ts";
import { removeCommandDir } from "./_prepare.ts";
import {
  buildSandboxScript,
  envScript,
  type PlanBind,
  SYSTEM_PATHS,
  unshareArgs,
} from "./_script.ts";

/** The mechanism a sandboxed command runs under. */
export type SandboxMechanism = "unshare-overlayfs" | "none";

/** What {@link sandboxStatus} reports. */
export interface SandboxStatus {
  /** True when commands run in the namespace sandbox over the session overlay. */
  readonly available: boolean;
  /** `unshare-overlayfs` when available, else `none`. */
  readonly mechanism: SandboxMechanism;
  /** One sentence: what works, or what is missing and how to fix it. */
  readonly reason: string;
}

/** Tools the setup runs; each must be on the daemon's `PATH` (util-linux, iproute2 optional). */
export const REQUIRED_TOOLS: readonly string[] = [
  "unshare",
  "mount",
  "umount",
  "pivot_root",
  "setpriv",
];

let cached: Promise<SandboxStatus> | null = null;

function findOnPath(name: string): string | null {
  const path = Deno.env.get("PATH") ??
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const dir of path.split(":")) {
    if (dir === "") continue;
    try {
      const info = Deno.statSync(`${dir}/${name}`);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return `${dir}/${name}`;
    } catch {
      // next
    }
  }
  return null;
}

function unavailable(reason: string): SandboxStatus {
  return { available: false, mechanism: "none", reason };
}

async function probe(): Promise<SandboxStatus> {
  if (Deno.build.os !== "linux") {
    return unavailable(
      `No namespace sandbox on ${Deno.build.os}: user and mount namespaces and overlayfs are Linux-only`,
    );
  }
  for (const [name, flag] of [["run", "--allow-run"], ["ffi", "--allow-ffi"]] as const) {
    if (Deno.permissions.querySync({ name }).state !== "granted") {
      return unavailable(
        `The daemon lacks ${flag}: the sandbox spawns util-linux tools and reads overlayfs xattrs through libc; run it with ${flag}`,
      );
    }
  }
  if (Deno.permissions.querySync({ name: "env" }).state === "granted") {
    const missing = REQUIRED_TOOLS.filter((t) => findOnPath(t) === null);
    if (missing.length > 0) {
      return unavailable(
        `Missing ${
          missing.join(", ")
        } on PATH: install util-linux (unshare, mount, pivot_root, setpriv)`,
      );
    }
  }
  const base = await Deno.makeTempDir({ prefix: "astrid-sandbox-probe-" });
  try {
    const ws = join(base, "ws");
    const su = join(base, "su");
    const cmdDir = join(base, "cmd");
    for (const d of [ws, su, cmdDir, `${cmdDir}/root`, `${cmdDir}/upper`, `${cmdDir}/work`]) {
      await Deno.mkdir(d, { recursive: true });
    }
    await Deno.writeTextFile(join(ws, "secret"), "secret\n");
    await Deno.writeTextFile(join(cmdDir, "env"), envScript({ PATH: "/usr/bin:/bin" }));
    try {
      await makeWhiteout(join(cmdDir, "mask"), "chardev");
    } catch (err) {
      return unavailable(`Cannot create a 0/0 character device: ${(err as Error).message}`);
    }
    const mounts = readMountInfo();
    const binds: PlanBind[] = [];
    for (const path of SYSTEM_PATHS) {
      let info: Deno.FileInfo;
      try {
        info = Deno.lstatSync(path);
      } catch {
        continue;
      }
      if (info.isSymlink) binds.push({ kind: "symlink", path, target: Deno.readLinkSync(path) });
      else if (info.isDirectory) {
        binds.push({ kind: "dir", path, remounts: remountsFor(path, mounts, true) });
      }
    }
    const realWs = await Deno.realPath(ws);
    const plan = {
      cmdDir: await Deno.realPath(cmdDir),
      workspace: realWs,
      lowers: [await Deno.realPath(su), realWs],
      cwd: realWs,
      binds,
      tmpBytes: 1024 * 1024,
      maskFiles: [`${realWs}/secret`],
      maskDirs: [],
      network: false,
      uid: Deno.uid() ?? 0,
      gid: Deno.gid() ?? 0,
    };
    let launched;
    try {
      launched = launch({
        mode: "namespace",
        argv: ["/bin/sh", "-c", "echo probe > out && ! cat secret 2>/dev/null"],
        script: buildSandboxScript(plan),
        unshareArgs: unshareArgs(plan),
        stdin: "null",
      });
    } catch (err) {
      return unavailable(`Cannot run unshare: ${(err as Error).message}`);
    }
    const [status, ready, , stderr] = await Promise.all([
      launched.status,
      launched.ready,
      new Response(launched.stdout).arrayBuffer(),
      new Response(launched.stderr).text(),
    ]);
    if (!ready) {
      let log = "";
      try {
        log = await Deno.readTextFile(join(cmdDir, "setup.log"));
      } catch {
        // unshare itself failed
      }
      const detail = `${stderr}\n${log}`.trim().split("\n").slice(-3).join("; ");
      return unavailable(
        `Cannot make the namespace sandbox (user namespaces, overlayfs or a fresh /proc refused): ${detail}`,
      );
    }
    let out = "";
    try {
      out = await Deno.readTextFile(join(cmdDir, "upper", "out"));
    } catch {
      // checked below
    }
    if (!status.success || out !== "probe\n") {
      return unavailable(
        `The namespace sandbox started but misbehaved (exit ${status.code}, write ${
          out === "" ? "lost" : "kept"
        }, masked file ${status.success ? "hidden" : "readable?"})`,
      );
    }
    return {
      available: true,
      mechanism: "unshare-overlayfs",
      reason:
        "Commands run in user, mount, PID and network namespaces over a kernel overlayfs of the session",
    };
  } finally {
    await removeCommandDir(base);
  }
}

/**
 * Whether the namespace sandbox works here: probed on first call (about 0.1 s), then cached for
 * the life of the process; `refresh` probes again.
 */
export function sandboxStatus(options: { refresh?: boolean } = {}): Promise<SandboxStatus> {
  if (cached === null || options.refresh === true) cached = probe();
  return cached;
}
