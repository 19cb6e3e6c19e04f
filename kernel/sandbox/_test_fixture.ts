/**
 * Test helpers of the sandbox: a workspace and a session overlay in a temp dir, timers fired
 * by hand, a wait for a process to appear, and the probe's verdict with the reason printed
 * when a test must be skipped.
 *
 * @module
 */
import { join } from "node:path";
import { OverlayVfs } from "../vfs/mod.ts";
import type { SandboxTimers } from "./sandbox_command.ts";
import { type SandboxStatus, sandboxStatus } from "./sandbox_status.ts";

/** A workspace and the overlay of one session over it. */
export interface SandboxFixture {
  /** The workspace's real path. */
  ws: string;
  /** The session overlay. */
  overlay: OverlayVfs;
  /** Removes everything. */
  dispose(): Promise<void>;
}

/** Makes a workspace (`files` written into it) and opens a session overlay over it. */
export async function sandboxFixture(
  files: Record<string, string> = {},
  options: { wsName?: string } = {},
): Promise<SandboxFixture> {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-sbx-" }));
  const ws = join(base, options.wsName ?? "ws");
  await Deno.mkdir(ws);
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(join(ws, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(ws, path), text);
  }
  const overlay = await OverlayVfs.open(ws, join(base, "home", ".local", "tmp", "overlay", "s1"));
  return {
    ws,
    overlay,
    async dispose() {
      overlay.close();
      const open = async (path: string): Promise<void> => {
        const info = await Deno.lstat(path).catch(() => null);
        if (info === null || !info.isDirectory) return;
        await Deno.chmod(path, 0o700).catch(() => {});
        for await (const e of Deno.readDir(path)) await open(`${path}/${e.name}`);
      };
      await open(base);
      await Deno.remove(base, { recursive: true });
    },
  };
}

/** Timers that fire only when told to. */
export interface ManualTimers extends SandboxTimers {
  /** Delays of the callbacks still pending. */
  pending(): number[];
  /** Runs (and removes) every pending callback armed with `ms`. */
  fire(ms: number): void;
}

/** Makes {@link ManualTimers}. */
export function manualTimers(): ManualTimers {
  let next = 1;
  const armed = new Map<number, { ms: number; callback: () => void }>();
  return {
    setTimeout(callback, ms) {
      const id = next++;
      armed.set(id, { ms, callback });
      return id;
    },
    clearTimeout(handle) {
      armed.delete(handle as number);
    },
    pending: () => [...armed.values()].map((t) => t.ms),
    fire(ms) {
      for (const [id, t] of [...armed]) {
        if (t.ms !== ms) continue;
        armed.delete(id);
        t.callback();
      }
    },
  };
}

/** Host pids whose command line contains `needle`. */
export function pidsWith(needle: string): number[] {
  const out: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).replaceAll("\0", " ");
      if (cmdline.includes(needle) && Number(entry.name) !== Deno.pid) out.push(Number(entry.name));
    } catch {
      // exited
    }
  }
  return out;
}

/** Waits (polling /proc, at most ~10 s) until `count` processes match `needle`. */
export async function waitForProcesses(needle: string, count: number): Promise<number[]> {
  for (let i = 0; i < 1000; i++) {
    const pids = pidsWith(needle);
    if (pids.length >= count) return pids;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`Timed out waiting for ${count} processes matching ${needle}`);
}

/** The probe's verdict; prints why sandbox tests are skipped when it is unavailable. */
export async function sandboxOrSkip(): Promise<SandboxStatus> {
  const status = await sandboxStatus();
  if (!status.available) console.log(`Skipping namespace sandbox tests: ${status.reason}`);
  return status;
}
