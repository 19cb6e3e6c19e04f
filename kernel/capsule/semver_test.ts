import assert from "node:assert/strict";
import { compareVersions, isVersion, parseVersion, satisfies, VersionRange } from "./semver.ts";

Deno.test("parseVersion() accepts full semver and refuses partial or malformed versions", async (t) => {
  await t.step("full versions", () => {
    assert.deepEqual(parseVersion("1.2.3-beta.1+build.5"), {
      major: 1,
      minor: 2,
      patch: 3,
      prerelease: ["beta", 1],
      build: ["build", "5"],
    });
    assert.ok(isVersion("0.0.0"));
  });
  await t.step("refused forms", () => {
    for (const bad of ["1.2", "v1.2.3", "01.2.3", "1.2.3-01", "1.2.3.4", "", "latest"]) {
      assert.equal(parseVersion(bad), undefined, bad);
    }
  });
});

Deno.test("compareVersions() follows semver precedence", () => {
  const order = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.1.0",
    "2.0.0",
  ].map((v) => parseVersion(v)!);
  for (let i = 1; i < order.length; i++) {
    assert.equal(compareVersions(order[i - 1], order[i]), -1);
    assert.equal(compareVersions(order[i], order[i - 1]), 1);
  }
  assert.equal(compareVersions(parseVersion("1.0.0+a")!, parseVersion("1.0.0+b")!), 0);
});

Deno.test("satisfies() implements ^, ~, comparisons, exact, * and x ranges", async (t) => {
  const table: [string, string[], string[]][] = [
    ["^1.2.3", ["1.2.3", "1.9.0"], ["1.2.2", "2.0.0", "2.0.0-0"]],
    ["^1.2", ["1.2.0", "1.99.0"], ["1.1.9", "2.0.0"]],
    ["^1", ["1.0.0", "1.5.5"], ["0.9.9", "2.0.0"]],
    ["^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]],
    ["^0.0.3", ["0.0.3"], ["0.0.4", "0.0.2"]],
    ["^1.0", ["1.0.0", "1.4.2"], ["2.0.0"]],
    ["~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0", "1.2.2"]],
    ["~1.2", ["1.2.0", "1.2.7"], ["1.3.0"]],
    ["~1", ["1.0.0", "1.9.9"], ["2.0.0"]],
    [">=1.2.0", ["1.2.0", "3.0.0"], ["1.1.9"]],
    [">1.2.3", ["1.2.4"], ["1.2.3"]],
    [">1.2", ["1.3.0"], ["1.2.9"]],
    ["<2.0.0", ["1.9.9"], ["2.0.0", "2.0.0-beta"]],
    ["<=1.4", ["1.4.9"], ["1.5.0"]],
    ["1.2.3", ["1.2.3"], ["1.2.4", "1.2.3-beta"]],
    ["=1.2.3", ["1.2.3"], ["1.2.4"]],
    ["*", ["0.0.1", "9.9.9"], ["1.0.0-beta"]],
    ["x", ["3.1.4"], []],
    ["1.x", ["1.0.0", "1.9.0"], ["2.0.0"]],
    ["1.2.*", ["1.2.0", "1.2.9"], ["1.3.0"]],
    ["1.2", ["1.2.5"], ["1.3.0"]],
    [">=1.2 <2", ["1.2.0", "1.9.9"], ["2.0.0", "1.1.0"]],
    [">=1.2, <2", ["1.5.0"], ["2.1.0"]],
    [">= 1.2", ["1.2.0"], ["1.1.0"]],
    ["^1 || ^3", ["1.1.0", "3.0.0"], ["2.0.0"]],
    ["^1.2.3-beta.1", ["1.2.3-beta.1", "1.2.3-beta.2", "1.2.3", "1.5.0"], [
      "1.2.4-beta.1",
      "1.2.3-alpha",
    ]],
  ];
  for (const [range, yes, no] of table) {
    await t.step(range, () => {
      for (const v of yes) assert.ok(satisfies(v, range), `${v} should satisfy ${range}`);
      for (const v of no) assert.ok(!satisfies(v, range), `${v} should not satisfy ${range}`);
    });
  }
});

Deno.test("VersionRange.problem() explains malformed ranges", () => {
  assert.match(VersionRange.problem("")!, /empty range/);
  assert.match(VersionRange.problem("^1 ||")!, /empty alternative/);
  assert.match(VersionRange.problem("1.2.3 - 2.0.0")!, /hyphen ranges/);
  assert.match(VersionRange.problem("latest")!, /not a version comparator/);
  assert.match(VersionRange.problem("1.x.3")!, /cannot follow a wildcard/);
  assert.equal(VersionRange.problem("^1.0"), undefined);
  assert.throws(() => VersionRange.parse("nope"), /Invalid version range "nope"/);
  assert.ok(!VersionRange.parse("^1").satisfiedBy("not-a-version"));
});
