/**
 * Proves the host calls of `fs`, `kv`, `approval`, `security`, `clock`, `log` and `random`
 * through the real path: a real guest (`_abi_guest.ts`, one WAT module importing the whole
 * table) in a permission-less worker of the real engine, the dispatcher, the manifest gate,
 * the security pipeline, the audit log, SQLite and the session overlays. For each function:
 * the allowed path (declared → OK and the effect happened) and the denied path (not declared →
 * DENIED and an audit entry of layer `manifest`); hostile paths; the principal taken from the
 * invocation context (two principals, isolated KV and overlays).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { HOST_TIMERS } from "../host_abi/ipc.ts";
import { encodeU32, HOST_TABLE, HostStatus, PENDING_FUNCTIONS, provide } from "../host_abi/mod.ts";
import {
  type AbiCapsule,
  type AbiKernel,
  expectOk as ok,
  expectStatus as status,
  manifestDenials,
  withKernel,
} from "./_abi_fixture.ts";

const WRITER = `fs_read = ["*"]\nfs_write = ["workspace://out"]`;
const dec = new TextDecoder();

/** Yields to the event loop until `done()` (worker and store work run in between). */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 20_000 && !done(); i++) await new Promise((r) => setTimeout(r, 0));
  assert.ok(done(), "condition not reached");
}

Deno.test("fs_* with the capability: OK, and the effect lands in the session overlay", async (t) => {
  await withKernel(async (k) => {
    await Deno.writeTextFile(join(k.workspace, "readme.md"), "lower");
    const c = await k.load("files", WRITER);
    const overlay = await k.overlay();

    await t.step("fs_mkdir creates out/sub in the overlay only", async () => {
      ok(await c.call("fs_mkdir", ["workspace://out/sub"]));
      assert.equal((await overlay.stat("out/sub")).kind, "dir");
      await assert.rejects(() => Deno.stat(join(k.workspace, "out")), Deno.errors.NotFound);
    });

    await t.step("fs_write_file writes out/sub/a.txt in the overlay only", async () => {
      ok(await c.call("fs_write_file", ["out/sub/a.txt", "hello"]));
      assert.equal(dec.decode(await overlay.readFile("out/sub/a.txt")), "hello");
      await assert.rejects(() => Deno.stat(join(k.workspace, "out")), Deno.errors.NotFound);
    });

    await t.step("fs_read_file reads the overlay and the workspace", async () => {
      assert.equal(ok(await c.call("fs_read_file", ["out/sub/a.txt"])).text, "hello");
      assert.equal(ok(await c.call("fs_read_file", ["workspace://readme.md"])).text, "lower");
      assert.equal(
        ok(await c.call("fs_read_file", [join(k.workspace, "readme.md")])).text,
        "lower",
      );
    });

    await t.step("fs_exists", async () => {
      assert.equal(ok(await c.call("fs_exists", ["out/sub/a.txt"])).json(), true);
      assert.equal(ok(await c.call("fs_exists", ["out/nope"])).json(), false);
    });

    await t.step("fs_readdir", async () => {
      assert.deepEqual(ok(await c.call("fs_readdir", ["workspace://"])).json(), [
        { name: "out", kind: "dir" },
        { name: "readme.md", kind: "file" },
      ]);
    });

    await t.step("fs_stat", async () => {
      const stat = ok(await c.call("fs_stat", ["out/sub/a.txt"])).json<Record<string, unknown>>();
      assert.equal(stat.kind, "file");
      assert.equal(stat.size, 5);
      assert.equal(typeof stat.mtime, "number");
    });

    await t.step("fs_unlink removes a file, then the empty directory", async () => {
      ok(await c.call("fs_unlink", ["out/sub/a.txt"]));
      assert.equal(await overlay.exists("out/sub/a.txt"), false);
      ok(await c.call("fs_unlink", ["out/sub"]));
      assert.equal(await overlay.exists("out/sub"), false);
      status(await c.call("fs_unlink", ["out/sub"]), "NOT_FOUND");
    });

    await t.step(
      "each access passed the security pipeline with the absolute canonical path",
      async () => {
        const entries = await k.auditEntries();
        const write = entries.find((e) => e.action === "fs.write" && e.decision === "allowed");
        assert.equal(write?.resource, `fs:${join(k.workspace, "out/sub")}`);
        assert.ok(entries.some((e) => e.action === "fs.delete" && e.decision === "allowed"));
        assert.ok(entries.some((e) => e.action === "fs.read" && e.layer === "mode"));
        assert.ok(k.approvals.length >= 3, "guided mode asked the human for writes and deletes");
      },
    );
  });
});

