import assert from "node:assert/strict";
import { join } from "node:path";
import { parseManifest } from "../../manifest_parser.ts";
import { hasStaticContent, readStaticContent, StaticEngine } from "./static_engine.ts";
import { StaticCode, StaticError } from "./errors.ts";

const MANIFEST = `[package]
name = "notes"
version = "1.0.0"

[static]
context_files = ["static/context.md"]

[[skill]]
name = "research"
description = "How to research"
file = "static/skills/research.md"

[[command]]
name = "cite"
description = "Citation help"
file = "static/cite.md"
`;

async function record(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "astrid-static-" });
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(join(dir, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(dir, path), text);
  }
  return dir;
}

const FILES = {
  "static/context.md": "Be brief.",
  "static/skills/research.md": "Use sources.",
  "static/cite.md": "Cite.",
};

function isStatic(code: string, re: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof StaticError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, re);
    return true;
  };
}

Deno.test("StaticEngine serves context files, skills and file commands", async () => {
  const dir = await record(FILES);
  try {
    const manifest = parseManifest(MANIFEST, { file: "Capsule.toml" });
    assert.equal(hasStaticContent(manifest), true);
    const engine = new StaticEngine();
    const content = await engine.load({ key: "notes", dir, manifest });
    assert.equal(content.bytes, 26);
    assert.deepEqual(engine.listContext().map((c) => c.text), ["Be brief."]);
    assert.deepEqual(engine.listSkills().map((s) => [s.name, s.description, s.text]), [
      ["research", "How to research", "Use sources."],
    ]);
    assert.deepEqual(engine.listCommands().map((c) => [c.name, c.text]), [["cite", "Cite."]]);
    assert.deepEqual(engine.listContext((key) => key !== "notes"), []);
    assert.equal(engine.unload("notes"), true);
    assert.deepEqual(engine.listSkills(), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readStaticContent() never follows a symlink out of the capsule", async (t) => {
  const manifest = parseManifest(MANIFEST, { file: "Capsule.toml" });
  const secret = await Deno.makeTempFile();
  await Deno.writeTextFile(secret, "id_ed25519");
  await t.step("a symlinked file", async () => {
    const dir = await record({ ...FILES, "static/context.md": "" });
    await Deno.remove(join(dir, "static/context.md"));
    await Deno.symlink(secret, join(dir, "static/context.md"));
    await assert.rejects(
      () => readStaticContent({ key: "notes", dir, manifest }),
      isStatic(
        StaticCode.STATIC_FILE_INVALID,
        /static file "static\/context\.md" cannot be served: "static\/context\.md" is a symlink/,
      ),
    );
    await Deno.remove(dir, { recursive: true });
  });
  await t.step("a symlinked directory", async () => {
    const dir = await record(FILES);
    const elsewhere = await record({ "research.md": "x" });
    await Deno.remove(join(dir, "static/skills"), { recursive: true });
    await Deno.symlink(elsewhere, join(dir, "static/skills"));
    await assert.rejects(
      () => readStaticContent({ key: "notes", dir, manifest }),
      isStatic(StaticCode.STATIC_FILE_INVALID, /"static\/skills" is a symlink/),
    );
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(elsewhere, { recursive: true });
  });
  await Deno.remove(secret);
});

Deno.test("readStaticContent() refuses missing, non-UTF-8 and oversized files", async (t) => {
  const manifest = parseManifest(MANIFEST, { file: "Capsule.toml" });
  await t.step("missing", async () => {
    const dir = await record({ "static/context.md": "x" });
    await assert.rejects(
      () => readStaticContent({ key: "notes", dir, manifest }),
      isStatic(
        StaticCode.STATIC_FILE_INVALID,
        /"static\/skills\/research\.md" cannot be served: it is missing/,
      ),
    );
    await Deno.remove(dir, { recursive: true });
  });
  await t.step("not UTF-8", async () => {
    const dir = await record(FILES);
    await Deno.writeFile(join(dir, "static/cite.md"), new Uint8Array([0xff, 0xfe, 0x00]));
    await assert.rejects(
      () => readStaticContent({ key: "notes", dir, manifest }),
      isStatic(StaticCode.STATIC_FILE_INVALID, /it is not UTF-8 text/),
    );
    await Deno.remove(dir, { recursive: true });
  });
  await t.step("one file over the limit, then all of them", async () => {
    const dir = await record(FILES);
    await assert.rejects(
      () =>
        readStaticContent({ key: "notes", dir, manifest }, {
          maxFileBytes: 9,
          maxCapsuleBytes: 100,
        }),
      isStatic(
        StaticCode.STATIC_TOO_LARGE,
        /"static\/skills\/research\.md" is 12 bytes, over the limit of 9/,
      ),
    );
    await assert.rejects(
      () =>
        readStaticContent({ key: "notes", dir, manifest }, {
          maxFileBytes: 100,
          maxCapsuleBytes: 20,
        }),
      isStatic(
        StaticCode.STATIC_TOO_LARGE,
        /its static files total 21 bytes, over the limit of 20/,
      ),
    );
    await Deno.remove(dir, { recursive: true });
  });
});
