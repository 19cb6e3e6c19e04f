import assert from "node:assert/strict";
import { ConfigCode, ConfigError, parseLayer } from "./mod.ts";

const FILE = "/x/.astrid/config.toml";
const parse = (text: string) => parseLayer(text, { kind: "workspace", file: FILE });

function fails(text: string, code: string): ConfigError {
  let caught: unknown;
  try {
    parse(text);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError for ${JSON.stringify(text)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

Deno.test("parseLayer() returns validated entries with their lines", () => {
  const layer = parse('\n[security]\nmode = "safe"\n\n[budget]\nsession_usd = 2\n');
  assert.equal(layer.kind, "workspace");
  assert.equal(layer.file, FILE);
  assert.deepEqual(
    layer.entries.map((e) => [e.key, e.value, e.line]),
    [["security.mode", "safe", 3], ["budget.session_usd", 2, 6]],
  );
});

Deno.test("parseLayer() resolves the yolo alias to autonomous and keeps the raw value", () => {
  const [entry] = parse('security.mode = "yolo"').entries;
  assert.equal(entry.value, "autonomous");
  assert.equal(entry.raw, "yolo");
});

Deno.test("parseLayer() reports a TOML syntax error with file, line and column", () => {
  const err = fails("[security]\n\nmode = \n", ConfigCode.CONFIG_PARSE);
  assert.deepEqual(err.data, { file: FILE, line: 3, column: 8 });
  assert.match(err.message, /^\/x\/\.astrid\/config\.toml:3:8: invalid TOML: .+ in "mode ="$/);
});

Deno.test("parseLayer() hides a password in the line of a syntax error", () => {
  const err = fails('[storage]\nurl = "postgres://u:hunter2@db/x\n', ConfigCode.CONFIG_PARSE);
  assert.ok(!err.message.includes("hunter2"), err.message);
});

Deno.test("parseLayer() reports a type error with file, line, key and expected form", async (t) => {
  await t.step("bad enum value", () => {
    const err = fails('# c\n\n[security]\nmode = "wild"', ConfigCode.CONFIG_TYPE);
    assert.equal(
      err.message,
      `${FILE}:4: security.mode: expected one of "safe", "guided", "autonomous", "yolo", got "wild"`,
    );
    assert.deepEqual(err.data, { file: FILE, line: 4, column: 1, key: "security.mode" });
  });
  await t.step("string where a number belongs", () => {
    const err = fails('[budget]\nsession_usd = "5"', ConfigCode.CONFIG_TYPE);
    assert.match(
      err.message,
      /:2: budget\.session_usd: expected a number of US dollars ≥ 0.*got "5"$/,
    );
  });
  await t.step("out of range and fractional integers", () => {
    assert.match(
      fails("[runtime]\nmax_instances = -1", ConfigCode.CONFIG_TYPE).message,
      /:2: runtime\.max_instances: expected a whole number ≥ 0, got -1$/,
    );
    assert.match(
      fails("[runtime]\ntool_timeout_secs = 1.5", ConfigCode.CONFIG_TYPE).message,
      /tool_timeout_secs: expected a whole number of seconds ≥ 1, got 1\.5$/,
    );
    fails("[security.approval]\ntimeout_secs = 0", ConfigCode.CONFIG_TYPE);
    fails("[budget]\nper_action_usd = nan", ConfigCode.CONFIG_TYPE);
  });
  await t.step("a list with a non-string", () => {
    const err = fails('[security.policy]\ndenied_hosts = ["a", 1]', ConfigCode.CONFIG_TYPE);
    assert.match(err.message, /denied_hosts: expected an array of .*got \["a", 1\]$/);
  });
  await t.step("a value where a table belongs", () => {
    const err = fails('security = "safe"', ConfigCode.CONFIG_TYPE);
    assert.match(err.message, /:1: security: expected a table \(\[security\]\), got "safe"$/);
  });
  await t.step("an inline table is located at its key", () => {
    const err = fails('\nsecurity = { mode = "bad" }', ConfigCode.CONFIG_TYPE);
    assert.equal(err.data?.line, 2);
    assert.equal(err.data?.key, "security.mode");
  });
  await t.step("a storage url that is not postgres, password hidden", () => {
    const err = fails('[storage]\nurl = "mysql://u:hunter2@h/db"', ConfigCode.CONFIG_TYPE);
    assert.ok(!err.message.includes("hunter2"), err.message);
    assert.match(err.message, /got "mysql:\/\/u:\*\*\*@h\/db"$/);
  });
});

Deno.test("parseLayer() rejects unknown keys with the closest known key as a hint", async (t) => {
  await t.step("a typo in a leaf", () => {
    const err = fails('[security.policy]\ndenied_path = ["x"]', ConfigCode.CONFIG_UNKNOWN_KEY);
    assert.equal(
      err.message,
      `${FILE}:2: security.policy.denied_path: unknown key; did you mean security.policy.denied_paths?`,
    );
    assert.equal(err.data?.suggestion, "security.policy.denied_paths");
    assert.equal(err.data?.key, "security.policy.denied_path");
  });
  await t.step("a key in the wrong table", () => {
    const err = fails('[security]\n\ndenied_paths = ["x"]', ConfigCode.CONFIG_UNKNOWN_KEY);
    assert.equal(err.data?.line, 3);
    assert.match(err.message, /did you mean security\.policy\.denied_paths\?$/);
  });
  await t.step("a typo in a table name", () => {
    const err = fails('[securty]\nmode = "safe"', ConfigCode.CONFIG_UNKNOWN_KEY);
    assert.match(err.message, /:1: securty: unknown key; did you mean security\?$/);
  });
  await t.step("nothing close: lists what the table holds", () => {
    const err = fails("[runtime]\nfrobnicate = 1", ConfigCode.CONFIG_UNKNOWN_KEY);
    assert.match(err.message, /remove it or use one of: idle_timeout_secs, tool_timeout_secs/);
    assert.equal(err.data?.suggestion, undefined);
  });
});

Deno.test("parseLayer() checks [pricing] entries", async (t) => {
  await t.step("accepts provider/model keys and a trailing *", () => {
    const layer = parse(
      '[pricing."openai/gpt-4.1"]\ninput_per_mtok = 2\noutput_per_mtok = 8\n' +
        '[pricing."local/*"]\ninput_per_mtok = 0\noutput_per_mtok = 0',
    );
    assert.deepEqual(layer.entries.map((e) => [e.key, e.line]), [
      ['pricing."openai/gpt-4.1"', 1],
      ['pricing."local/*"', 4],
    ]);
    assert.deepEqual(layer.entries[0].value, { input_per_mtok: 2, output_per_mtok: 8 });
  });
  await t.step("rejects a key without a provider", () => {
    const err = fails("[pricing.gpt4]\ninput_per_mtok = 1\noutput_per_mtok = 1", "CONFIG_TYPE");
    assert.match(err.message, /:1: pricing\.gpt4: expected a "provider\/model" name/);
  });
  await t.step("requires both prices", () => {
    const err = fails('[pricing."a/b"]\ninput_per_mtok = 1', ConfigCode.CONFIG_TYPE);
    assert.match(err.message, /:1: pricing\."a\/b": missing output_per_mtok: add output_per_mtok/);
  });
  await t.step("rejects a negative price and hints a misspelt field", () => {
    fails('[pricing."a/b"]\ninput_per_mtok = -1\noutput_per_mtok = 1', ConfigCode.CONFIG_TYPE);
    const err = fails(
      '[pricing."a/b"]\ninput_per_mtok = 1\noutput_per_mtk = 1',
      ConfigCode.CONFIG_UNKNOWN_KEY,
    );
    assert.equal(err.data?.line, 3);
    assert.equal(err.data?.suggestion, 'pricing."a/b".output_per_mtok');
  });
});