Deno.test("fs_* without the capability: DENIED and audited with layer manifest", async () => {
  await withKernel(async (k) => {
    await Deno.writeTextFile(join(k.workspace, "a.txt"), "x");
    const reader = await k.load("reader", `fs_read = ["workspace://docs"]`);
    const none = await k.load("none");
    const calls: [AbiCapsule, string, string[], string, string][] = [
      [none, "fs_exists", ["a.txt"], "fs_read", "workspace://a.txt"],
      [none, "fs_read_file", ["a.txt"], "fs_read", "workspace://a.txt"],
      [reader, "fs_read_file", ["a.txt"], "fs_read", "workspace://a.txt"],
      [none, "fs_readdir", [""], "fs_read", "workspace://"],
      [none, "fs_stat", ["a.txt"], "fs_read", "workspace://a.txt"],
      [reader, "fs_write_file", ["docs/b.txt", "x"], "fs_write", "workspace://docs/b.txt"],
      [none, "fs_mkdir", ["out"], "fs_write", "workspace://out"],
      [reader, "fs_unlink", ["a.txt"], "fs_write", "workspace://a.txt"],
    ];
    for (const [capsule, fn, fields, capability, uri] of calls) {
      status(
        await capsule.call(fn, fields),
        "DENIED",
        new RegExp(
          `^Capsule "${capsule.name}" may not \\w+ "${uri}": no ${capability} entry covers it; ` +
            `declare it in Capsule\\.toml under \\[capabilities\\]: ${capability} = \\["${uri}"\\]$`,
        ),
      );
    }
    assert.deepEqual(
      await manifestDenials(k),
      calls.map(([, fn, , capability, uri]) => [`host.${fn}`, uri, capability]),
    );
    assert.equal(dec.decode(await Deno.readFile(join(k.workspace, "a.txt"))), "x");
    assert.equal(await (await k.overlay()).exists("docs/b.txt"), false);
  });
});

Deno.test("fs_* refuses hostile paths before touching the host filesystem", async (t) => {
  await withKernel(async (k) => {
    await Deno.mkdir(join(k.workspace, "docs"));
    await Deno.symlink("/etc", join(k.workspace, "docs", "etc"));
    await Deno.symlink("../..", join(k.workspace, "docs", "up"));
    const c = await k.load(
      "hostile",
      `fs_read = ["*", "home://", "global://"]\n${'fs_write = ["*"]'}`,
    );

    await t.step(".. is DENIED even when it would stay inside", async () => {
      status(await c.call("fs_read_file", ["../x"]), "DENIED", /"\.\.\/x"/);
      status(await c.call("fs_read_file", ["docs/../docs/x"]), "DENIED");
      status(await c.call("fs_write_file", ["workspace://../escape.txt", "x"]), "DENIED");
    });
    await t.step("an absolute path outside the workspace is DENIED", async () => {
      status(await c.call("fs_read_file", ["/etc/passwd"]), "DENIED");
      status(await c.call("fs_write_file", ["/tmp/astrid-escape.txt", "x"]), "DENIED");
    });
    await t.step("a symlink out of the workspace is DENIED", async () => {
      status(await c.call("fs_read_file", ["docs/etc/passwd"]), "DENIED", /leaves the root/);
      status(await c.call("fs_stat", ["docs/up"]), "DENIED");
      status(await c.call("fs_write_file", ["docs/etc/x", "x"]), "DENIED");
    });
    await t.step(
      "NUL, unknown schemes and a leading / after a scheme are INVALID_ARGUMENT",
      async () => {
        status(await c.call("fs_read_file", ["a\0b"]), "INVALID_ARGUMENT");
        status(await c.call("fs_read_file", ["file:///etc/passwd"]), "INVALID_ARGUMENT");
        status(await c.call("fs_read_file", ["workspace:///etc/passwd"]), "INVALID_ARGUMENT");
      },
    );
    await t.step("home:// never reaches the kernel's .config and .local", async () => {
      status(await c.call("fs_read_file", ["home://.config/config.toml"]), "DENIED");
      status(await c.call("fs_readdir", ["home://.local"]), "DENIED");
    });
    await t.step("global:// is read-only", async () => {
      status(await c.call("fs_write_file", ["global://x", "x"]), "DENIED");
    });
    await t.step("nothing was written outside the overlay", async () => {
      await assert.rejects(() => Deno.stat("/tmp/astrid-escape.txt"), Deno.errors.NotFound);
      await assert.rejects(() => Deno.stat(join(k.root, "escape.txt")), Deno.errors.NotFound);
    });
  });
});

