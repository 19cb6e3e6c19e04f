import assert from "node:assert/strict";
import { checkSocketPath, locateHome, runPaths, sunPathLimit } from "./run_paths.ts";
import { hasCode } from "../errors.ts";

function env(vars: Record<string, string>) {
  return { get: (k: string) => vars[k] };
}

Deno.test("runPaths() lays out run/ and the log", () => {
  const p = runPaths("/h/.astrid");
  assert.deepEqual(p, {
    home: "/h/.astrid",
    run: "/h/.astrid/run",
    socket: "/h/.astrid/run/system.sock",
    token: "/h/.astrid/run/system.token",
    ready: "/h/.astrid/run/system.ready",
    lock: "/h/.astrid/run/system.lock",
    log: "/h/.astrid/log/daemon.log",
  });
  assert.equal(runPaths("/").socket, "/run/system.sock");
});

Deno.test("checkSocketPath() applies the platform sun_path limit, NUL included", async (t) => {
  await t.step("Linux: 107 bytes fit, 108 do not", () => {
    assert.equal(sunPathLimit("linux"), 108);
    checkSocketPath("/" + "a".repeat(106), "linux");
    assert.throws(
      () => checkSocketPath("/" + "a".repeat(107), "linux"),
      (e) =>
        hasCode(e, "DAEMON_SOCKET_PATH_TOO_LONG") &&
        /is 108 bytes, over the linux limit of 107.*set ASTRID_HOME to a shorter path/.test(
          (e as Error).message,
        ),
    );
  });
  await t.step("macOS: 103 bytes fit, 104 do not", () => {
    assert.equal(sunPathLimit("darwin"), 104);
    checkSocketPath("/" + "a".repeat(102), "darwin");
    assert.throws(() => checkSocketPath("/" + "a".repeat(103), "darwin"), /limit of 103/);
  });
  await t.step("counts UTF-8 bytes, not characters", () => {
    assert.throws(() => checkSocketPath("/" + "é".repeat(54), "linux"), /is 109 bytes/);
  });
});

Deno.test("locateHome() agrees with kernel/home", async (t) => {
  await t.step("a plain ASTRID_HOME is taken as is", async () => {
    assert.equal(await locateHome(env({ ASTRID_HOME: "/x/y" })), "/x/y");
  });
  await t.step("HOME/.astrid otherwise", async () => {
    assert.equal(await locateHome(env({ HOME: "/home/u" })), "/home/u/.astrid");
    assert.equal(await locateHome(env({ HOME: "/" })), "/.astrid");
  });
  await t.step("unusual paths are normalised by kernel/home", async () => {
    assert.equal(await locateHome(env({ ASTRID_HOME: "/x//y/../z/" })), "/x/z");
  });
  await t.step("a relative ASTRID_HOME is kernel/home's error", async () => {
    await assert.rejects(
      () => locateHome(env({ ASTRID_HOME: "rel" })),
      (e) => hasCode(e, "HOME_UNRESOLVABLE"),
    );
  });
});
