import assert from "node:assert/strict";
import type { DaemonStatusWire } from "../kernel/daemon/mod.ts";
import { formatDuration, formatStatus, runStatus } from "./lifecycle_command.ts";
import { UsageError } from "./errors.ts";

const status: DaemonStatusWire = {
  pid: 4242,
  version: "0.1.0",
  protocol: 1,
  home: "/h/.astrid",
  socket: "/h/.astrid/run/system.sock",
  started_at: 0,
  uptime_ms: 3_723_000,
  boot_ms: 20,
  ephemeral: false,
  idle_timeout_secs: 300,
  connections: {
    total: 3,
    by_principal: [{ principal: "default", count: 2 }, { principal: "alice", count: 1 }],
  },
  sessions: 2,
  capsules: [],
  bus: { subscriptions: 0, published: 0 },
};

Deno.test("formatStatus() shows PID, uptime, mode, clients, capsules and home", () => {
  assert.deepEqual(formatStatus(status), [
    "Astrid daemon 0.1.0 running (PID 4242)",
    "  home:      /h/.astrid",
    "  uptime:    1h 02m",
    "  mode:      persistent (stops after 300 s without clients)",
    "  clients:   3 (default: 2, alice: 1)",
    "  capsules:  none loaded",
    "  socket:    /h/.astrid/run/system.sock",
  ]);
  const eph = formatStatus({
    ...status,
    ephemeral: true,
    capsules: [{ name: "cache", version: "1.0.0" }],
  });
  assert.equal(eph[3], "  mode:      ephemeral (exits when its last client leaves)");
  assert.equal(eph[5], "  capsules:  cache@1.0.0");
});

Deno.test("formatDuration() rounds to the two largest units", () => {
  assert.equal(formatDuration(999), "0s");
  assert.equal(formatDuration(59_000), "59s");
  assert.equal(formatDuration(65_000), "1m 05s");
  assert.equal(formatDuration(7_380_000), "2h 03m");
  assert.equal(formatDuration(100_800_000), "1d 04h");
});

Deno.test("runStatus() refuses unknown options as usage errors", async () => {
  const io = { out: () => {}, err: () => {} };
  await assert.rejects(
    () => runStatus(["--verbose"], io),
    (e) => e instanceof UsageError && /Unknown option "--verbose": use --json/.test(e.message),
  );
});

Deno.test("the status verb loads no storage, audit, crypto, events or node: module", async () => {
  // The wall that keeps `astrid status` fast: walk the static (non-dynamic, non-type) imports.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("./lifecycle_command.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0);
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: {
      specifier: string;
      dependencies?: { code?: { specifier: string }; isDynamic?: boolean }[];
    }[];
  };
  const bySpec = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const stack = [...info.roots];
  while (stack.length > 0) {
    const spec = stack.pop()!;
    if (seen.has(spec)) continue;
    seen.add(spec);
    for (const d of bySpec.get(spec)?.dependencies ?? []) {
      if (d.isDynamic !== true && d.code !== undefined) stack.push(d.code.specifier);
    }
  }
  const loaded = [...seen];
  const forbidden = loaded.filter((s) =>
    s.startsWith("node:") || s.startsWith("npm:") ||
    /\/kernel\/(storage|audit|crypto|events|config|home)\//.test(s) ||
    /\/kernel\/daemon\/_/.test(s)
  );
  assert.deepEqual(forbidden, []);
  assert.ok(loaded.some((s) => s.endsWith("/kernel/daemon/daemon_client.ts")));
});
