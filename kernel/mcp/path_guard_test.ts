import assert from "node:assert/strict";
import { join } from "node:path";
import { AstridHome } from "../home/mod.ts";
import { overlaySessionDir, OverlayVfs } from "../vfs/mod.ts";
import { checkPaths, parseGrants } from "./path_guard.ts";

const found = (...values: string[]) => values.map((value, i) => ({ argument: `a${i}`, value }));

Deno.test("parseGrants() reads *, workspace://, home:// and global:// grants", () => {
  assert.deepEqual(
    parseGrants(["*", "workspace://src/", "home://notes", "global://", "/etc", "x://y"]),
    [
      { scheme: "workspace", prefix: "" },
      { scheme: "workspace", prefix: "src" },
      { scheme: "home", prefix: "notes" },
      { scheme: "global", prefix: "" },
    ],
  );
});

Deno.test("checkPaths()", async (t) => {
  const root = await Deno.realPath(await Deno.makeTempDir());
  const ws = join(root, "ws");
  const outside = join(root, "outside");
  await Deno.mkdir(join(ws, "src"), { recursive: true });
  await Deno.mkdir(outside);
  await Deno.writeTextFile(join(outside, "secret"), "x");
  await Deno.symlink(outside, join(ws, "link"));
  const home = await AstridHome.open(join(root, "home"));
  const overlay = await OverlayVfs.open(
    ws,
    overlaySessionDir(home, { principal: "default", workspaceId: "w1", session: "s1" }),
  );
  const principalHome = await Deno.realPath(await ensure(home.principalDir("default")));
  const opts = { workspaceRoot: ws, overlay, serverHome: "/home/srv" };
  try {
    await t.step(
      "allows workspace paths, absolute or relative, and returns canonical ones",
      async () => {
        const v = await checkPaths(found(`${ws}/src/a.ts`, "src/b.ts", ws, `file://${ws}/c`), {
          ...opts,
          grants: ["*"],
        });
        assert.deepEqual(v, {
          allowed: true,
          paths: [join(ws, "src/a.ts"), join(ws, "src/b.ts"), ws, join(ws, "c")],
          inside: true,
        });
      },
    );
    await t.step("denies a path outside the workspace", async () => {
      const v = await checkPaths(found("/etc/passwd"), { ...opts, grants: ["*"] });
      assert.equal(v.allowed, false);
      assert.equal(!v.allowed && v.path, "/etc/passwd");
    });
    await t.step("denies a .. segment without normalizing it", async () => {
      for (const p of [`${ws}/src/../../outside/secret`, "../outside/secret", "src/../a"]) {
        const v = await checkPaths(found(p), { ...opts, grants: ["*"] });
        assert.equal(v.allowed, false, p);
        assert.match(!v.allowed ? v.reason : "", /\.\./);
      }
    });
    await t.step("denies a symlink that leaves the workspace", async () => {
      const v = await checkPaths(found(`${ws}/link/secret`), { ...opts, grants: ["*"] });
      assert.equal(v.allowed, false);
      assert.match(!v.allowed ? v.reason : "", /symlink/i);
    });
    await t.step("holds workspace:// grants to their subtree", async () => {
      assert.equal(
        (await checkPaths(found("src/a"), { ...opts, grants: ["workspace://src"] })).allowed,
        true,
      );
      const v = await checkPaths(found("README.md"), { ...opts, grants: ["workspace://src"] });
      assert.equal(v.allowed, false);
      assert.equal((await checkPaths(found("src/a"), { ...opts, grants: [] })).allowed, false);
    });
    await t.step("resolves ~ under the server's HOME and needs a grant for it", async () => {
      const v = await checkPaths(found("~/.ssh/id_rsa"), { ...opts, grants: ["*"] });
      assert.equal(!v.allowed && v.path, "/home/srv/.ssh/id_rsa");
    });
    await t.step("allows home:// grants but never its kernel-managed dirs", async () => {
      const roots = { home: principalHome };
      const ok = await checkPaths(found(join(principalHome, "notes/a.md")), {
        ...opts,
        grants: ["home://notes"],
        roots,
      });
      assert.deepEqual(ok, {
        allowed: true,
        paths: [join(principalHome, "notes/a.md")],
        inside: false,
      });
      const v = await checkPaths(found(join(principalHome, ".local/tmp/x")), {
        ...opts,
        grants: ["home://"],
        roots,
      });
      assert.equal(v.allowed, false);
      assert.match(!v.allowed ? v.reason : "", /kernel-managed/);
    });
    await t.step("reports no paths as not inside (the stricter mode row)", async () => {
      assert.deepEqual(await checkPaths([], { ...opts, grants: ["*"] }), {
        allowed: true,
        paths: [],
        inside: false,
      });
    });
  } finally {
    overlay.close();
    await Deno.remove(root, { recursive: true });
  }
});

async function ensure(dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}
