import assert from "node:assert/strict";
import { parseManifest } from "../kernel/capsule/mod.ts";
import { HostAbiError } from "./errors.ts";
import { compileFsPattern, ManifestSecurityGate } from "./gate.ts";
import type { GateRequirement } from "./host_function.ts";

function gate(capabilities: string, extra = ""): ManifestSecurityGate {
  return ManifestSecurityGate.for(parseManifest(
    `[package]\nname = "cap"\nversion = "0.1.0"\n\n[capabilities]\n${capabilities}\n\n${extra}\n`,
    { file: "cap/Capsule.toml" },
  ));
}

const allowed = (g: ManifestSecurityGate, req: GateRequirement) => g.check(req) === null;

Deno.test("ManifestSecurityGate denies everything an empty manifest does not declare", () => {
  const g = gate("");
  const reqs: GateRequirement[] = [
    { capability: "fs_read", target: "workspace://a" },
    { capability: "fs_write", target: "workspace://a" },
    { capability: "net", target: "a.com:443" },
    { capability: "net_bind", target: "unix:x" },
    { capability: "host_process", target: "git" },
    { capability: "publish", target: "a.b" },
    { capability: "subscribe", target: "a.b" },
    { capability: "identity", level: "resolve" },
    { capability: "kv" },
    { capability: "http" },
    { capability: "approval" },
    { capability: "uplink" },
    { capability: "allow_persistent" },
    { capability: "allow_prompt_injection" },
  ];
  for (const req of reqs) assert.equal(g.check(req)?.capability, req.capability);
});

Deno.test("ManifestSecurityGate fs patterns: a path and everything under it, per scheme", async (t) => {
  const g = gate(`fs_read = ["workspace://docs", "home://notes/*.md", "global://shared/**/x"]`);
  await t.step("the directory itself and its subtree", () => {
    assert.ok(allowed(g, { capability: "fs_read", target: "workspace://docs" }));
    assert.ok(allowed(g, { capability: "fs_read", target: "workspace://docs/a/b.md" }));
    assert.ok(!allowed(g, { capability: "fs_read", target: "workspace://docsx" }));
    assert.ok(!allowed(g, { capability: "fs_read", target: "workspace://" }));
  });
  await t.step("the scheme must match", () => {
    assert.ok(!allowed(g, { capability: "fs_read", target: "home://docs/a" }));
    assert.ok(!allowed(g, { capability: "fs_read", target: "global://docs/a" }));
  });
  await t.step("* does not cross /, ** does", () => {
    assert.ok(allowed(g, { capability: "fs_read", target: "home://notes/a.md" }));
    assert.ok(!allowed(g, { capability: "fs_read", target: "home://notes/sub/a.txt" }));
    assert.ok(allowed(g, { capability: "fs_read", target: "global://shared/x" }));
    assert.ok(allowed(g, { capability: "fs_read", target: "global://shared/a/b/x/y" }));
  });
  await t.step("fs_read does not imply fs_write", () => {
    assert.ok(!allowed(g, { capability: "fs_write", target: "workspace://docs/a" }));
  });
});

Deno.test('ManifestSecurityGate "*" means the workspace root, never the whole disk', () => {
  const g = gate(`fs_read = ["*"]`);
  assert.ok(allowed(g, { capability: "fs_read", target: "workspace://" }));
  assert.ok(allowed(g, { capability: "fs_read", target: "workspace://a/b" }));
  assert.ok(!allowed(g, { capability: "fs_read", target: "home://a" }));
  assert.ok(!allowed(g, { capability: "fs_read", target: "global://etc/passwd" }));
  assert.ok(!allowed(g, { capability: "fs_read", target: "/etc/passwd" }));
  assert.deepEqual(g.fsRead.map((p) => [p.scheme, p.path, p.globs]), [["workspace", "", null]]);
});

Deno.test("ManifestSecurityGate denies .. and non-canonical targets before any prefix check", () => {
  const g = gate(`fs_read = ["*", "workspace://docs"]`);
  for (
    const target of [
      "workspace://docs/../secret",
      "workspace://../x",
      "workspace://docs/./a",
      "workspace://docs//a",
      "workspace://docs/",
      "docs/a",
      "workspace://a\0b",
    ]
  ) {
    assert.ok(!allowed(g, { capability: "fs_read", target }), target);
  }
});

Deno.test("compileFsPattern() canonicalizes at load and refuses .. and unknown schemes", () => {
  assert.deepEqual(
    compileFsPattern("workspace://./src//lib/", "cap", "fs_read").path,
    "src/lib",
  );
  assert.equal(compileFsPattern("home://", "cap", "fs_read").globs, null);
  assert.throws(
    () => compileFsPattern("workspace://a/../b", "cap", "fs_write"),
    (err: unknown) =>
      err instanceof HostAbiError && err.code === "HOST_ABI_BAD_CAPABILITY" &&
      /^Capsule "cap": capabilities\.fs_write entry "workspace:\/\/a\/\.\.\/b" contains "\.\."$/
        .test(err.message),
  );
  assert.throws(() => compileFsPattern("/etc", "cap", "fs_read"), /is not a VFS path/);
  assert.throws(() => compileFsPattern("file://etc", "cap", "fs_read"), /is not a VFS path/);
  // Glob syntax other than * is literal.
  const p = compileFsPattern("workspace://a[1]{x,y}", "cap", "fs_read");
  assert.ok(p.globs!.some((g) => g.regex.test("a[1]{x,y}")));
  assert.ok(!p.globs!.some((g) => g.regex.test("a1x")));
});

