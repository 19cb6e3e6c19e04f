import assert from "node:assert/strict";
import { join } from "node:path";
import { OverlayVfs } from "../vfs/mod.ts";
import { SandboxCode, SandboxError } from "./errors.ts";
import { runSandboxed } from "./run_sandboxed.ts";
import { manualTimers, sandboxFixture, sandboxOrSkip } from "./_test_fixture.ts";

const status = await sandboxOrSkip();
const ignore = !status.available;
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const sh = (script: string) => ({ argv: ["sh", "-c", script] });
const code = (c: string) => (err: unknown) => err instanceof SandboxError && err.code === c;

Deno.test({
  name: "runSandboxed() passes stdin, cwd and only the given environment",
  ignore,
  async fn(t) {
    const f = await sandboxFixture({ "sub/a.txt": "a" });
    Deno.env.set("ASTRID_SBX_DAEMON_ONLY", "leak");
    try {
      await t.step("stdin bytes reach the command", async () => {
        const r = await runSandboxed({ argv: ["cat"] }, { overlay: f.overlay, stdin: "in\n" });
        assert.equal(text(r.stdout), "in\n");
      });
      await t.step("cwd is resolved in the workspace view", async () => {
        const r = await runSandboxed({ argv: ["pwd"], cwd: "sub" }, { overlay: f.overlay });
        assert.equal(text(r.stdout), `${f.ws}/sub\n`);
        const uri = await runSandboxed({ argv: ["pwd"], cwd: "workspace://sub" }, {
          overlay: f.overlay,
        });
        assert.equal(text(uri.stdout), `${f.ws}/sub\n`);
      });
      await t.step("the environment is the defaults plus the caller's, nothing else", async () => {
        const r = await runSandboxed({ argv: ["env"], env: { FOO: "it's" } }, {
          overlay: f.overlay,
        });
        const names = text(r.stdout).trim().split("\n").map((l) => l.split("=")[0]).sort();
        assert.deepEqual(names, ["FOO", "HOME", "LANG", "PATH", "PWD", "TMPDIR"]);
        assert.match(text(r.stdout), /^FOO=it's$/m);
      });
      await t.step("LD_PRELOAD for the command does not reach the setup", async () => {
        const r = await runSandboxed(sh("echo ran"), {
          overlay: f.overlay,
        });
        const preload = await runSandboxed(
          { argv: ["sh", "-c", "echo ran"], env: { LD_PRELOAD: "/nonexistent/evil.so" } },
          { overlay: f.overlay },
        );
        assert.equal(text(r.stdout), "ran\n");
        assert.equal(text(preload.stdout), "ran\n");
      });
      await t.step("exit codes and signals come back", async () => {
        const three = await runSandboxed(sh("exit 3"), { overlay: f.overlay });
        assert.deepEqual([three.code, three.signal], [3, null]);
        const killed = await runSandboxed(sh("kill -TERM $$"), { overlay: f.overlay });
        assert.deepEqual([killed.code, killed.signal], [143, "SIGTERM"]);
      });
    } finally {
      Deno.env.delete("ASTRID_SBX_DAEMON_ONLY");
      await f.dispose();
    }
  },
});

Deno.test({
  name: "runSandboxed() refuses bad working directories",
  ignore,
  async fn() {
    const f = await sandboxFixture({ "file.txt": "x" });
    try {
      for (const cwd of ["missing", "file.txt", "../..", "/etc"]) {
        await assert.rejects(
          runSandboxed({ argv: ["true"], cwd }, { overlay: f.overlay }),
          code(SandboxCode.SANDBOX_CWD_INVALID),
          cwd,
        );
      }
    } finally {
      await f.dispose();
    }
  },
});

Deno.test({
  name: "runSandboxed() stops on the caller's signal and folds what was written",
  ignore,
  async fn() {
    const f = await sandboxFixture();
    try {
      const controller = new AbortController();
      const timers = manualTimers();
      const stdin = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode("x\n"));
        },
      });
      const run = runSandboxed(sh("echo partial > p.txt; read a; read b; sleep 1000"), {
        overlay: f.overlay,
        signal: controller.signal,
        stdin,
        timers,
      });
      // Wait until the command wrote its file (it then blocks on the second read).
      const written = () => {
        try {
          const cmd = join(f.overlay.sessionDir, "cmd");
          return [...Deno.readDirSync(cmd)].some((e) =>
            [...Deno.readDirSync(join(cmd, e.name, "upper"))].length > 0
          );
        } catch {
          return false;
        }
      };
      for (let i = 0; i < 1000 && !written(); i++) await new Promise((r) => setTimeout(r, 10));
      controller.abort();
      const r = await run;
      assert.equal(r.cancelled, true);
      assert.equal(r.timedOut, false);
      assert.equal(r.signal, "SIGTERM");
      assert.deepEqual(r.fold?.changed, ["p.txt"]);
      assert.equal(text(await f.overlay.readFile("p.txt")), "partial\n");
      assert.deepEqual(timers.pending(), [], "timers disarmed");
    } finally {
      await f.dispose();
    }
  },
});

