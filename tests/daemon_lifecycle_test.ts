/**
 * Proves the daemon's lifecycle as a user drives it: the real `astrid` entry point in child
 * processes against a real daemon in a temporary ASTRID_HOME — auto-start by `status`, the
 * status fields, `start`/`stop`, a second daemon refused, a stale socket recovered after
 * SIGKILL, idle and ephemeral shutdown, SIGTERM cleanup and the file modes of `run/`.
 *
 * Homes live under `/tmp` with short names so the socket path fits `sun_path`.
 */
import assert from "node:assert/strict";
import { DaemonClient, type DaemonStatusWire } from "../kernel/daemon/mod.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function astrid(
  home: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--config", CONFIG, MAIN, ...args],
    env: { ASTRID_HOME: home, NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function run(home: string) {
  const r = `${home}/run`;
  return {
    run: r,
    socket: `${r}/system.sock`,
    token: `${r}/system.token`,
    ready: `${r}/system.ready`,
    lock: `${r}/system.lock`,
  };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT"); // harmless to a running process; ESRCH when it is gone
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Runs `fn` with a fresh home, then makes sure no daemon of it survives. */
async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "al" });
  try {
    await fn(home);
  } finally {
    const pid = Number.parseInt(await Deno.readTextFile(run(home).lock).catch(() => ""), 10);
    if (Number.isSafeInteger(pid) && pid > 0 && alive(pid)) {
      Deno.kill(pid, "SIGKILL");
      await waitUntil(() => !alive(pid), 5_000, "the daemon to die");
    }
    await Deno.remove(home, { recursive: true });
  }
}

function mode(info: Deno.FileInfo): number {
  return info.mode! & 0o777;
}

