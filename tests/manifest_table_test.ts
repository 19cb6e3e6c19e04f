/**
 * Proves the manifest parser accepts what docs/capsule_manifest.md allows and rejects the rest
 * with messages naming file:line, the field and a fix: one row per case, covering every table.
 */
import assert from "node:assert/strict";
import {
  CapsuleCode,
  type CapsuleManifest,
  ManifestError,
  parseManifest,
} from "../kernel/capsule/mod.ts";

const FILE = "fixtures/Capsule.toml";
/** Lines 1-3. */
const PKG = `[package]\nname = "t"\nversion = "0.1.0"\n`;
/** Lines 1-4: a package with a module. */
const WASM = `${PKG}[wasm]\n`;

interface Row {
  /** What the row shows. */
  readonly name: string;
  /** The manifest text. */
  readonly toml: string;
  /** Fragments the error message must contain; absent for a valid manifest. */
  readonly errors?: readonly string[];
  /** How many problems, when it matters. */
  readonly count?: number;
  /** Checks the parsed manifest of a valid row. */
  readonly check?: (m: CapsuleManifest) => void;
}

const VALID: Row[] = [
  { name: "minimal [package]", toml: PKG },
  {
    name: "every [package] field",
    toml: `[package]
name = "web-search"
version = "1.2.3-beta.1+b5"
description = "Searches the web"
authors = ["Ada <ada@example.com>"]
license = "MIT OR Apache-2.0"
repository = "https://example.com/web-search"
homepage = "https://example.com"
keywords = ["search"]
astrid_version = ">=0.1, <2"
`,
  },
  {
    name: "[wasm] with file and hash",
    toml: `${PKG}[wasm]\nfile = "build/t.wasm"\nhash = "blake3:${"ab".repeat(32)}"\n`,
  },
  {
    name: "every [capabilities] field",
    toml: `${PKG}[capabilities]
fs_read = ["workspace://src", "home://notes/**", "global://etc/hosts", "*"]
fs_write = ["workspace://out"]
net = ["api.example.com:443", "*.example.org:443", "localhost:*", "[::1]:8080", "10.0.0.1:80"]
net_bind = ["unix:t.sock", "unix:*"]
host_process = ["git", "node"]
allow_persistent = true
kv = true
identity = ["resolve", "admin"]
http = true
uplink = false
approval = true
allow_prompt_injection = false
`,
  },
  {
    name: "[imports]/[exports] flat, nested and typed",
    toml: `${PKG}[imports]
"astrid:session" = { version = "^1.0", optional = true }
"topic:llm.v1.stream.*" = "*"
[imports.astrid]
llm = "~1.2"
[exports]
"llm:anthropic" = "1.0.0"
[exports.astrid]
context = { version = "2.0.0" }
`,
  },
  {
    name: "[publish]/[subscribe] short and long forms, schema instead of wit",
    toml: `${WASM}[publish]
"tool.v1.execute.*.result" = "@unicity-astrid/wit/types/tool-call-result"
"llm.v1.request.generate.*" = { wit = "GenerateRequest", fanout = true, description = "Per provider" }
[subscribe]
"user.v1.prompt" = { wit = "opaque", handler = "on_prompt", priority = 10 }
"astrid.v1.capsules_loaded" = { schema = { type = "object" } }
`,
  },
  {
    name: "[subscribe] guard = false and guard = true on handlers; absent stays absent",
    toml: `${WASM}[subscribe]
"llm.v1.request.generate.*" = { wit = "opaque", handler = "generate", priority = 50, guard = false }
"audit.v1.note" = { wit = "opaque", handler = "note", priority = 200, guard = true }
"user.v1.prompt" = { wit = "opaque", handler = "on_prompt", priority = 10 }
`,
    check: (m) => {
      assert.deepEqual(
        m.subscribe.map((s) => [s.topic, s.priority, s.guard]),
        [
          ["llm.v1.request.generate.*", 50, false],
          ["audit.v1.note", 200, true],
          ["user.v1.prompt", 10, undefined],
        ],
      );
      assert.ok(!("guard" in m.subscribe[2]));
    },
  },
  {
    name: "[subscribe] detach = true: a handler with no priority and no guard; false binds one",
    toml: `${WASM}[subscribe]
"llm.v1.request.generate.openai" = { wit = "opaque", handler = "generate", detach = true }
"cache.v1.fill" = { wit = "opaque", handler = "fill", detach = false, priority = 20 }
"user.v1.prompt" = { wit = "opaque", handler = "on_prompt" }
`,
    check: (m) => {
      assert.deepEqual(
        m.subscribe.map((s) => [s.topic, s.handler, s.priority, s.detach]),
        [
          ["llm.v1.request.generate.openai", "generate", undefined, true],
          ["cache.v1.fill", "fill", 20, undefined],
          ["user.v1.prompt", "on_prompt", 100, undefined],
        ],
      );
      assert.ok(!("priority" in m.subscribe[0]) && !("guard" in m.subscribe[0]));
      assert.ok(!("detach" in m.subscribe[1]) && !("detach" in m.subscribe[2]));
    },
  },
  {
    name: "[[tool]] with a schema table and a custom handler",
    toml: `${WASM}[[tool]]
name = "read_file"
description = "Reads a file"
handler = "read_file_impl"
[tool.input_schema]
type = "object"
required = ["path"]
[tool.input_schema.properties.path]
type = "string"
`,
  },
  {
    name: "[[command]] and [[skill]] and [static]",
    toml: `${WASM}[static]
context_files = ["static/context.md"]
[[command]]
name = "deploy"
description = "Deploys"
handler = "command_deploy"
[[command]]
name = "review"
description = "Reviews"
file = "static/commands/review.md"
[[skill]]
name = "style"
description = "House style"
file = "static/skills/style.md"
`,
  },
  {
    name: "[env] of every type",
    toml: `${PKG}[env]
API_KEY = { type = "secret", required = true, description = "Your key" }
REGION = { type = "select", options = ["eu", "us"], default = "eu" }
TAGS = { type = "array", default = ["a", "b"] }
NAME = { description = "Defaults to text", default = "Agent" }
`,
  },
  {
    name: "[[mcp_server]] with its command in host_process",
    toml: `${PKG}[capabilities]
host_process = ["npx"]
[[mcp_server]]
name = "fs"
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem"]
env = { LOG = "debug" }
hash = "blake3:${"0".repeat(64)}"
description = "Files"
`,
  },
  {
    name: "an uplink capsule with [[uplink]]",
    toml: `${WASM}[capabilities]
uplink = true
[[uplink]]
name = "telegram"
platform = "telegram"
profile = "human"
`,
  },
  {
    name: "[[cron]] with a macro and a payload",
    toml: `${PKG}[publish]
"t.v1.tick" = { wit = "opaque" }
[[cron]]
name = "hourly"
schedule = "@hourly"
topic = "t.v1.tick"
payload = { reason = "cron", n = 1, at = 1979-05-27T07:32:00Z }
[[cron]]
name = "weekdays"
schedule = "*/15 9-17 * jan-dec mon-fri"
topic = "t.v1.tick"
`,
  },
];

