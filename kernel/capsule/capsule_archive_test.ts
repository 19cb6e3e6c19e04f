import assert from "node:assert/strict";
import { blake3Hex } from "../crypto/mod.ts";
import { type ArchiveMember, readArchive, writeArchive } from "./capsule_archive.ts";
import { CapsuleCode, CapsuleError } from "./errors.ts";
import { readTar, writeTar } from "./_tar.ts";

const enc = new TextEncoder();

const MANIFEST = `[package]
name = "hello"
version = "0.1.0"

[wasm]

[static]
context_files = ["static/guide.md"]

[[skill]]
name = "greeting"
description = "How to greet"
file = "static/skills/greeting.md"
`;

function members(): ArchiveMember[] {
  return [
    { path: "static/skills/greeting.md", data: enc.encode("# Greeting\n") },
    { path: "hello.wasm", data: new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]) },
    { path: "Capsule.toml", data: enc.encode(MANIFEST) },
    { path: "static/guide.md", data: enc.encode("Be kind.\n") },
  ];
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A raw ustar header of any type, for hostile archives the writer would never make. */
function rawEntry(
  path: string,
  type: string,
  data: Uint8Array = new Uint8Array(0),
  linkname = "",
): Uint8Array {
  const h = new Uint8Array(512);
  const put = (off: number, text: string) => h.set(enc.encode(text), off);
  put(0, path);
  put(100, "0000644\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, data.length.toString(8).padStart(11, "0") + "\0");
  put(136, "00000000000\0");
  h.fill(0x20, 148, 156);
  h[156] = type.charCodeAt(0);
  put(157, linkname);
  put(257, "ustar\0");
  put(263, "00");
  let sum = 0;
  for (const b of h) sum += b;
  put(148, sum.toString(8).padStart(6, "0") + "\0 ");
  const body = new Uint8Array(Math.ceil(data.length / 512) * 512);
  body.set(data);
  const out = new Uint8Array(512 + body.length);
  out.set(h);
  out.set(body, 512);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0) + 1024;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A valid archive's entries plus `extra` raw entries, with HASHES covering the valid ones. */
async function withExtra(extra: Uint8Array[]): Promise<Uint8Array> {
  const tar = await gunzip(await writeArchive(members()));
  const entries = readTar(tar, { maxEntries: 100 });
  const raw = entries.map((e) => rawEntry(e.path, "0", e.data));
  return await gzip(concat([...raw, ...extra]));
}

async function refused(bytes: Uint8Array, pattern: RegExp): Promise<void> {
  await assert.rejects(readArchive(bytes), (err: unknown) => {
    assert.ok(err instanceof CapsuleError, String(err));
    assert.equal(err.code, CapsuleCode.ARCHIVE_INVALID);
    assert.match(err.message, pattern);
    return true;
  });
}

Deno.test("writeArchive() is deterministic", async (t) => {
  await t.step("byte-identical twice, whatever the member order", async () => {
    const a = await writeArchive(members());
    const b = await writeArchive(members());
    const c = await writeArchive([...members()].reverse());
    assert.deepEqual(a, b);
    assert.deepEqual(a, c);
  });
  await t.step(
    "sorted entries, zero mtimes, uid/gid 0, mode 0644, HASHES of every other member",
    async () => {
      const tar = await gunzip(await writeArchive(members()));
      const entries = readTar(tar, { maxEntries: 100 });
      assert.deepEqual(entries.map((e) => e.path), [
        "Capsule.toml",
        "HASHES",
        "hello.wasm",
        "static/guide.md",
        "static/skills/greeting.md",
      ]);
      for (let at = 0; at < tar.length; at += 512) {
        const h = tar.subarray(at, at + 512);
        if (h[257] !== 0x75) continue; // not a header ("u" of ustar)
        assert.equal(new TextDecoder().decode(h.subarray(136, 147)), "00000000000");
        assert.equal(new TextDecoder().decode(h.subarray(108, 115)), "0000000");
        assert.equal(new TextDecoder().decode(h.subarray(116, 123)), "0000000");
      }
      assert.ok(entries.every((e) => e.mode === 0o644 && e.type === "0"));
      const hashes = new TextDecoder().decode(entries[1].data);
      const expected = entries.filter((e) => e.path !== "HASHES")
        .map((e) => `blake3:${blake3Hex(e.data)}  ${e.path}\n`).join("");
      assert.equal(hashes, expected);
    },
  );
  await t.step("an executable member gets mode 0755", async () => {
    const list = members();
    list[0] = { ...list[0], executable: true };
    const entries = readTar(await gunzip(await writeArchive(list)), { maxEntries: 100 });
    assert.equal(entries.find((e) => e.path === "static/skills/greeting.md")?.mode, 0o755);
  });
});

Deno.test("readArchive() returns what writeArchive() wrote", async () => {
  const archive = await readArchive(await writeArchive(members()));
  assert.equal(archive.manifest.package.name, "hello");
  assert.equal(archive.manifestText, MANIFEST);
  assert.deepEqual(archive.wasm, members()[1].data);
  assert.equal(archive.wasmHash, `blake3:${blake3Hex(members()[1].data)}`);
  assert.deepEqual(archive.members.map((m) => m.path), [
    "Capsule.toml",
    "hello.wasm",
    "static/guide.md",
    "static/skills/greeting.md",
  ]);
});

Deno.test("readArchive() detects tampering through HASHES", async (t) => {
  const rebuilt = async (edit: (path: string, data: Uint8Array) => Uint8Array | undefined) => {
    const entries = readTar(await gunzip(await writeArchive(members())), { maxEntries: 100 });
    const kept = entries.flatMap((e) => {
      const data = edit(e.path, e.data);
      return data === undefined ? [] : [{ path: e.path, data, mode: 0o644 }];
    });
    return await gzip(writeTar(kept));
  };
  await t.step("a changed member", async () => {
    const bytes = await rebuilt((p, d) => (p === "static/guide.md" ? enc.encode("Be evil.\n") : d));
    await refused(
      bytes,
      /member "static\/guide.md" does not match HASHES: listed blake3:[0-9a-f]{64}, contents hash to blake3:/,
    );
  });
  await t.step("a changed wasm", async () => {
    const bytes = await rebuilt((p, d) => (p === "hello.wasm" ? new Uint8Array([...d, 0]) : d));
    await refused(bytes, /member "hello.wasm" does not match HASHES/);
  });
  await t.step("a member HASHES does not list", async () => {
    const bytes = await rebuilt((p, d) =>
      p === "HASHES"
        ? enc.encode(
          new TextDecoder().decode(d).split("\n").filter((l) => !l.endsWith("static/guide.md"))
            .join("\n"),
        )
        : d
    );
    await refused(bytes, /member "static\/guide.md" is not listed in HASHES/);
  });
  await t.step("a listed member that is missing", async () => {
    // Drop the member and the manifest's mention of it, so only HASHES notices.
    const bytes = await rebuilt((p, d) => (p === "static/skills/greeting.md" ? undefined : d));
    await refused(bytes, /static\/skills\/greeting.md", named in Capsule.toml, is missing/);
  });
  await t.step("no HASHES at all", async () => {
    await refused(await rebuilt((p, d) => (p === "HASHES" ? undefined : d)), /no HASHES/);
  });
});

Deno.test("readArchive() refuses hostile archives", async (t) => {
  await t.step("a ../ path", async () => {
    await refused(
      await withExtra([rawEntry("static/../../x", "0", enc.encode("x"))]),
      /escapes the archive with "\.\."/,
    );
  });
  await t.step("an absolute path", async () => {
    await refused(
      await withExtra([rawEntry("/etc/passwd", "0", enc.encode("x"))]),
      /absolute member path "\/etc\/passwd"/,
    );
  });
  await t.step("a symlink entry", async () => {
    await refused(
      await withExtra([rawEntry("static/link", "2", new Uint8Array(0), "/etc/passwd")]),
      /"static\/link" is a symlink/,
    );
  });
  await t.step("a hard link entry", async () => {
    await refused(
      await withExtra([rawEntry("static/hard", "1", new Uint8Array(0), "Capsule.toml")]),
      /is a hard link/,
    );
  });
  await t.step("a device entry", async () => {
    await refused(await withExtra([rawEntry("static/dev", "3")]), /is a character device/);
  });
  await t.step("a duplicate member", async () => {
    await refused(
      await withExtra([rawEntry("static/guide.md", "0", enc.encode("again"))]),
      /duplicate member "static\/guide.md"/,
    );
  });
  await t.step("names differing only in case", async () => {
    await refused(
      await withExtra([rawEntry("static/GUIDE.md", "0", enc.encode("x"))]),
      /differ only in case/,
    );
  });
  await t.step("an unexpected top-level member", async () => {
    await refused(
      await withExtra([rawEntry("run.sh", "0", enc.encode("x"))]),
      /unexpected member "run.sh"/,
    );
  });
  await t.step("a pax extension header", async () => {
    await refused(
      await withExtra([rawEntry("pax", "x", enc.encode("30 path=static/evil\n"))]),
      /entry of type "x"/,
    );
  });
  await t.step("too many members", async () => {
    await assert.rejects(
      readArchive(await writeArchive(members()), { limits: { maxMembers: 3 } }),
      /more than 3 entries/,
    );
  });
  await t.step("members over the total size limit", async () => {
    const list = [...members(), { path: "static/big", data: new Uint8Array(2 * 1024 * 1024) }];
    await assert.rejects(
      readArchive(await writeArchive(list), { limits: { maxTotalBytes: 1024 * 1024 } }),
      /members exceed 1048576 bytes in total/,
    );
  });
  await t.step("a gzip bomb stops decompressing at the limit", async () => {
    const list = [...members(), { path: "static/zeros", data: new Uint8Array(16 * 1024 * 1024) }];
    const bytes = await writeArchive(list);
    assert.ok(bytes.length < 64 * 1024, "a highly compressible archive");
    await assert.rejects(
      readArchive(bytes, { limits: { maxTotalBytes: 1024 * 1024 } }),
      /the uncompressed archive exceeds/,
    );
  });
  await t.step("not gzip", async () => {
    await refused(enc.encode("PK\x03\x04 zip?"), /not a gzip file/);
  });
  await t.step("corrupt gzip", async () => {
    const bytes = await writeArchive(members());
    bytes[bytes.length - 12] ^= 0xff;
    await assert.rejects(
      readArchive(bytes),
      (err: unknown) => err instanceof CapsuleError && err.code === CapsuleCode.ARCHIVE_INVALID,
    );
  });
  await t.step("a truncated tar", async () => {
    const tar = await gunzip(await writeArchive(members()));
    await refused(await gzip(tar.subarray(0, 700)), /malformed tar/);
  });
});

Deno.test("readArchive() refuses an archive whose manifest does not parse", async () => {
  const list = members().map((m) =>
    m.path === "Capsule.toml"
      ? { ...m, data: enc.encode(MANIFEST.replace('name = "hello"', 'name = "hello"\nnmae = "x"')) }
      : m
  );
  const tar = await gunzip(await writeArchive(members()));
  const entries = readTar(tar, { maxEntries: 100 }).map((e) => ({
    path: e.path,
    data: e.path === "Capsule.toml" ? list.find((m) => m.path === "Capsule.toml")!.data : e.data,
    mode: 0o644,
  }));
  await assert.rejects(readArchive(await gzip(writeTar(entries))), (err: unknown) => {
    assert.ok(err instanceof CapsuleError);
    assert.equal(err.code, CapsuleCode.ARCHIVE_INVALID);
    assert.match(
      err.message,
      /Capsule.toml:3: package.nmae: unknown key "nmae" in \[package\]; did you mean "name"\?/,
    );
    return true;
  });
});

Deno.test("writeArchive() refuses members that would not make a valid archive", async (t) => {
  await t.step("HASHES given by the caller", async () => {
    await assert.rejects(
      writeArchive([...members(), { path: "HASHES", data: new Uint8Array() }]),
      /HASHES is computed by the writer/,
    );
  });
  await t.step("no manifest", async () => {
    await assert.rejects(
      writeArchive(members().filter((m) => m.path !== "Capsule.toml")),
      /no Capsule.toml/,
    );
  });
  await t.step("[wasm] without its module", async () => {
    await assert.rejects(
      writeArchive(members().filter((m) => m.path !== "hello.wasm")),
      /"hello.wasm" is missing/,
    );
  });
  await t.step("a path with ..", async () => {
    await assert.rejects(
      writeArchive([...members(), { path: "static/../x", data: new Uint8Array() }]),
      /escapes the archive/,
    );
  });
});

Deno.test("docs/capsule_format.md states the limits and a meta.json that parses", async () => {
  const { ARCHIVE_LIMITS } = await import("./capsule_archive.ts");
  const { parseInstallMeta } = await import("./install_record.ts");
  const doc = await Deno.readTextFile(new URL("../../docs/capsule_format.md", import.meta.url));
  assert.equal(ARCHIVE_LIMITS.maxTotalBytes, 64 * 1024 * 1024);
  assert.match(doc, /all members' bytes together\s*\|\s*64 MiB/);
  assert.match(
    doc,
    new RegExp(
      `members, \`HASHES\` included\\s*\\|\\s*${ARCHIVE_LIMITS.maxMembers.toLocaleString("en")}`,
    ),
  );
  assert.match(doc, new RegExp(`path length\\s*\\|\\s*${ARCHIVE_LIMITS.maxPathBytes} bytes`));
  const json = /```json\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(json);
  assert.equal(parseInstallMeta(json, "hello").name, "hello");
});
