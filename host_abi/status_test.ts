import assert from "node:assert/strict";
import { HostCallError, HostStatus, hostStatusName, isHostStatus } from "./status.ts";

const DOC = new URL("../docs/host_abi.md", import.meta.url);

/** Reads the rows between the status-code markers of docs/host_abi.md. */
async function documentedCodes(): Promise<[number, string][]> {
  const text = await Deno.readTextFile(DOC);
  const start = text.indexOf("<!-- status-codes:start -->");
  const end = text.indexOf("<!-- status-codes:end -->");
  assert.ok(start >= 0 && end > start, "docs/host_abi.md has the status-code markers");
  const rows: [number, string][] = [];
  for (const line of text.slice(start, end).split("\n")) {
    const m = /^\|\s*(\d+)\s*\|\s*`([A-Z_]+)`\s*\|/.exec(line);
    if (m !== null) rows.push([Number(m[1]), m[2]]);
  }
  return rows;
}

Deno.test("HostStatus is numbered 0..n without gaps and OK is 0", () => {
  const codes = Object.values(HostStatus);
  assert.deepEqual(codes, codes.map((_, i) => i));
  assert.equal(HostStatus.OK, 0);
});

Deno.test("HostStatus numbers never change", () => {
  // Appending a code is a decision; renumbering one breaks every compiled capsule.
  assert.deepEqual(HostStatus, {
    OK: 0,
    DENIED: 1,
    NOT_FOUND: 2,
    INVALID_ARGUMENT: 3,
    LIMIT_EXCEEDED: 4,
    TIMEOUT: 5,
    UNAVAILABLE: 6,
    CONFLICT: 7,
    IO: 8,
    INTERNAL: 9,
    UNSUPPORTED: 10,
    CANCELLED: 11,
    CLOSED: 12,
  });
});

Deno.test("docs/host_abi.md lists exactly the codes of HostStatus", async () => {
  assert.deepEqual(await documentedCodes(), Object.entries(HostStatus).map(([n, c]) => [c, n]));
});

Deno.test("hostStatusName() maps numbers outside the list to INTERNAL", () => {
  assert.equal(hostStatusName(1), "DENIED");
  assert.equal(hostStatusName(12), "CLOSED");
  assert.equal(hostStatusName(13), "INTERNAL");
  assert.equal(isHostStatus(4), true);
  assert.equal(isHostStatus(99), false);
});

Deno.test("HostCallError carries the status the guest receives", () => {
  const err = new HostCallError(HostStatus.LIMIT_EXCEEDED, "Value is 9: the limit is 8", {
    field: "count",
  });
  assert.equal(err.status, 4);
  assert.equal(err.code, "LIMIT_EXCEEDED");
  assert.deepEqual(err.data, { status: 4, field: "count" });
  assert.equal(err.name, "HostCallError");
});
