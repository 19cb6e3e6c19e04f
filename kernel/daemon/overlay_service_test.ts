import assert from "node:assert/strict";
import { join } from "node:path";
import { ManualClock } from "../clock.ts";
import { AstridHome } from "../home/mod.ts";
import { OverlayVfs } from "../vfs/mod.ts";
import { type OverlayScope, OverlayService } from "./overlay_service.ts";

async function fixture() {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-ov-" }));
  const home = await AstridHome.open(join(root, "home"));
  const workspace = join(root, "ws");
  await Deno.mkdir(workspace);
  await Deno.writeTextFile(join(workspace, "a.txt"), "one\n");
  const clock = new ManualClock();
  const service = new OverlayService(home, { clock });
  const scope = (session: string): OverlayScope => ({
    principal: "default",
    session,
    workspaceId: "w1",
    root: workspace,
  });
  /** Writes through the session's overlay as a capsule would. */
  const write = async (session: string, path: string, text: string) => {
    const vfs = await OverlayVfs.open(workspace, service.sessionDir(scope(session)), { clock });
    try {
      await vfs.writeFile(path, text);
    } finally {
      vfs.close();
    }
  };
  return {
    root,
    workspace,
    service,
    scope,
    write,
    cleanup: () => Deno.remove(root, { recursive: true }),
  };
}

Deno.test("OverlayService diff, commit and discard act on one session's overlay", async (t) => {
  const f = await fixture();
  try {
    await t.step("a session that never wrote: no changes, and no directory is made", async () => {
      assert.deepEqual(await f.service.diff(f.scope("s1")), []);
      assert.deepEqual(await f.service.commit(f.scope("s1")), { applied: [], conflicts: [] });
      assert.equal(await f.service.discard(f.scope("s1")), 0);
      await assert.rejects(() => Deno.lstat(f.service.sessionDir(f.scope("s1"))));
    });
    await t.step(
      "diff lists a write with its unified diff; the workspace is untouched",
      async () => {
        await f.write("s1", "a.txt", "two\n");
        const [change] = await f.service.diff(f.scope("s1"), { text: true });
        assert.equal(change.path, "a.txt");
        assert.equal(change.change, "modified");
        assert.match(change.text ?? "", /-one\n\+two/);
        assert.equal(await Deno.readTextFile(join(f.workspace, "a.txt")), "one\n");
        assert.deepEqual(await f.service.diff(f.scope("s2")), []);
      },
    );
    await t.step("commit applies it; the overlay is then empty", async () => {
      const r = await f.service.commit(f.scope("s1"));
      assert.deepEqual(r.applied, ["a.txt"]);
      assert.equal(await Deno.readTextFile(join(f.workspace, "a.txt")), "two\n");
      assert.deepEqual(await f.service.diff(f.scope("s1")), []);
    });
    await t.step("discard drops changes and says how many", async () => {
      await f.write("s1", "b.txt", "new\n");
      await f.write("s1", "c.txt", "new\n");
      assert.equal(await f.service.discard(f.scope("s1")), 2);
      assert.deepEqual(await f.service.diff(f.scope("s1")), []);
      await assert.rejects(() => Deno.lstat(join(f.workspace, "b.txt")));
    });
  } finally {
    await f.cleanup();
  }
});

Deno.test("OverlayService.sessions() lists the sessions holding changes, newest first", async () => {
  const f = await fixture();
  try {
    assert.deepEqual(await f.service.sessions(f.scope("x")), []);
    await f.write("older", "o.txt", "o\n");
    await f.write("empty", "e.txt", "e\n");
    await f.service.discard(f.scope("empty"));
    const past = new Date(Date.now() - 60_000);
    await Deno.utime(join(f.service.sessionDir(f.scope("older")), "upper", "o.txt"), past, past);
    await Deno.utime(join(f.service.sessionDir(f.scope("older")), "upper"), past, past);
    await f.write("newer", "n.txt", "n\n");
    const list = await f.service.sessions(f.scope("x"));
    assert.deepEqual(list.map((s) => [s.session, s.changes]), [["newer", 1], ["older", 1]]);
  } finally {
    await f.cleanup();
  }
});

Deno.test("OverlayService.remember() tells listeners each workspace root once", () => {
  const service = new OverlayService({ principalDir: (p: string) => `/h/${p}` });
  const seen: string[] = [];
  service.remember("w1", "/repo/one");
  service.onRemember((id, root) => seen.push(`${id}=${root}`));
  service.remember("w1", "/repo/one");
  service.remember("w2", "/repo/two");
  service.remember("w1", "/repo/moved");
  assert.deepEqual(seen, ["w1=/repo/one", "w2=/repo/two", "w1=/repo/moved"]);
  assert.equal(service.root("w1"), "/repo/moved");
  assert.equal(service.root("w3"), undefined);
});

Deno.test("OverlayService.onBeforeAccess() hooks run before diff, commit, discard and listing", async () => {
  const f = await fixture();
  try {
    const calls: string[] = [];
    f.service.onBeforeAccess((scope) => {
      calls.push(`${scope.principal}/${scope.workspaceId}/${scope.session ?? "*"}`);
      return Promise.resolve();
    });
    await f.service.diff(f.scope("s1"));
    await f.service.commit(f.scope("s1"));
    await f.service.discard(f.scope("s2"));
    await f.service.sessions(f.scope("x"));
    assert.deepEqual(calls, ["default/w1/s1", "default/w1/s1", "default/w1/s2", "default/w1/*"]);
    f.service.onBeforeAccess(() => Promise.reject(new Error("server did not stop")));
    await assert.rejects(() => f.service.diff(f.scope("s1")), /server did not stop/);
  } finally {
    await f.cleanup();
  }
});