Deno.test("fs_* passes the security pipeline after the gate: policy, human answer, mode", async (t) => {
  await t.step("a .env read is blocked by the policy although fs_read covers it", async () => {
    await withKernel(async (k) => {
      await Deno.writeTextFile(join(k.workspace, ".env"), "SECRET=1");
      const c = await k.load("reader", `fs_read = ["*"]`);
      status(await c.call("fs_read_file", [".env"]), "DENIED", /^Denied by policy: /);
      const entry = (await k.auditEntries()).find((e) => e.action === "fs.read");
      assert.equal(entry?.layer, "policy");
      assert.equal(entry?.decision, "denied");
    });
  });
  await t.step("a write the human denies is DENIED and not written", async () => {
    await withKernel(async (k) => {
      const c = await k.load("writer", WRITER);
      status(await c.call("fs_mkdir", ["out"]), "DENIED", /^Denied by approval: /);
      assert.equal(await (await k.overlay()).exists("out"), false);
    }, { approver: "deny" });
  });
  await t.step("autonomous mode writes without asking", async () => {
    await withKernel(async (k) => {
      const c = await k.load("writer", WRITER);
      ok(await c.call("fs_mkdir", ["out"]));
      assert.equal(k.approvals.length, 0);
    }, { mode: "autonomous", approver: "none" });
  });
});

Deno.test("fs_* checks size limits first", async () => {
  await withKernel(async (k) => {
    await Deno.writeTextFile(join(k.workspace, "big.txt"), "0123456789");
    const c = await k.load("writer", WRITER);
    ok(await c.call("fs_mkdir", ["out"]));
    status(
      await c.call("fs_write_file", ["out/a", "0123456789"]),
      "LIMIT_EXCEEDED",
      /^Field "data" is too large: 10 bytes \(limit 8\)$/,
    );
    status(
      await c.call("fs_read_file", ["big.txt"]),
      "LIMIT_EXCEEDED",
      /is too large to read: 10 bytes \(limit 8\)$/,
    );
  }, { limits: { fsMaxFileBytes: 8 } });
});

Deno.test("fs_* overlays follow the invocation's principal", async () => {
  await withKernel(async (k) => {
    const c = await k.load("writer", WRITER);
    ok(await c.call("fs_mkdir", ["out"], { principal: "alice" }));
    ok(await c.call("fs_write_file", ["out/a.txt", "alice"], { principal: "alice" }));
    assert.equal(ok(await c.call("fs_exists", ["out/a.txt"], { principal: "bob" })).json(), false);
    assert.equal(
      ok(await c.call("fs_read_file", ["out/a.txt"], { principal: "alice" })).text,
      "alice",
    );
    assert.equal(await (await k.overlay("bob")).exists("out"), false);
    assert.equal(await (await k.overlay("alice")).exists("out/a.txt"), true);
  });
});