Deno.test("ManifestSecurityGate net: host:port, *.suffix for subdomains, * ports", () => {
  const g = gate(
    `http = true\nnet = ["api.x.com:443", "*.wiki.org:443", "localhost:*", "[::1]:8080"]`,
  );
  const net = (target: string) => allowed(g, { capability: "net", target });
  assert.ok(net("api.x.com:443"));
  assert.ok(net("API.X.COM:443"));
  assert.ok(!net("api.x.com:80"));
  assert.ok(net("en.wiki.org:443"));
  assert.ok(!net("wiki.org:443"));
  assert.ok(!net("evilwiki.org:443"));
  assert.ok(net("localhost:1"));
  assert.ok(net("[::1]:8080"));
  assert.ok(!net("api.x.com"));
  assert.ok(!net("api.x.com:*"));
});

Deno.test("ManifestSecurityGate net_bind, host_process, identity levels and flags", () => {
  const g = gate(
    `net_bind = ["unix:bridge-*"]\nhost_process = ["git"]\nallow_persistent = true\n` +
      `identity = "link"\nkv = true\napproval = true`,
  );
  assert.ok(allowed(g, { capability: "net_bind", target: "unix:bridge-1" }));
  assert.ok(!allowed(g, { capability: "net_bind", target: "unix:other" }));
  assert.ok(allowed(g, { capability: "host_process", target: "git" }));
  assert.ok(!allowed(g, { capability: "host_process", target: "gitk" }));
  assert.ok(allowed(g, { capability: "identity", level: "resolve" }));
  assert.ok(allowed(g, { capability: "identity", level: "link" }));
  assert.ok(!allowed(g, { capability: "identity", level: "admin" }));
  assert.ok(allowed(g, { capability: "kv" }));
  assert.ok(allowed(g, { capability: "approval" }));
  assert.ok(allowed(g, { capability: "allow_persistent" }));
  assert.ok(!allowed(g, { capability: "http" }));
});

Deno.test("ManifestSecurityGate publish/subscribe follow the manifest's bus ACL", () => {
  const g = gate(
    "",
    `[publish]\n"agent.v1.response" = { schema = {} }\n"tool.v1.result.*" = { schema = {} }\n\n` +
      `[subscribe]\n"user.v1.*" = { schema = {} }\n`,
  );
  assert.ok(allowed(g, { capability: "publish", target: "agent.v1.response" }));
  assert.ok(allowed(g, { capability: "publish", target: "tool.v1.result.x" }));
  assert.ok(!allowed(g, { capability: "publish", target: "agent.v1.other" }));
  assert.ok(allowed(g, { capability: "subscribe", target: "user.v1.prompt" }));
  assert.ok(allowed(g, { capability: "subscribe", target: "user.v1.*" }));
  assert.ok(!allowed(g, { capability: "subscribe", target: "user.*" }));
  assert.ok(!allowed(g, { capability: "subscribe", target: "not a pattern" }));
});

Deno.test("ManifestSecurityGate denials name the capability and how to declare it", () => {
  const g = gate("");
  assert.equal(
    g.check({ capability: "fs_write", target: "workspace://out/a.txt" })?.message,
    'Capsule "cap" may not write "workspace://out/a.txt": no fs_write entry covers it; ' +
      'declare it in Capsule.toml under [capabilities]: fs_write = ["workspace://out/a.txt"]',
  );
  assert.equal(
    g.check({ capability: "kv" })?.message,
    'Capsule "cap" may not use kv: [capabilities] does not declare it; ' +
      "declare it in Capsule.toml under [capabilities]: kv = true",
  );
  assert.equal(
    g.check({ capability: "identity", level: "admin" })?.message,
    'Capsule "cap" may not perform identity operations of level "admin": it declares none; ' +
      'declare it in Capsule.toml under [capabilities]: identity = "admin"',
  );
  assert.match(
    g.check({ capability: "net", target: "a.com:443" })!.message,
    /net = \["a\.com:443"\] and http = true$/,
  );
});

Deno.test("ManifestSecurityGate.for() compiles once per manifest", () => {
  const m = parseManifest(`[package]\nname = "x"\nversion = "0.1.0"\n`, { file: "x/Capsule.toml" });
  assert.equal(ManifestSecurityGate.for(m), ManifestSecurityGate.for(m));
  assert.equal(ManifestSecurityGate.for(m).capsule, "x");
});
