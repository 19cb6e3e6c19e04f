import assert from "node:assert/strict";
import { sandboxStatus } from "./sandbox_status.ts";

Deno.test("sandboxStatus() probes once and says what works or why not", async () => {
  const status = await sandboxStatus();
  assert.equal(typeof status.reason, "string");
  assert.ok(status.reason.length > 0);
  if (status.available) assert.equal(status.mechanism, "unshare-overlayfs");
  else {
    assert.equal(status.mechanism, "none");
    console.log(`The namespace sandbox is unavailable here: ${status.reason}`);
  }
  assert.equal(await sandboxStatus(), status, "cached");
  if (Deno.build.os === "linux" && Deno.uid() === 0) {
    assert.equal(status.available, true, `namespaces work as root on Linux CI: ${status.reason}`);
  }
});