const INVALID: Row[] = [
  {
    name: "no [package]",
    toml: `[wasm]\n`,
    errors: [`${FILE}:1: package: missing [package]`, `add [package] with name = "my-capsule"`],
  },
  {
    name: "package.name with capitals and a space",
    toml: `[package]\nname = "Web Search"\nversion = "0.1.0"\n`,
    errors: [`${FILE}:2: package.name: invalid capsule name "Web Search"`, `e.g. "web-search"`],
  },
  {
    name: "package.version not semver",
    toml: `[package]\nname = "t"\nversion = "1.0"\n`,
    errors: [
      `${FILE}:3: package.version: "1.0" is not a semantic version`,
      `use MAJOR.MINOR.PATCH, e.g. "1.0.0"`,
    ],
  },
  {
    name: "package.astrid_version not a range",
    toml: `${PKG}astrid_version = "newest"\n`,
    errors: [`${FILE}:4: package.astrid_version: invalid version range "newest"`],
  },
  {
    name: "an unknown [package] key with a near miss",
    toml: `${PKG}licence = "MIT"\n`,
    errors: [
      `${FILE}:4: package.licence: unknown key "licence" in [package]; did you mean "license"?`,
    ],
  },
  {
    name: "a reference-style table gets its replacement",
    toml: `${PKG}[[component]]\nid = "t"\nfile = "t.wasm"\n`,
    errors: [
      `${FILE}:4: component: unknown key "component" at the top level; declare the module as [wasm]`,
    ],
  },
  {
    name: "top-level wasm string",
    toml: `wasm = "t.wasm"\n${PKG}`,
    errors: [
      `${FILE}:1: wasm: expected a [wasm] table, got "t.wasm"; write [wasm] and on the next line file = "t.wasm"`,
    ],
  },
  {
    name: "[wasm] hash without algorithm",
    toml: `${PKG}[wasm]\nhash = "${"ab".repeat(32)}"\n`,
    errors: [`${FILE}:5: wasm.hash:`, `lacks its algorithm; write "blake3:${"ab".repeat(32)}"`],
  },
  {
    name: "[wasm] file outside the capsule",
    toml: `${PKG}[wasm]\nfile = "../other/t.wasm"\n`,
    errors: [
      `${FILE}:5: wasm.file: "../other/t.wasm" leaves the capsule directory; remove the .. segments`,
    ],
  },
  {
    name: "fs_read with a host path and a traversal",
    toml: `${PKG}[capabilities]\nfs_read = ["/etc/ssh", "workspace://a/../../b"]\n`,
    errors: [
      `${FILE}:5: capabilities.fs_read[0]: "/etc/ssh" is not a VFS path; use a VFS scheme instead of a host path, e.g. "global://etc/ssh"`,
      `capabilities.fs_read[1]: "workspace://a/../../b" contains ".."`,
    ],
  },
  {
    name: "fs_write with an unknown scheme",
    toml: `${PKG}[capabilities]\nfs_write = ["cwd://data"]\n`,
    errors: [`${FILE}:5: capabilities.fs_write[0]: "cwd://data" uses the unknown scheme "cwd://"`],
  },
  {
    name: "net without a port, with a URL and a mid-host wildcard",
    toml:
      `${PKG}[capabilities]\nhttp = true\nnet = ["api.example.com", "https://x.io/v1", "api.*.com:443"]\n`,
    errors: [
      `${FILE}:6: capabilities.net[0]: "api.example.com" has no port; add one, e.g. "api.example.com:443"`,
      `capabilities.net[1]: "https://x.io/v1" is a URL; write host:port, e.g. "x.io:443"`,
      `capabilities.net[2]: "api.*.com:443" has an invalid host "api.*.com"; "*" may only be a whole leading label`,
    ],
  },
  {
    name: "net without http, and http without net",
    toml: `${PKG}[capabilities]\nnet = ["a.io:443"]\n`,
    errors: [
      `${FILE}:5: capabilities.net: net lists hosts but http is not enabled; add http = true`,
    ],
  },
  {
    name: "http without net",
    toml: `${PKG}[capabilities]\nhttp = true\n`,
    errors: [
      `${FILE}:5: capabilities.http: http = true allows no host: net is empty; list the hosts`,
    ],
  },
  {
    name: "identity level unknown, kv not a boolean, a list given as a string",
    toml: `${PKG}[capabilities]\nidentity = "root"\nkv = "yes"\nhost_process = "git"\n`,
    errors: [
      `${FILE}:5: capabilities.identity: expected one of "resolve", "link", "admin", got "root"`,
      `${FILE}:6: capabilities.kv: expected true or false, got "yes"`,
      `${FILE}:7: capabilities.host_process: expected a list of strings, got "git"; write host_process = ["git"]`,
    ],
    count: 3,
  },
  {
    name: "host_process with a path; allow_persistent without programs",
    toml: `${PKG}[capabilities]\nhost_process = ["/usr/bin/git"]\nallow_persistent = true\n`,
    errors: [
      `${FILE}:5: capabilities.host_process[0]: "/usr/bin/git" is a path; give the program name ("git")`,
      `${FILE}:6: capabilities.allow_persistent: allow_persistent has no effect without host_process`,
    ],
  },
  {
    name: "an import with a malformed range; an export with a range",
    toml: `${PKG}[imports]\n"astrid:llm" = "^^1"\n[exports]\n"astrid:ctx" = "^1.0"\n`,
    errors: [
      `${FILE}:5: imports."astrid:llm": invalid version range "^^1" for "astrid:llm"`,
      `${FILE}:7: exports."astrid:ctx": "^1.0" is not an exact version for "astrid:ctx"; an export provides one version`,
    ],
  },
  {
    name: "an import key that is neither ns:name nor a namespace table",
    toml: `${PKG}[imports]\nllm = "^1.0"\n`,
    errors: [
      `${FILE}:5: imports.llm: "llm" is neither "namespace:interface" nor a namespace table; write "llm:<interface>" = "^1.0"`,
    ],
  },
  {
    name: "bad namespace, bad typed body, unknown import field",
    toml:
      `${PKG}[imports]\n"Astrid:llm" = "^1"\n"tool:a.b" = "*"\n"astrid:kv" = { version = "^1", optinal = true }\n`,
    errors: [
      `${FILE}:5: imports."Astrid:llm": invalid namespace "Astrid" in "Astrid:llm"`,
      `${FILE}:6: imports."tool:a.b": invalid tool name "a.b" in "tool:a.b"`,
      `${FILE}:7: imports."astrid:kv".optinal: unknown key "optinal" in a [imports] entry; did you mean "optional"?`,
    ],
  },
  {
    name: "an uplink capsule may not import",
    toml: `${PKG}[capabilities]\nuplink = true\n[imports]\n"astrid:llm" = "^1"\n`,
    errors: [
      `${FILE}:6: imports: an uplink capsule loads before every other capsule, so it cannot import`,
    ],
  },
  {
    name: "[publish] entry with a handler; a bad topic",
    toml: `${PKG}[publish]\n"t.v1.out" = { wit = "x", handler = "h" }\n"t.v1.*bad" = "x"\n`,
    errors: [
      `${FILE}:5: publish."t.v1.out".handler: unknown key "handler" in a [publish] entry; remove it; known keys: wit, schema, fanout, description`,
      `${FILE}:6: publish."t.v1.*bad": invalid topic pattern "t.v1.*bad": "*" must be a whole segment`,
    ],
  },
  {
    name: "[subscribe] priority without handler",
    toml: `${WASM}[subscribe]\n"user.v1.prompt" = { wit = "opaque", priority = 5 }\n`,
    errors: [
      `${FILE}:6: subscribe."user.v1.prompt".priority: priority orders interceptors, but "user.v1.prompt" has no handler; add handler = "<export>" to bind an interceptor, or remove priority`,
    ],
  },
  {
    name: "[subscribe] guard without handler",
    toml: `${WASM}[subscribe]\n"user.v1.prompt" = { wit = "opaque", guard = false }\n`,
    errors: [
      `${FILE}:6: subscribe."user.v1.prompt".guard: guard decides whether a failing interceptor denies the message, but "user.v1.prompt" has no handler; add handler = "<export>" to bind an interceptor, or remove guard (an ACL-only entry has none)`,
    ],
    count: 1,
  },
  {
    name: "[subscribe] guard that is not a boolean",
    toml:
      `${WASM}[subscribe]\n"a.b" = { wit = "x", handler = "on_ab", guard = "no" }\n"c.d" = { wit = "x", guard = 0 }\n`,
    errors: [
      `${FILE}:6: subscribe."a.b".guard: expected true or false, got "no"`,
      `${FILE}:7: subscribe."c.d".guard: expected true or false, got the integer 0`,
    ],
    count: 2,
  },
  {
    name: "[subscribe] detach without handler",
    toml: `${WASM}[subscribe]\n"user.v1.prompt" = { wit = "opaque", detach = true }\n`,
    errors: [
      `${FILE}:6: subscribe."user.v1.prompt".detach: detach runs a handler apart from the publisher, but "user.v1.prompt" has no handler; add handler = "<export>", or remove detach (an ACL-only entry has none)`,
    ],
    count: 1,
  },
  {
    name: "[subscribe] detach with priority or guard",
    toml:
      `${WASM}[subscribe]\n"a.b" = { wit = "x", handler = "on_ab", detach = true, priority = 50 }\n"c.d" = { wit = "x", handler = "on_cd", detach = true, guard = false }\n`,
    errors: [
      `${FILE}:6: subscribe."a.b".detach: a detached handler runs after delivery, so it neither orders nor guards the message, but "a.b" also sets priority; remove priority, or remove detach to bind an interceptor the publisher waits for`,
      `${FILE}:7: subscribe."c.d".detach: a detached handler runs after delivery, so it neither orders nor guards the message, but "c.d" also sets guard; remove guard, or remove detach to bind an interceptor the publisher waits for`,
    ],
    count: 2,
  },
  {
    name: "[subscribe] detach that is not a boolean",
    toml: `${WASM}[subscribe]\n"a.b" = { wit = "x", handler = "on_ab", detach = "yes" }\n`,
    errors: [`${FILE}:6: subscribe."a.b".detach: expected true or false, got "yes"`],
    count: 1,
  },
  {
    name: "[subscribe] without a payload type, with a bad priority and a bad handler",
    toml:
      `${WASM}[subscribe]\n"a.b" = { }\n"c.d" = { wit = "x", handler = "on-event", priority = -1 }\n`,
    errors: [
      `${FILE}:6: subscribe."a.b": "a.b" declares no payload type; add wit = "<type>" (or wit = "opaque" for untyped bytes), or a schema table`,
      `${FILE}:7: subscribe."c.d".handler: invalid export name "on-event"`,
      `e.g. "on_event"`,
      `${FILE}:7: subscribe."c.d".priority: expected a whole number from 0 to 4294967295, got the integer -1`,
    ],
  },
  {
    name: "a [subscribe] handler with no [wasm]",
    toml: `${PKG}[subscribe]\n"a.b" = { wit = "x", handler = "on_ab" }\n`,
    errors: [
      `${FILE}:5: subscribe."a.b".handler: handler "on_ab" needs a WebAssembly module; add a [wasm] table`,
    ],
  },
  {
    name: "[[tool]] with a bad name, an empty description and a non-object schema",
    toml:
      `${WASM}[[tool]]\nname = "read file"\ndescription = ""\ninput_schema = { type = "string" }\n`,
    errors: [
      `${FILE}:6: tool[0].name: invalid tool name "read file"; use 1 to 64 characters of a-z, A-Z, 0-9, "_" and "-"`,
      `${FILE}:7: tool[0].description: description is empty`,
      `${FILE}:8: tool[0].input_schema.type: tool arguments are a JSON object, got type = "string"; write type = "object"`,
    ],
  },
  {
    name: "[tool] written as a table, not an array of tables",
    toml: `${WASM}[tool]\nname = "x"\n`,
    errors: [
      `${FILE}:5: tool: expected [[tool]] entries, got a table; write each entry under its own [[tool]] header`,
    ],
  },
  {
    name: "a [[tool]] also bound by [subscribe]",
    toml:
      `${WASM}[subscribe]\n"tool.v1.execute.x" = { wit = "y", handler = "tool_x" }\n[[tool]]\nname = "x"\ndescription = "X"\n`,
    errors: [
      `${FILE}:8: tool[0].name: tool "x" is bound twice: by [[tool]] and by [subscribe] "tool.v1.execute.x"`,
    ],
  },
  {
    name: "[[command]] with both handler and file; a slash in the name",
    toml:
      `${WASM}[[command]]\nname = "/deploy"\ndescription = "D"\nhandler = "command_deploy"\nfile = "static/deploy.md"\n`,
    errors: [
      `${FILE}:6: command[0].name: command name "/deploy" starts with "/"; write name = "deploy"`,
      `${FILE}:5: command[0]: a command has both handler and file`,
    ],
  },
  {
    name: "[[skill]] file outside static/",
    toml: `${PKG}[[skill]]\nname = "style"\ndescription = "S"\nfile = "skills/style.md"\n`,
    errors: [
      `${FILE}:7: skill[0].file: "skills/style.md" is outside static/; move it under static/`,
    ],
  },
  {
    name: "[env] mistakes",
    toml: `${PKG}[env]
KEY = { type = "secret", default = "sk-123" }
MODE = { type = "select" }
LEVEL = { type = "slect", options = ["a"] }
COLOR = { type = "select", options = ["red"], default = "blue" }
PORT = { default = 8080 }
REGION = { type = "text", enum_values = ["a"] }
"bad-name" = { type = "text" }
`,
    errors: [
      `${FILE}:5: env.KEY.default: a secret cannot have a default`,
      `${FILE}:6: env.MODE: a select field has no options; add options = ["a", "b"]`,
      `${FILE}:7: env.LEVEL.type: unknown type "slect"; did you mean "select"?`,
      `${FILE}:8: env.COLOR.default: "blue" is not one of the options; use one of "red"`,
      `${FILE}:9: env.PORT.default: expected a string, got the integer 8080; write default = "8080"`,
      `${FILE}:10: env.REGION.enum_values: unknown key "enum_values" in a [env] entry; write options`,
      `${FILE}:11: env.bad-name: invalid variable name "bad-name"`,
    ],
    count: 7,
  },
  {
    name: "[[mcp_server]] command not allowed by host_process",
    toml: `${PKG}[[mcp_server]]\nname = "fs"\ncommand = "npx"\nid = "fs"\n`,
    errors: [
      `${FILE}:6: mcp_server[0].command: command "npx" is not in capabilities.host_process; add host_process = ["npx"] to [capabilities]`,
      `${FILE}:7: mcp_server[0].id: unknown key "id" in [[mcp_server]]; write name`,
    ],
  },
  {
    name: "[[uplink]] without the uplink capability, with an unknown profile",
    toml: `${PKG}[[uplink]]\nname = "tg"\nplatform = "telegram"\nprofile = "robot"\n`,
    errors: [
      `${FILE}:4: uplink: [[uplink]] entries need the uplink capability; add uplink = true to [capabilities]`,
      `${FILE}:7: uplink[0].profile: unknown profile "robot"; use "human"`,
    ],
  },
  {
    name: "[static] context_files outside static/ and not a list",
    toml: `${PKG}[static]\ncontext_files = ["/etc/motd", "README.md"]\n`,
    errors: [
      `${FILE}:5: static.context_files[0]: "/etc/motd" is not a relative path`,
      `${FILE}:5: static.context_files[1]: "README.md" is outside static/`,
    ],
  },
  {
    name: "[[cron]] with a bad schedule and an uncovered topic",
    toml: `${PKG}[[cron]]\nname = "nightly"\nschedule = "0 25 * * *"\ntopic = "t.v1.nightly"\n`,
    errors: [
      `${FILE}:6: cron[0].schedule: "0 25 * * *": hour "25" is outside 0-23`,
      `${FILE}:7: cron[0].topic: "t.v1.nightly" is not covered by any [publish] key; add [publish] "t.v1.nightly" = { wit = "…" }`,
    ],
  },
  {
    name: "[[cron]] missing fields and publishing a pattern",
    toml: `${PKG}[publish]\n"t.*" = "x"\n[[cron]]\nname = "c"\ntopic = "t.*"\n`,
    errors: [
      `${FILE}:6: cron[0].schedule: missing schedule; add schedule = "0 3 * * *" (UTC)`,
      `${FILE}:8: cron[0].topic: "t.*" is a pattern; a cron job publishes one concrete topic`,
    ],
  },
  {
    name: "invalid TOML",
    toml: `[package]\nname = "t"\nversion = "0.1.0"\n[capabilities\n`,
    errors: [`${FILE}:4:`, `(syntax): invalid TOML`],
    count: 1,
  },
  {
    name: "every problem is reported, not just the first",
    toml:
      `[package]\nname = "T"\nversion = "x"\ndescriptoin = "d"\n[capabilities]\nnet = ["a"]\n[imports]\n"astrid:x" = "nope"\n`,
    errors: [
      `${FILE}:2: package.name`,
      `${FILE}:3: package.version`,
      `${FILE}:4: package.descriptoin: unknown key "descriptoin" in [package]; did you mean "description"?`,
      `${FILE}:6: capabilities.net[0]`,
      `${FILE}:8: imports."astrid:x"`,
      "5 problems",
    ],
    count: 5,
  },
];

Deno.test("manifest table: valid manifests parse", async (t) => {
  for (const row of VALID) {
    await t.step(row.name, () => {
      const m = parseManifest(row.toml, { file: FILE });
      assert.equal(m.file, FILE);
      row.check?.(m);
    });
  }
});

Deno.test("manifest table: invalid manifests name file:line, field and a fix", async (t) => {
  assert.ok(VALID.length + INVALID.length >= 25);
  for (const row of INVALID) {
    await t.step(row.name, () => {
      let err: unknown;
      try {
        parseManifest(row.toml, { file: FILE });
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof ManifestError, `expected a ManifestError, got ${String(err)}`);
      assert.equal(err.code, CapsuleCode.MANIFEST_INVALID);
      for (const fragment of row.errors ?? []) {
        assert.ok(
          err.message.includes(fragment),
          `missing ${JSON.stringify(fragment)} in:\n${err.message}`,
        );
      }
      if (row.count !== undefined) assert.equal(err.issues.length, row.count, err.message);
      for (const issue of err.issues) {
        assert.equal(issue.file, FILE);
        assert.ok(issue.line !== undefined && issue.line >= 1, `no line for ${issue.field}`);
      }
    });
  }
});
