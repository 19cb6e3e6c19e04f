import assert from "node:assert/strict";
import { parseMountInfo, remountsFor } from "./_mountinfo.ts";

const SAMPLE = [
  "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw",
  "40 27 0:50 / /etc/hosts rw,nosuid,nodev,relatime - ext4 /dev/vda rw",
  "41 27 0:51 / /etc/with\\040space ro,noexec - tmpfs tmpfs ro",
  "42 27 0:52 / /usr rw,nosuid - ext4 /dev/vdb rw",
  "43 27 0:53 / /etcetera rw - tmpfs tmpfs rw",
].join("\n");

Deno.test("parseMountInfo() decodes octal escapes and options", () => {
  const mounts = parseMountInfo(SAMPLE);
  assert.equal(mounts.length, 5);
  assert.equal(mounts[2].mountPoint, "/etc/with space");
  assert.deepEqual(mounts[2].options, ["ro", "noexec"]);
});

Deno.test("remountsFor() covers the dir and every mount below it, keeping locked flags", () => {
  const mounts = parseMountInfo(SAMPLE);
  assert.deepEqual(remountsFor("/etc", mounts, true), [
    { path: "/etc", flags: ["ro", "nosuid", "nodev"] },
    { path: "/etc/hosts", flags: ["ro", "nosuid", "nodev"] },
    { path: "/etc/with space", flags: ["ro", "nosuid", "nodev", "noexec"] },
  ]);
  assert.deepEqual(remountsFor("/usr", mounts, true), [
    { path: "/usr", flags: ["ro", "nosuid", "nodev"] },
  ]);
});

Deno.test("remountsFor() keeps a read-only source read-only even when writable is asked", () => {
  const mounts = parseMountInfo(SAMPLE);
  assert.deepEqual(remountsFor("/etc/with space", mounts, false), [
    { path: "/etc/with space", flags: ["ro", "nosuid", "nodev", "noexec"] },
  ]);
  assert.deepEqual(remountsFor("/srv/data", mounts, false), [
    { path: "/srv/data", flags: ["nosuid", "nodev"] },
  ]);
});
