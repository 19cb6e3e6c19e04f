import assert from "node:assert/strict";
import { join } from "node:path";
import type { PolicyConfig } from "../config/mod.ts";
import { makeWhiteout } from "../vfs/mod.ts";
import { SandboxCode, SandboxError } from "./errors.ts";
import { deniedCandidate, findMaskedPaths } from "./mask_paths.ts";

function policy(denied: string[], allowed: string[] = []): PolicyConfig {
  return { denied_paths: denied, allowed_paths: allowed, denied_hosts: [], denied_commands: [] };
}

async function tree(files: Record<string, string>): Promise<string> {
  const dir = await Deno.realPath(await Deno.makeTempDir());
  for (const [path, body] of Object.entries(files)) {
    await Deno.mkdir(join(dir, path, ".."), { recursive: true });
    if (path.endsWith("/")) await Deno.mkdir(join(dir, path), { recursive: true });
    else await Deno.writeTextFile(join(dir, path), body);
  }
  return dir;
}

Deno.test("findMaskedPaths() lists denied files and directories of one tree", async () => {
  const ws = await tree({
    ".env": "x",
    "a/.env": "x",
    "a/ok.txt": "x",
    "secrets/k": "x",
    "secrets/deep/k2": "x",
    "home/.ssh/id": "x",
  });
  try {
    await Deno.symlink(".env", join(ws, "link"));
    const found = findMaskedPaths([ws], {
      root: ws,
      policy: policy(["**/.env", "secrets", "**/.ssh/**"]),
    });
    assert.deepEqual(found.files, [`${ws}/.env`, `${ws}/a/.env`, `${ws}/home/.ssh/id`]);
    assert.deepEqual(found.dirs, [`${ws}/secrets`], "a denied dir is masked whole, not entered");
  } finally {
    await Deno.remove(ws, { recursive: true });
  }
});

Deno.test("findMaskedPaths() walks the merged view of layers with overlayfs's rules", async () => {
  const lower = await tree({ "hidden/.env": "x", "both/.env": "x", "replaced/.env": "x" });
  const upper = await tree({ "both/": "", "new/.env": "x", "replaced": "now a file" });
  try {
    await makeWhiteout(join(upper, "hidden"), "chardev");
    const found = findMaskedPaths([upper, lower], { root: "/ws", policy: policy(["**/.env"]) });
    assert.deepEqual(found.files, ["/ws/both/.env", "/ws/new/.env"]);
    assert.deepEqual(found.dirs, []);
  } finally {
    await Deno.remove(lower, { recursive: true });
    await Deno.remove(upper, { recursive: true });
  }
});

Deno.test("findMaskedPaths() applies allowed_paths: everything outside is masked", async () => {
  const ws = await tree({ "src/a.ts": "x", "src/b/c.ts": "x", "README": "x", "docs/x.md": "x" });
  try {
    const found = findMaskedPaths([ws], { root: ws, policy: policy([], [`${ws}/src/**`]) });
    assert.deepEqual(found.files, [`${ws}/README`], "src is entered: allowed entries lie below");
    assert.deepEqual(found.dirs, [`${ws}/docs`]);
  } finally {
    await Deno.remove(ws, { recursive: true });
  }
});

Deno.test("findMaskedPaths() gives up past maxEntries with SANDBOX_MASK_LIMIT", async () => {
  const ws = await tree({ "a": "", "b": "", "c": "" });
  try {
    assert.throws(
      () => findMaskedPaths([ws], { root: ws, policy: policy(["x"]), maxEntries: 2 }),
      (err) => err instanceof SandboxError && err.code === SandboxCode.SANDBOX_MASK_LIMIT,
    );
  } finally {
    await Deno.remove(ws, { recursive: true });
  }
});

Deno.test("deniedCandidate() rules out only paths no pattern can match", () => {
  const candidate = deniedCandidate(policy(["**/.env", "**/.ssh/**", "credentials"]));
  assert.equal(candidate("/w/a/.env", ".env"), true);
  assert.equal(candidate("/w/.ssh/id", "id"), true);
  assert.equal(candidate("/w/credentials", "credentials"), true);
  assert.equal(candidate("/w/src/a.ts", "a.ts"), false);
  assert.equal(deniedCandidate(policy(["**/*.pem"]))("/w/a.ts", "a.ts"), true, "a glob: ask");
  assert.equal(deniedCandidate(policy([], ["/w/**"]))("/w/a.ts", "a.ts"), true, "allow-list");
});