Deno.test("kv_* with the capability: OK and the key is in the principal's namespace", async (t) => {
  await withKernel(async (k) => {
    const c = await k.load("notes", "kv = true");
    await t.step("kv_set and kv_get", async () => {
      ok(await c.call("kv_set", ["a/1", new Uint8Array([1, 2, 3])], { principal: "alice" }));
      ok(await c.call("kv_set", ["a/2", "two"], { principal: "alice" }));
      ok(await c.call("kv_set", ["b", ""], { principal: "alice" }));
      assert.deepEqual(
        ok(await c.call("kv_get", ["a/1"], { principal: "alice" })).body,
        new Uint8Array([1, 2, 3]),
      );
      assert.deepEqual(
        await k.store.get("alice:capsule:notes", "a/1"),
        new Uint8Array([1, 2, 3]),
      );
      assert.equal(ok(await c.call("kv_get", ["b"], { principal: "alice" })).text, "");
      status(
        await c.call("kv_get", ["zz"], { principal: "alice" }),
        "NOT_FOUND",
        /^Key "zz" does not exist$/,
      );
    });
    await t.step("kv_list_keys", async () => {
      assert.deepEqual(ok(await c.call("kv_list_keys", ["a/"], { principal: "alice" })).json(), [
        "a/1",
        "a/2",
      ]);
      assert.deepEqual(ok(await c.call("kv_list_keys", [""], { principal: "alice" })).json(), [
        "a/1",
        "a/2",
        "b",
      ]);
    });
    await t.step("kv_delete", async () => {
      assert.equal(ok(await c.call("kv_delete", ["b"], { principal: "alice" })).json(), true);
      assert.equal(ok(await c.call("kv_delete", ["b"], { principal: "alice" })).json(), false);
      assert.equal(await k.store.get("alice:capsule:notes", "b"), null);
    });
    await t.step("kv_clear_prefix", async () => {
      assert.equal(ok(await c.call("kv_clear_prefix", ["a/"], { principal: "alice" })).json(), 2);
      assert.deepEqual(await k.store.listKeys("alice:capsule:notes"), []);
    });
  });
});

Deno.test("kv_* without the capability: DENIED and audited with layer manifest", async () => {
  await withKernel(async (k) => {
    const c = await k.load("nokv");
    const calls: [string, (string | Uint8Array)[]][] = [
      ["kv_get", ["a"]],
      ["kv_set", ["a", "1"]],
      ["kv_delete", ["a"]],
      ["kv_list_keys", [""]],
      ["kv_clear_prefix", [""]],
    ];
    for (const [fn, fields] of calls) {
      status(
        await c.call(fn, fields, { principal: "alice" }),
        "DENIED",
        /^Capsule "nokv" may not use kv: \[capabilities\] does not declare it; declare it in Capsule\.toml under \[capabilities\]: kv = true$/,
      );
    }
    assert.deepEqual(
      await manifestDenials(k, "alice"),
      calls.map(([fn]) => [`host.${fn}`, "capsule:nokv", "kv"]),
    );
    assert.deepEqual(await k.store.listKeys("alice:capsule:nokv"), []);
  });
});

Deno.test("kv_* isolates principals and capsules; the principal comes from the invocation", async () => {
  await withKernel(async (k) => {
    const notes = await k.load("notes", "kv = true");
    const other = await k.load("other", "kv = true");
    ok(await notes.call("kv_set", ["k", "alice"], { principal: "alice" }));
    ok(await notes.call("kv_set", ["k", "bob"], { principal: "bob" }));
    assert.equal(ok(await notes.call("kv_get", ["k"], { principal: "alice" })).text, "alice");
    assert.equal(ok(await notes.call("kv_get", ["k"], { principal: "bob" })).text, "bob");
    status(await other.call("kv_get", ["k"], { principal: "alice" }), "NOT_FOUND");
    status(await notes.call("kv_get", ["k"], { principal: "carol" }), "NOT_FOUND");
    assert.equal(ok(await notes.call("kv_clear_prefix", [""], { principal: "bob" })).json(), 1);
    assert.equal(ok(await notes.call("kv_get", ["k"], { principal: "alice" })).text, "alice");
  });
});

