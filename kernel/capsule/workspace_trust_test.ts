import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { MemoryStore } from "../storage/mod.ts";
import { parseManifest } from "./manifest_parser.ts";
import type { InstallRecord } from "./install_record.ts";
import { NO_WORKSPACE_TRUST, StoreWorkspaceTrust, trustSubject } from "./workspace_trust.ts";

function record(text: string, hash: string | null): InstallRecord {
  const manifestText = `[package]\nname = "helper"\nversion = "1.0.0"\n${text}`;
  return {
    dir: "/w/.astrid/capsules/helper",
    manifest: parseManifest(manifestText, { file: "Capsule.toml" }),
    manifestText,
    meta: {
      name: "helper",
      version: "1.0.0",
      wasm_hash: hash,
      source: "repo",
      installed_at: "2026-01-01T00:00:00Z",
    },
  };
}

Deno.test("StoreWorkspaceTrust trusts exactly the manifest and binary it pinned", async (t) => {
  const store = new MemoryStore();
  const trust = new StoreWorkspaceTrust(store, { clock: new ManualClock(1000) });
  const hash = `blake3:${"a".repeat(64)}`;
  const subject = trustSubject("w1", record("[wasm]\n", hash));

  await t.step("nothing is trusted at first, and never by NO_WORKSPACE_TRUST", async () => {
    assert.equal(await trust.isTrusted(subject), false);
    assert.equal(await NO_WORKSPACE_TRUST.isTrusted(subject), false);
  });
  await t.step(
    "a trusted subject loads; another workspace or manifest or binary does not",
    async () => {
      const r = await trust.trust(subject);
      assert.deepEqual([r.trustedAt, r.by], [1000, "operator"]);
      assert.equal(await trust.isTrusted(subject), true);
      assert.equal(await trust.isTrusted({ ...subject, workspaceId: "w2" }), false);
      assert.equal(
        await trust.isTrusted(trustSubject("w1", record("[wasm]\n# edited\n", hash))),
        false,
      );
      assert.equal(
        await trust.isTrusted(trustSubject("w1", record("[wasm]\n", `blake3:${"b".repeat(64)}`))),
        false,
      );
    },
  );
  await t.step("list() and revoke()", async () => {
    assert.deepEqual((await trust.list("w1")).map((r) => [r.workspaceId, r.name]), [[
      "w1",
      "helper",
    ]]);
    assert.equal(await trust.revoke("w1", "helper"), true);
    assert.equal(await trust.isTrusted(subject), false);
    assert.deepEqual(await trust.list(), []);
  });
});
