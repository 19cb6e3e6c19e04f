import assert from "node:assert/strict";
import { DistroCode, DistroManifestError } from "./errors.ts";
import { parseDistro } from "./parse_distro.ts";

const GOOD = `schema_version = 1

[distro]
name = "mini"
version = "0.1.0"
description = "A small distro"
source_root = "../.."

[variables]
api_key = { description = "API key", secret = true, required = true }
region = { description = "Region", default = "eu" }

[[group]]
name = "anthropic"
description = "Claude"
default = true

[[group]]
name = "openai"
capsules = ["provider-openai"]

[[capsule]]
name = "cli"
source = "capsules/cli"
version = "0.1.0"

[[capsule]]
name = "provider-anthropic"
source = "capsules/provider-anthropic"
version = "^0.1"
group = "anthropic"
env = { API_KEY = "{{ api_key }}", REGION = "{{region}}" }

[[capsule]]
name = "provider-openai"
source = "@astrid/provider-openai"
version = "0.1.0"

[invites]
issuers = ["admin"]
default_group = "users"
default_expires = "7d"
max_principals = 50

[branding]
display_name = "Mini"
primary_color = "#5b3cc4"
`;

function issuesOf(text: string): string[] {
  try {
    parseDistro(text, { file: "d/Distro.toml" });
  } catch (err) {
    assert.ok(err instanceof DistroManifestError);
    assert.equal(err.code, DistroCode.DISTRO_INVALID);
    return err.issues.map((i) => `${i.line}: ${i.field}: ${i.problem}${i.fix ? `; ${i.fix}` : ""}`);
  }
  assert.fail("expected a DistroManifestError");
}

Deno.test("parseDistro() reads every section of a valid Distro.toml", () => {
  const d = parseDistro(GOOD, { file: "d/Distro.toml" });
  assert.equal(d.distro.name, "mini");
  assert.equal(d.distro.source_root, "../..");
  assert.deepEqual(d.variables.map((v) => [v.name, v.secret, v.required, v.default]), [
    ["api_key", true, true, undefined],
    ["region", false, false, "eu"],
  ]);
  assert.deepEqual(d.group.map((g) => [g.name, g.capsules, g.default]), [
    ["anthropic", ["provider-anthropic"], true],
    ["openai", ["provider-openai"], false],
  ]);
  assert.deepEqual(d.capsule[1].env, { API_KEY: "{{ api_key }}", REGION: "{{region}}" });
  assert.equal(d.capsule[2].source, "@astrid/provider-openai");
  assert.deepEqual(d.invites, {
    issuers: ["admin"],
    default_group: "users",
    default_expires: "7d",
    max_principals: 50,
  });
  assert.deepEqual(d.branding, { display_name: "Mini", primary_color: "#5b3cc4" });
});

Deno.test("parseDistro() reports every problem with file, line, field and fix", async (t) => {
  await t.step("unknown keys get a did-you-mean, kebab-case keys their snake_case name", () => {
    const issues = issuesOf(`[distro]
name = "x"
version = "0.1.0"
source-root = "."

[[capsule]]
name = "a"
sourc = "capsules/a"
version = "0.1.0"
`);
    assert.deepEqual(issues, [
      '4: distro.source-root: unknown key "source-root" in [distro]; did you mean "source_root"?',
      '6: capsule[0].source: missing source; add source = "capsules/<name>" (a directory or .capsule) or "@org/name"',
      '8: capsule[0].sourc: unknown key "sourc" in [[capsule]]; did you mean "source"?',
    ]);
  });
  await t.step("undefined variables, undefined groups and duplicates", () => {
    const issues = issuesOf(`[distro]
name = "x"
version = "0.1.0"

[[capsule]]
name = "a"
source = "a"
version = "0.1.0"
group = "llm"
env = { KEY = "{{ missing }}", BAD = "{{ oops" }

[[capsule]]
name = "a"
source = "b"
version = "one"
`);
    assert.deepEqual(issues.slice(0, 4), [
      '9: capsule[0].group: group "llm" is not defined; add [[group]] name = "llm"',
      '10: capsule[0].env.KEY: template refers to undefined variable "missing"; add [variables] missing = { description = "…" }',
      '10: capsule[0].env.BAD: malformed template "{{ oops": write {{ name }} with a variable name',
      '13: capsule[1].name: capsule "a" is listed twice; remove one [[capsule]]',
    ]);
    assert.match(issues[4], /^15: capsule\[1\]\.version: invalid version range "one": /);
  });
  await t.step("a secret with a default, a bad colour, invites without default_group", () => {
    const issues = issuesOf(`[distro]
name = "Bad Name"
version = "0.1"

[variables]
key = { secret = true, default = "sk-123" }

[[capsule]]
name = "a"
source = "a"
version = "0.1.0"

[invites]
issuers = ["admin"]

[branding]
accent_color = "purple"
`);
    assert.deepEqual(issues.map((i) => i.split(";")[0]), [
      '2: distro.name: invalid distro name "Bad Name"',
      '3: distro.version: invalid version "0.1"',
      "6: variables.key.default: a secret variable cannot have a default",
      "13: invites: issuers are set but default_group is not",
      '17: branding.accent_color: invalid colour "purple"',
    ]);
  });
  await t.step("the built-in groups variable may be used but not defined", () => {
    const issues = issuesOf(`[distro]
name = "x"
version = "0.1.0"

[variables]
groups = { description = "mine" }

[[capsule]]
name = "a"
source = "a"
version = "0.1.0"
env = { ROUTES = "{{ groups }}" }
`);
    assert.deepEqual(issues, [
      '6: variables.groups: "groups" is a built-in variable; rename it; init fills it itself',
    ]);
  });
  await t.step("TOML syntax errors are located", () => {
    const issues = issuesOf(`[distro]\nname = "x"\nversion = \n`);
    assert.equal(issues.length, 1);
    assert.match(issues[0], /^3: \(syntax\): invalid TOML/);
  });
  await t.step("a distro without [distro] or capsules", () => {
    const issues = issuesOf(`schema_version = 2\n`);
    assert.deepEqual(issues.map((i) => i.split(";")[0]), [
      "1: schema_version: unsupported schema_version 2",
      "1: distro: missing [distro]",
      "1: (top level): the distro lists no capsules",
    ]);
  });
  await t.step("the message names file:line", () => {
    assert.throws(
      () =>
        parseDistro(`[distro]\nname = "x"\nversion = "0.1.0"\nfoo = 1\n`, {
          file: "d/Distro.toml",
        }),
      (err: Error) =>
        /^Invalid distro manifest "d\/Distro.toml": 2 problems\n/.test(err.message) &&
        /d\/Distro.toml:4: distro.foo: unknown key "foo"/.test(err.message),
    );
  });
});

Deno.test("parseDistro() accepts distros/astralis/Distro.toml", async () => {
  const file = new URL("../../distros/astralis/Distro.toml", import.meta.url);
  const d = parseDistro(await Deno.readTextFile(file), { file: file.pathname });
  assert.equal(d.distro.name, "astralis");
  assert.deepEqual(d.group.filter((g) => g.default).map((g) => g.name), ["anthropic"]);
  assert.ok(d.capsule.every((c) => c.source === `capsules/${c.name}`));
});
