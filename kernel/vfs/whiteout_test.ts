import assert from "node:assert/strict";
import { join } from "node:path";
import { VfsCode, VfsError } from "./errors.ts";
import {
  defaultWhiteoutFormat,
  isOpaqueDir,
  isWhiteoutInfo,
  makeWhiteout,
  probeWhiteoutFormat,
  whiteoutPath,
} from "./whiteout.ts";

Deno.test("makeWhiteout() chardev makes a 0/0 character device", {
  ignore: Deno.build.os !== "linux", // overlayfs whiteouts are a Linux format
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "gone");
    await makeWhiteout(path, "chardev");
    const info = await Deno.lstat(path);
    assert.equal(info.isCharDevice, true);
    assert.equal(info.rdev, 0);
    assert.equal(isWhiteoutInfo(info), true);
    assert.equal(isWhiteoutInfo(await Deno.lstat(dir)), false);
    await assert.rejects(
      makeWhiteout(path, "chardev"),
      (e) =>
        e instanceof VfsError && e.code === VfsCode.VFS_WHITEOUT_FAILED && e.message.includes(path),
    );
    assert.equal(await probeWhiteoutFormat(dir), "chardev");
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name),
      ["gone"],
      "the probe cleans up",
    );
    assert.equal(defaultWhiteoutFormat(), "chardev");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("makeWhiteout() marker makes an empty .wh. file beside the entry", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await makeWhiteout(join(dir, "gone"), "marker");
    assert.equal(whiteoutPath(join(dir, "gone"), "marker"), join(dir, ".wh.gone"));
    const info = await Deno.lstat(join(dir, ".wh.gone"));
    assert.equal(info.isFile, true);
    assert.equal(info.size, 0);
    assert.equal(isWhiteoutInfo(info), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("isOpaqueDir() is false for a plain directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(isOpaqueDir(dir), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
