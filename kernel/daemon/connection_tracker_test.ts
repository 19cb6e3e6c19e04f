import assert from "node:assert/strict";
import { ConnectionTracker } from "./connection_tracker.ts";

Deno.test("ConnectionTracker counts connections per principal and session", async (t) => {
  const tracker = new ConnectionTracker();
  const totals: number[] = [];
  const ended: string[] = [];
  tracker.onChange((n) => totals.push(n));
  tracker.onSessionEnded((p, s) => ended.push(`${p}/${s}`));

  await t.step("attach counts and reports new sessions", () => {
    assert.deepEqual(
      tracker.attach({ id: "c-1", principal: "default", session: "s1", client: "cli" }),
      {
        ok: true,
        newSession: true,
      },
    );
    assert.deepEqual(
      tracker.attach({ id: "c-2", principal: "default", session: "s1", client: "cli" }),
      {
        ok: true,
        newSession: false,
      },
    );
    tracker.attach({ id: "c-3", principal: "alice", session: "s1", client: "cli" });
    assert.equal(tracker.total, 3);
    assert.equal(tracker.sessions, 2); // (default, s1) and (alice, s1) are different sessions
    assert.deepEqual(tracker.byPrincipal(), [
      { principal: "default", count: 2 },
      { principal: "alice", count: 1 },
    ]);
    assert.deepEqual(totals, [1, 2, 3]);
  });

  await t.step("a session ends when its last connection detaches, not before", () => {
    tracker.detach("c-1");
    assert.deepEqual(ended, []);
    tracker.detach("c-2");
    assert.deepEqual(ended, ["default/s1"]);
    tracker.detach("c-2"); // unknown now: ignored
    assert.equal(tracker.total, 1);
    assert.deepEqual(tracker.byPrincipal(), [{ principal: "alice", count: 1 }]);
  });

  await t.step("a session is bound to the first workspace named", () => {
    tracker.attach({ id: "c-4", principal: "default", session: "w", client: "cli" });
    tracker.attach({
      id: "c-5",
      principal: "default",
      session: "w",
      workspaceId: "ws1",
      client: "cli",
    });
    assert.equal(tracker.sessionWorkspace("default", "w"), "ws1");
    assert.deepEqual(
      tracker.attach({
        id: "c-6",
        principal: "default",
        session: "w",
        workspaceId: "ws2",
        client: "cli",
      }),
      { ok: false, boundTo: "ws1" },
    );
    assert.equal(tracker.list().some((c) => c.id === "c-6"), false);
  });
});