Deno.test({
  name: "runSandboxed() refuses an overlay with marker whiteouts unless unsandboxed is allowed",
  ignore,
  async fn(t) {
    const base = await Deno.realPath(await Deno.makeTempDir());
    const ws = join(base, "ws");
    await Deno.mkdir(ws);
    await Deno.writeTextFile(join(ws, "a.txt"), "a\n");
    const overlay = await OverlayVfs.open(ws, join(base, "session"), { whiteout: "marker" });
    try {
      await t.step("refused with SANDBOX_WHITEOUT_FORMAT", async () => {
        await assert.rejects(
          runSandboxed(sh("echo x > b.txt"), { overlay }),
          code(SandboxCode.SANDBOX_WHITEOUT_FORMAT),
        );
        await assert.rejects(Deno.lstat(join(ws, "b.txt")), Deno.errors.NotFound);
      });
      await t.step("allowUnsandboxed runs it directly on the workspace, and says so", async () => {
        const r = await runSandboxed(sh("echo x > b.txt; pwd"), {
          overlay,
          allowUnsandboxed: true,
        });
        assert.equal(r.sandboxed, false);
        assert.equal(r.mechanism, "none");
        assert.equal(r.fold, null);
        assert.equal(text(r.stdout), `${ws}\n`);
        assert.equal(await Deno.readTextFile(join(ws, "b.txt")), "x\n");
      });
    } finally {
      overlay.close();
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test({
  name: "runSandboxed() refuses a session overlay inside the workspace (overlapping layers)",
  ignore,
  async fn() {
    const base = await Deno.realPath(await Deno.makeTempDir());
    const overlay = await OverlayVfs.open(base, join(base, ".astrid", "session"));
    try {
      await assert.rejects(
        runSandboxed({ argv: ["true"] }, { overlay }),
        code(SandboxCode.SANDBOX_PATH_UNSUPPORTED),
      );
    } finally {
      overlay.close();
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test({
  name: "runSandboxed() folds command dirs a crash left behind before the next command",
  ignore,
  async fn() {
    const f = await sandboxFixture({ "a.txt": "a" });
    try {
      const stale = join(f.overlay.sessionDir, "cmd", "0-stale", "upper");
      await Deno.mkdir(stale, { recursive: true });
      await Deno.writeTextFile(join(stale, "left.txt"), "left behind\n");
      const r = await runSandboxed(sh("cat left.txt"), { overlay: f.overlay });
      assert.equal(text(r.stdout), "left behind\n");
      assert.deepEqual([...Deno.readDirSync(join(f.overlay.sessionDir, "cmd"))], []);
    } finally {
      await f.dispose();
    }
  },
});

Deno.test({
  name: "runSandboxed() with workspacePaths shows only those paths, writable through the overlay",
  ignore,
  async fn(t) {
    const f = await sandboxFixture({
      "src/a.ts": "a",
      "src/.env": "SECRET",
      "docs/guide.md": "guide",
      "secret.txt": "top secret",
      "README.md": "readme",
    });
    try {
      const options = {
        overlay: f.overlay,
        workspacePaths: ["workspace://src", "docs/guide.md", "missing"],
        policy: {
          denied_paths: ["**/.env"],
          allowed_paths: [],
          denied_hosts: [],
          denied_commands: [],
        },
      };
      await t.step("the rest of the workspace is not there", async () => {
        const r = await runSandboxed(
          sh("find . | sort; cat secret.txt README.md 2>&1 | head -c 200; cat src/a.ts"),
          options,
        );
        const out = text(r.stdout);
        assert.match(out, /^\.\n\.\/docs\n\.\/docs\/guide\.md\n\.\/src\n/);
        assert.doesNotMatch(out, /secret\.txt\n|README\.md\n|top secret|readme/);
        assert.match(out, /No such file/);
        assert.ok(out.endsWith("a"), out);
      });
      await t.step("the policy's masks still hold inside a shown path", async () => {
        const r = await runSandboxed(sh("cat src/.env 2>/dev/null; echo [$?]"), options);
        assert.doesNotMatch(text(r.stdout), /SECRET/);
      });
      await t.step(
        "writes inside a shown path land in the overlay; the root is read-only",
        async () => {
          const r = await runSandboxed(
            sh(
              "echo new > src/b.ts; echo edited > docs/guide.md; (echo x > top.txt) 2>/dev/null || echo refused",
            ),
            options,
          );
          assert.equal(text(r.stdout), "refused\n", text(r.stderr));
          assert.deepEqual(r.fold?.changed.sort(), ["docs/guide.md", "src/b.ts"]);
          assert.equal(text(await f.overlay.readFile("src/b.ts")), "new\n");
          assert.equal(await Deno.readTextFile(join(f.ws, "docs/guide.md")), "guide");
        },
      );
      await t.step("an empty path shows the whole workspace", async () => {
        const r = await runSandboxed(sh("cat secret.txt"), {
          overlay: f.overlay,
          workspacePaths: [""],
        });
        assert.equal(text(r.stdout), "top secret");
      });
    } finally {
      await f.dispose();
    }
  },
});