Deno.test("kv_* checks key, value and key-count limits first", async () => {
  await withKernel(async (k) => {
    const c = await k.load("notes", "kv = true");
    status(await c.call("kv_set", ["12345678901", "v"]), "LIMIT_EXCEEDED", /\(limit 10\)$/);
    status(await c.call("kv_set", ["k", "0123456789"]), "LIMIT_EXCEEDED", /10 bytes \(limit 4\)$/);
    status(await c.call("kv_get", [""]), "INVALID_ARGUMENT", /^Field "key" is empty$/);
    status(await c.call("kv_get", ["a\0b"]), "INVALID_ARGUMENT", /contains a NUL$/);
    ok(await c.call("kv_set", ["a", "1"]));
    ok(await c.call("kv_set", ["b", "2"]));
    ok(await c.call("kv_set", ["a", "3"]));
    status(
      await c.call("kv_set", ["c", "3"]),
      "LIMIT_EXCEEDED",
      /^Cannot add key "c": the namespace holds 2 keys \(limit 2\)$/,
    );
    status(
      await c.call("kv_list_keys", [""]),
      "LIMIT_EXCEEDED",
      /matches too many keys: 2 \(limit 1\)/,
    );
    status(await c.callRaw("kv_get", new Uint8Array([9, 0, 0, 0, 1])), "INVALID_ARGUMENT");
  }, { limits: { kvMaxKeyBytes: 10, kvMaxValueBytes: 4, kvMaxKeys: 2, kvMaxListKeys: 1 } });
});

Deno.test("request_approval asks the human through the security pipeline", async (t) => {
  await t.step("allowed: the human's answer", async () => {
    await withKernel(async (k) => {
      const c = await k.load("mailer", "approval = true");
      const r = ok(await c.call("request_approval", ['{"action":"delete_mail"}']));
      assert.deepEqual(r.json(), {
        approved: true,
        answer: "allow_once",
        decider: "human",
        reason: r.json<{ reason: string }>().reason,
      });
      assert.equal(k.approvals.length, 1);
      assert.equal(k.approvals[0].resource, "tool:mailer/delete_mail");
      assert.ok(
        (await k.auditEntries()).some((e) =>
          e.action === "tool.execute" && e.decision === "allowed"
        ),
      );
    });
  });
  await t.step("a refusal is an answer: OK with approved false", async () => {
    await withKernel(async (k) => {
      const c = await k.load("mailer", "approval = true");
      const r = ok(await c.call("request_approval", ['{"action":"delete_mail"}']));
      assert.equal(r.json<{ approved: boolean }>().approved, false);
    }, { approver: "deny" });
  });
  await t.step("an unanswered request times out", async () => {
    await withKernel(async (k) => {
      const c = await k.load("mailer", "approval = true");
      const pending = c.call("request_approval", ['{"action":"delete_mail"}']);
      await until(() => k.timers.pending > 0);
      k.timers.advance(300_000);
      status(await pending, "TIMEOUT");
    }, { approver: "none" });
  });
  await t.step("the request's own timeout_ms ends the wait with TIMEOUT", async () => {
    const holder: { k?: AbiKernel } = {};
    await withKernel(async (k) => {
      holder.k = k;
      const c = await k.load("mailer", "approval = true");
      const pending = c.call("request_approval", ['{"action":"delete_mail","timeout_ms":1000}']);
      await until(() => k.timers.pending >= 2);
      k.timers.advance(1000);
      status(await pending, "TIMEOUT", /not answered in time \(limit 1000 ms\)$/);
      assert.equal(k.timers.pending, 0, "both deadlines are cleared");
    }, {
      approver: "none",
      extensions: () => [provide(HOST_TIMERS, holder.k!.timers)],
    });
  });
  await t.step("a malformed request is INVALID_ARGUMENT", async () => {
    await withKernel(async (k) => {
      const c = await k.load("mailer", "approval = true");
      status(await c.call("request_approval", ['{"action":"rm -rf"}']), "INVALID_ARGUMENT");
      status(
        await c.call("request_approval", ['{"action":"x","timeout_ms":0}']),
        "INVALID_ARGUMENT",
      );
      status(await c.call("request_approval", ["[]"]), "INVALID_ARGUMENT");
    });
  });
  await t.step("without the capability: DENIED and audited", async () => {
    await withKernel(async (k) => {
      const c = await k.load("mailer");
      status(
        await c.call("request_approval", ['{"action":"delete_mail"}']),
        "DENIED",
        /approval = true$/,
      );
      assert.deepEqual(await manifestDenials(k), [[
        "host.request_approval",
        "capsule:mailer",
        "approval",
      ]]);
      assert.equal(k.approvals.length, 0);
    });
  });
});