Deno.test("astrid status starts an ephemeral daemon, reports it, and it leaves after its client", async () => {
  await withHome(async (home) => {
    const human = await astrid(home, ["status"]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^Astrid daemon \d+\.\d+\.\d+ running \(PID \d+\)$/m);
    assert.match(human.stdout, new RegExp(`home: +${home}$`, "m"));
    assert.match(human.stdout, /uptime: +\d+s/);
    assert.match(human.stdout, /mode: +ephemeral/);
    assert.match(human.stdout, /clients: +1 \(default: 1\)/);
    assert.match(human.stdout, /capsules: +none loaded/);

    const json = await astrid(home, ["status", "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const s = JSON.parse(json.stdout) as DaemonStatusWire;
    assert.equal(typeof s.pid, "number");
    assert.equal(s.home, home);
    assert.equal(s.socket, run(home).socket);
    assert.equal(s.protocol, 1);
    assert.equal(s.ephemeral, true);
    assert.equal(s.connections.total, 1);
    assert.deepEqual(s.connections.by_principal, [{ principal: "default", count: 1 }]);
    assert.deepEqual(s.capsules, []);
    assert.ok(s.uptime_ms >= 0 && s.boot_ms > 0);

    // Ephemeral: the last client left, so after the grace it stops and cleans up.
    await waitUntil(
      async () => !(await exists(run(home).lock)),
      10_000,
      "the ephemeral daemon to stop",
    );
    await waitUntil(() => !alive(s.pid), 5_000, "the daemon process to exit");
    for (const f of [run(home).socket, run(home).token, run(home).ready]) {
      assert.equal(await exists(f), false, f);
    }
    const log = await Deno.readTextFile(`${home}/log/daemon.log`);
    assert.match(log, /Shutting down \{"reason":"ephemeral: the last client left"\}/);
  });
});

Deno.test("astrid start/stop run one persistent daemon per home; a second is refused", async () => {
  await withHome(async (home) => {
    const started = await astrid(home, ["start"]);
    assert.equal(started.code, 0, started.stderr);
    const pid = Number(/\(PID (\d+)\)/.exec(started.stdout)?.[1]);
    assert.match(
      started.stdout,
      new RegExp(`^Started Astrid daemon \\(PID ${pid}\\) for ${home}$`, "m"),
    );

    const again = await astrid(home, ["start"]);
    assert.equal(again.code, 0);
    assert.equal(again.stdout.trim(), `Astrid daemon already running (PID ${pid})`);

    const second = await astrid(home, ["daemon"]);
    assert.equal(second.code, 3);
    assert.match(
      second.stderr,
      new RegExp(`Another Astrid daemon \\(PID ${pid}\\) is already running for "${home}"`),
    );
    assert.ok(alive(pid));

    const p = run(home);
    assert.equal(mode(await Deno.stat(p.run)), 0o700);
    assert.equal(mode(await Deno.stat(p.token)), 0o600);
    assert.equal(mode(await Deno.stat(p.lock)), 0o600);
    assert.equal(mode(await Deno.stat(p.ready)), 0o600);
    const sock = await Deno.lstat(p.socket);
    assert.equal(sock.isSocket, true);
    assert.equal(mode(sock), 0o600);
    const token = (await Deno.readTextFile(p.token)).trim();
    assert.match(token, /^[0-9a-f]{64}$/);
    assert.equal((await Deno.readTextFile(p.lock)).trim(), String(pid));

    const status = JSON.parse(
      (await astrid(home, ["status", "--json"])).stdout,
    ) as DaemonStatusWire;
    assert.equal(status.pid, pid);
    assert.equal(status.ephemeral, false);
    assert.equal(status.idle_timeout_secs, 300);

    const stopped = await astrid(home, ["stop"]);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(stopped.stdout.trim(), `Stopped Astrid daemon (PID ${pid})`);
    for (const f of [p.socket, p.token, p.ready, p.lock]) assert.equal(await exists(f), false, f);
    await waitUntil(() => !alive(pid), 5_000, "the daemon process to exit");

    const none = await astrid(home, ["stop"]);
    assert.equal(none.code, 0);
    assert.equal(none.stdout.trim(), `No Astrid daemon is running for ${home}`);
    const log = await Deno.readTextFile(`${home}/log/daemon.log`);
    assert.equal(log.includes(token), false, "the session token never reaches the log");
    assert.match(log, /Stopped \{"reason":"astrid stop","problems":0\}/);
  });
});

Deno.test("a stale socket left by SIGKILL is recovered by the next daemon", async () => {
  await withHome(async (home) => {
    const started = await astrid(home, ["start"]);
    assert.equal(started.code, 0, started.stderr);
    const pid = Number(/\(PID (\d+)\)/.exec(started.stdout)?.[1]);
    Deno.kill(pid, "SIGKILL");
    await waitUntil(() => !alive(pid), 5_000, "the daemon to die");
    const p = run(home);
    assert.equal((await Deno.lstat(p.socket)).isSocket, true); // left behind
    assert.equal(await exists(p.ready), true);

    const status = await astrid(home, ["status", "--json"]);
    assert.equal(status.code, 0, status.stderr);
    const s = JSON.parse(status.stdout) as DaemonStatusWire;
    assert.notEqual(s.pid, pid);
    const log = await Deno.readTextFile(`${home}/log/daemon.log`);
    assert.match(log, /Removed a stale socket/);
    assert.equal((await astrid(home, ["stop"])).code, 0);
  });
});

Deno.test("a persistent daemon stops after ASTRID_IDLE_TIMEOUT_SECS without clients", async () => {
  await withHome(async (home) => {
    const started = await astrid(home, ["start"], { ASTRID_IDLE_TIMEOUT_SECS: "1" });
    assert.equal(started.code, 0, started.stderr);
    const pid = Number(/\(PID (\d+)\)/.exec(started.stdout)?.[1]);
    await waitUntil(async () => !(await exists(run(home).lock)), 10_000, "the idle daemon to stop");
    await waitUntil(() => !alive(pid), 5_000, "the daemon process to exit");
    const log = await Deno.readTextFile(`${home}/log/daemon.log`);
    assert.match(log, /Shutting down \{"reason":"idle: no client for 1 s"\}/);
  });
});

Deno.test("SIGTERM shuts the daemon down gracefully and removes socket, token and ready", async () => {
  await withHome(async (home) => {
    const started = await astrid(home, ["start"]);
    assert.equal(started.code, 0, started.stderr);
    const pid = Number(/\(PID (\d+)\)/.exec(started.stdout)?.[1]);
    Deno.kill(pid, "SIGTERM");
    await waitUntil(() => !alive(pid), 10_000, "the daemon to exit on SIGTERM");
    const p = run(home);
    for (const f of [p.socket, p.token, p.ready, p.lock]) assert.equal(await exists(f), false, f);
    const log = await Deno.readTextFile(`${home}/log/daemon.log`);
    assert.match(log, /Shutting down \{"reason":"signal SIGTERM"\}/);
    assert.match(log, /Stopped \{"reason":"signal SIGTERM","problems":0\}/);
  });
});

Deno.test("astrid start keeps a running ephemeral daemon up", async () => {
  await withHome(async (home) => {
    // Hold a client so the auto-started ephemeral daemon cannot leave meanwhile.
    assert.equal((await astrid(home, ["status"])).code, 0);
    const token = (await Deno.readTextFile(run(home).token)).trim();
    const holder = await DaemonClient.connect(run(home).socket, { token, client: "test" });
    try {
      const r = await astrid(home, ["start"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /already running \(PID \d+\); it now stays up after its last client leaves/,
      );
      assert.equal((await holder.call<DaemonStatusWire>("status")).ephemeral, false);
    } finally {
      await holder.close();
    }
    assert.equal((await astrid(home, ["stop"])).code, 0);
  });
});

Deno.test("a home whose socket path is too long is refused with a fix", async () => {
  const base = await Deno.makeTempDir({ dir: "/tmp", prefix: "al" });
  try {
    const r = await astrid(`${base}/${"x".repeat(100)}`, ["daemon"]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /Socket path ".*system\.sock" is \d+ bytes, over the \w+ limit of 10[37].*set ASTRID_HOME to a shorter path/,
    );
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