Deno.test("check_capsule_capability and enumerate_capabilities introspect the caller's manifest", async () => {
  await withKernel(async (k) => {
    const c = await k.load(
      "intro",
      `${WRITER}\nkv = true\nidentity = "link"\nhttp = true\nnet = ["api.x.com:443"]`,
      `[publish]\n"a.v1.out" = { schema = {} }\n`,
    );
    const check = async (request: unknown) =>
      ok(await c.call("check_capsule_capability", [JSON.stringify(request)])).json<
        { allowed: boolean; reason?: string }
      >();
    assert.deepEqual(await check({ capability: "kv" }), { allowed: true });
    assert.deepEqual(await check({ capability: "fs_write", target: "out/x" }), { allowed: true });
    assert.equal((await check({ capability: "fs_write", target: "src/x" })).allowed, false);
    assert.equal((await check({ capability: "fs_read", target: "../x" })).allowed, false);
    assert.deepEqual(await check({ capability: "identity", level: "link" }), { allowed: true });
    assert.equal((await check({ capability: "identity", level: "admin" })).allowed, false);
    assert.deepEqual(await check({ capability: "net", target: "api.x.com:443" }), {
      allowed: true,
    });
    assert.deepEqual(await check({ capability: "publish", target: "a.v1.out" }), { allowed: true });
    assert.match(
      (await check({ capability: "approval" })).reason!,
      /^Capsule "intro" may not use approval/,
    );
    status(
      await c.call("check_capsule_capability", ['{"capability":"root"}']),
      "INVALID_ARGUMENT",
    );
    assert.deepEqual(ok(await c.call("enumerate_capabilities")).json(), {
      capsule: "intro",
      fs_read: ["workspace://"],
      fs_write: ["workspace://out"],
      net: ["api.x.com:443"],
      net_bind: [],
      host_process: [],
      allow_persistent: false,
      kv: true,
      identity: "link",
      http: true,
      uplink: false,
      approval: false,
      allow_prompt_injection: false,
      publish: ["a.v1.out"],
      subscribe: [],
    });
    assert.deepEqual(await manifestDenials(k), [], "introspection is not a decision");
  });
});

Deno.test("clock_ms, random_bytes and log are answered in the worker and need no capability", async () => {
  await withKernel(async (k) => {
    const c = await k.load("plain");
    const clock = ok(await c.call("clock_ms"));
    const ms = Number(new DataView(clock.body.buffer).getBigUint64(0, true));
    assert.ok(Math.abs(ms - Date.now()) < 60_000, "wall clock, within a minute");
    const a = ok(await c.call("random_bytes", [encodeU32(32)])).body;
    const b = ok(await c.call("random_bytes", [encodeU32(32)])).body;
    assert.equal(a.length, 32);
    assert.notDeepEqual(a, b);
    status(await c.call("random_bytes", [encodeU32(2 * 1024 * 1024)]), "LIMIT_EXCEEDED");
    ok(
      await c.call("log", ["info", "hello from the guest"], {
        principal: "alice",
        requestId: "r9",
      }),
    );
    ok(await c.call("log", ["error", "it broke"], { principal: "alice" }));
    await k.logs.flush();
    const file = await Deno.readTextFile(k.logs.path("alice", "plain"));
    assert.match(file, /^\S+Z INFO \[r9\] hello from the guest\n\S+Z ERROR \[-\] it broke\n$/);
    assert.deepEqual(await manifestDenials(k, "alice"), []);
  });
});

Deno.test("every landed row answers through the real engine; pending ones are UNSUPPORTED", async () => {
  await withKernel(async (k) => {
    const c = await k.load("probe");
    for (const row of HOST_TABLE.filter((r) => !r.inWorker)) {
      const reply = await c.callRaw(row.name, new Uint8Array([1]));
      // One stray byte is a malformed request for every function.
      assert.equal(reply.status, HostStatus.INVALID_ARGUMENT, `${row.name}: ${reply.text}`);
    }
    for (const name of PENDING_FUNCTIONS) {
      status(await c.call(name), "UNSUPPORTED", /is not supported by this kernel$/);
    }
  });
});
