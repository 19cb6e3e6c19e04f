import assert from "node:assert/strict";
import {
  ConfigCode,
  ConfigError,
  type ConfigLayer,
  ConfigWarningCode,
  DEFAULT_CONFIG,
  envLayer,
  type MergedConfig,
  mergeLayers,
  parseLayer,
} from "./mod.ts";

const SYS = "/h/etc/config.toml";
const USER = "/h/home/default/.config/config.toml";
const WS = "/w/.astrid/config.toml";

const sys = (text: string) => parseLayer(text, { kind: "system", file: SYS });
const user = (text: string) => parseLayer(text, { kind: "user", file: USER });
const ws = (text: string) => parseLayer(text, { kind: "workspace", file: WS });

/** Merges `layers`, asserting the workspace produced exactly `warnings` keys. */
function merge(layers: ConfigLayer[], warnedKeys: string[] = []): MergedConfig {
  const merged = mergeLayers(layers);
  assert.deepEqual(merged.warnings.map((w) => w.key), warnedKeys, JSON.stringify(merged.warnings));
  return merged;
}

Deno.test("mergeLayers() with no layers returns the compiled defaults", () => {
  const { config, sources, warnings } = mergeLayers([]);
  assert.deepEqual(config, DEFAULT_CONFIG);
  assert.deepEqual(warnings, []);
  assert.deepEqual(sources["security.mode"], [{ layer: "defaults" }]);
  assert.deepEqual(sources['pricing."local/*"'], [{ layer: "defaults" }]);
  assert.equal(config.security.mode, "guided");
  assert.deepEqual(config.budget, { session_usd: 5, workspace_usd: 50, per_action_usd: 1 });
  assert.equal(config.security.approval.timeout_secs, 300);
  assert.ok(config.security.policy.denied_commands.includes("sudo"));
});

Deno.test("mergeLayers() returns a deeply frozen config", () => {
  const { config } = mergeLayers([user('[security.policy]\ndenied_hosts = ["x"]')]);
  assert.ok(Object.isFrozen(config.security.policy.denied_hosts));
  assert.throws(() => (config.budget as { session_usd: number }).session_usd = 99);
});

Deno.test("mergeLayers() applies layers in precedence order", async (t) => {
  const e = envLayer(new Map([["ASTRID_MODEL", "from-env"], ["ASTRID_LOG_LEVEL", "warn"]]));
  const s = sys('[model]\nname = "from-system"\n[runtime]\nlog_level = "error"');
  const u = user('[model]\nname = "from-user"');
  const w = ws('[model]\nname = "from-workspace"');

  await t.step("env beats defaults", () => {
    assert.equal(merge([e]).config.model.name, "from-env");
  });
  await t.step("system beats env", () => {
    const { config } = merge([e, s]);
    assert.equal(config.model.name, "from-system");
    assert.equal(config.runtime.log_level, "error");
  });
  await t.step("user beats system", () => {
    assert.equal(merge([e, s, u]).config.model.name, "from-user");
  });
  await t.step("workspace beats user", () => {
    assert.equal(merge([e, s, u, w]).config.model.name, "from-workspace");
  });
  await t.step("the order layers are passed in does not matter", () => {
    const { config, sources } = merge([w, u, s, e]);
    assert.equal(config.model.name, "from-workspace");
    assert.deepEqual(sources["model.name"].map((o) => o.layer), [
      "defaults",
      "env",
      "system",
      "user",
      "workspace",
    ]);
    assert.deepEqual(sources["model.name"].at(-1), { layer: "workspace", file: WS, line: 2 });
    assert.deepEqual(sources["runtime.log_level"].at(-1), { layer: "system", file: SYS, line: 4 });
  });
  await t.step("operator layers may loosen what a lower layer set", () => {
    const { config } = merge([
      sys('[security]\nmode = "safe"\n[budget]\nsession_usd = 1'),
      user('[security]\nmode = "autonomous"\n[budget]\nsession_usd = 20'),
    ]);
    assert.equal(config.security.mode, "autonomous");
    assert.equal(config.budget.session_usd, 20);
  });
});

Deno.test("mergeLayers() unions denied_* lists across every layer", () => {
  const { config, sources } = merge([
    sys('[security.policy]\ndenied_commands = ["rm"]'),
    user('[security.policy]\ndenied_commands = ["curl", "rm"]'),
  ]);
  assert.deepEqual(config.security.policy.denied_commands, [
    ...DEFAULT_CONFIG.security.policy.denied_commands,
    "rm",
    "curl",
  ]);
  assert.deepEqual(sources["security.policy.denied_commands"].map((o) => o.layer), [
    "defaults",
    "system",
    "user",
  ]);
});

Deno.test("mergeLayers() workspace tightening: security.mode", async (t) => {
  await t.step("a stricter mode applies", () => {
    assert.equal(merge([ws('[security]\nmode = "safe"')]).config.security.mode, "safe");
    const { config } = merge([user('security.mode = "yolo"'), ws('security.mode = "guided"')]);
    assert.equal(config.security.mode, "guided");
  });
  await t.step("the same mode applies, yolo equal to autonomous", () => {
    const { config } = merge([user('security.mode = "autonomous"'), ws('security.mode = "yolo"')]);
    assert.equal(config.security.mode, "autonomous");
  });
  await t.step("a looser mode is ignored with a warning naming file, key and why", () => {
    const { config, warnings, sources } = merge(
      [ws('# repo config\n[security]\nmode = "yolo"')],
      ["security.mode"],
    );
    assert.equal(config.security.mode, "guided");
    assert.deepEqual(warnings[0], {
      code: ConfigWarningCode.WORKSPACE_LOOSENS,
      key: "security.mode",
      file: WS,
      line: 3,
      message:
        `Ignored security.mode = "yolo" in ${WS}:3: a workspace may only tighten security (current "guided")`,
    });
    assert.deepEqual(sources["security.mode"], [{ layer: "defaults" }]);
  });
  await t.step("safe is never loosened to guided", () => {
    const { config, warnings } = merge(
      [user('security.mode = "safe"'), ws('security.mode = "guided"')],
      ["security.mode"],
    );
    assert.equal(config.security.mode, "safe");
    assert.match(warnings[0].message, /\(current "safe"\)$/);
  });
});

Deno.test("mergeLayers() workspace tightening: denied_* lists only grow", async (t) => {
  for (const key of ["denied_paths", "denied_hosts", "denied_commands"] as const) {
    await t.step(`${key}: a workspace adds entries`, () => {
      const { config } = merge([ws(`[security.policy]\n${key} = ["extra"]`)]);
      assert.deepEqual(config.security.policy[key], [
        ...DEFAULT_CONFIG.security.policy[key],
        "extra",
      ]);
    });
    await t.step(`${key}: a workspace cannot remove entries`, () => {
      const { config } = merge([
        user(`[security.policy]\n${key} = ["operator"]`),
        ws(`[security.policy]\n${key} = []`),
      ]);
      assert.deepEqual(config.security.policy[key], [
        ...DEFAULT_CONFIG.security.policy[key],
        "operator",
      ]);
    });
  }
});

Deno.test("mergeLayers() workspace tightening: allowed_paths only narrows", async (t) => {
  const operator = user('[security.policy]\nallowed_paths = ["/home/u/**", "/srv/data/**"]');

  await t.step("with no allow-list, any workspace list narrows and applies", () => {
    const { config } = merge([ws('[security.policy]\nallowed_paths = ["/w/**"]')]);
    assert.deepEqual(config.security.policy.allowed_paths, ["/w/**"]);
  });
  await t.step("a subset of the operator's list applies", () => {
    const { config } = merge([
      operator,
      ws('[security.policy]\nallowed_paths = ["/home/u/proj/**", "/srv/data/**"]'),
    ]);
    assert.deepEqual(config.security.policy.allowed_paths, ["/home/u/proj/**", "/srv/data/**"]);
  });
  await t.step("entries outside the operator's list are ignored with a warning", () => {
    const { config, warnings } = merge([
      operator,
      ws(
        '[security.policy]\nallowed_paths = ["/home/u/proj/**", "/etc/**", "/home/u/../../root/**"]',
      ),
    ], ["security.policy.allowed_paths", "security.policy.allowed_paths"]);
    assert.deepEqual(config.security.policy.allowed_paths, ["/home/u/proj/**"]);
    assert.match(
      warnings[0].message,
      /^Ignored "\/etc\/\*\*" of security\.policy\.allowed_paths in \/w\/\.astrid\/config\.toml:2: a workspace may only narrow allowed_paths/,
    );
  });
  await t.step("a list with nothing allowed keeps the operator's list", () => {
    const { config } = merge([operator, ws('security.policy.allowed_paths = ["/etc/**"]')], [
      "security.policy.allowed_paths",
    ]);
    assert.deepEqual(config.security.policy.allowed_paths, ["/home/u/**", "/srv/data/**"]);
  });
  await t.step("an empty list (no allow-list) is a loosening and is ignored", () => {
    const { config, warnings } = merge([operator, ws("security.policy.allowed_paths = []")], [
      "security.policy.allowed_paths",
    ]);
    assert.deepEqual(config.security.policy.allowed_paths, ["/home/u/**", "/srv/data/**"]);
    assert.match(warnings[0].message, /an empty list allows every path/);
  });
});

Deno.test("mergeLayers() workspace tightening: numbers only go down", async (t) => {
  const rows: [string, string, number, string][] = [
    ["security.approval", "timeout_secs", 300, "shorten timeouts"],
    ["budget", "session_usd", 5, "lower budgets"],
    ["budget", "workspace_usd", 50, "lower budgets"],
    ["budget", "per_action_usd", 1, "lower budgets"],
    ["runtime", "tool_timeout_secs", 300, "shorten timeouts"],
  ];
  const read = (config: unknown, key: string) =>
    key.split(".").reduce((n, p) => (n as Record<string, unknown>)[p], config) as number;

  for (const [table, leaf, current, why] of rows) {
    const key = `${table}.${leaf}`;
    await t.step(`${key}: a lower value applies`, () => {
      const { config, sources } = merge([ws(`[${table}]\n${leaf} = 1`)]);
      assert.equal(read(config, key), 1);
      assert.deepEqual(sources[key].at(-1), { layer: "workspace", file: WS, line: 2 });
    });
    await t.step(`${key}: a higher value is ignored with a warning`, () => {
      const { config, warnings } = merge([ws(`[${table}]\n${leaf} = 1000`)], [key]);
      assert.equal(read(config, key), current);
      assert.equal(
        warnings[0].message,
        `Ignored ${key} = 1000 in ${WS}:2: a workspace may only ${why} (current ${current})`,
      );
      assert.equal(warnings[0].code, ConfigWarningCode.WORKSPACE_LOOSENS);
    });
  }
  await t.step("the baseline is the operator's value, not the default", () => {
    const { config } = merge([
      user("[budget]\nsession_usd = 100"),
      ws("[budget]\nsession_usd = 60"),
    ]);
    assert.equal(config.budget.session_usd, 60);
  });
});

Deno.test("mergeLayers() workspace tightening: pricing cannot be changed", async (t) => {
  const entry = (price: number) =>
    `[pricing."openai/gpt-4o"]\ninput_per_mtok = ${price}\noutput_per_mtok = ${price}`;
  await t.step("an operator layer sets a price", () => {
    const { config } = merge([user(entry(7))]);
    assert.deepEqual(config.pricing["openai/gpt-4o"], { input_per_mtok: 7, output_per_mtok: 7 });
  });
  for (const price of [0, 100]) {
    await t.step(`a workspace price of ${price} is ignored with a warning`, () => {
      const { config, warnings } = merge([ws(entry(price))], ['pricing."openai/gpt-4o"']);
      assert.deepEqual(config.pricing["openai/gpt-4o"], DEFAULT_CONFIG.pricing["openai/gpt-4o"]);
      assert.equal(warnings[0].code, ConfigWarningCode.WORKSPACE_FORBIDDEN);
      assert.match(
        warnings[0].message,
        /^Ignored pricing\."openai\/gpt-4o" in \/w\/\.astrid\/config\.toml:1: a workspace cannot change pricing/,
      );
    });
  }
  await t.step("a workspace cannot add a new price either", () => {
    const { config } = merge(
      [ws('[pricing."evil/free"]\ninput_per_mtok = 0\noutput_per_mtok = 0')],
      ['pricing."evil/free"'],
    );
    assert.equal(config.pricing["evil/free"], undefined);
  });
});

Deno.test("mergeLayers() workspace tightening: daemon-wide keys are not settable", async (t) => {
  const rows: [string, string, string][] = [
    ["storage", "url", '"postgres://evil:pw@attacker/db"'],
    ["runtime", "max_instances", "64"],
    ["runtime", "idle_timeout_secs", "1"],
  ];
  for (const [table, leaf, value] of rows) {
    const key = `${table}.${leaf}`;
    await t.step(`${key}: an operator layer sets it`, () => {
      const { config } = merge([user(`[${table}]\n${leaf} = ${value}`)]);
      assert.deepEqual(
        (config as unknown as Record<string, Record<string, unknown>>)[table][leaf],
        JSON.parse(value),
      );
    });
    await t.step(`${key}: a workspace value is ignored with a warning`, () => {
      const { config, warnings } = merge([ws(`[${table}]\n${leaf} = ${value}`)], [key]);
      assert.deepEqual(
        (config as unknown as Record<string, Record<string, unknown>>)[table][leaf],
        (DEFAULT_CONFIG as unknown as Record<string, Record<string, unknown>>)[table][leaf],
      );
      assert.equal(warnings[0].code, ConfigWarningCode.WORKSPACE_FORBIDDEN);
      assert.match(warnings[0].message, new RegExp(`in ${WS}:2: a workspace cannot set ${key}`));
      assert.ok(!warnings[0].message.includes(":pw@"), warnings[0].message);
    });
  }
});

Deno.test("mergeLayers() lets a workspace set non-security keys freely", () => {
  const { config, warnings } = merge([
    user('[runtime]\nlog_level = "error"\n[model]\nmax_tokens = 100'),
    ws(
      '[runtime]\nlog_level = "trace"\n[model]\nprovider = "local"\nname = "qwen"\nmax_tokens = 9000',
    ),
  ]);
  assert.deepEqual(warnings, []);
  assert.equal(config.runtime.log_level, "trace");
  assert.deepEqual(config.model, { provider: "local", name: "qwen", max_tokens: 9000 });
});

Deno.test("mergeLayers() validates hand-built layers", async (t) => {
  await t.step("an unknown key", () => {
    assert.throws(
      () =>
        mergeLayers([{
          kind: "user",
          file: USER,
          entries: [{
            key: "security.moed",
            path: ["security", "moed"],
            value: "safe",
            raw: "safe",
          }],
        }]),
      (err: unknown) => err instanceof ConfigError && err.code === ConfigCode.CONFIG_UNKNOWN_KEY,
    );
  });
  await t.step("a bad value", () => {
    assert.throws(
      () =>
        mergeLayers([{
          kind: "workspace",
          file: WS,
          entries: [{
            key: "budget.session_usd",
            path: ["budget", "session_usd"],
            value: -1,
            raw: -1,
            line: 3,
          }],
        }]),
      (err: unknown) =>
        err instanceof ConfigError && err.code === ConfigCode.CONFIG_TYPE &&
        err.message.startsWith(`${WS}:3: budget.session_usd: expected`),
    );
  });
  await t.step("a bad price", () => {
    assert.throws(
      () =>
        mergeLayers([{
          kind: "system",
          file: SYS,
          entries: [{
            key: 'pricing."a/b"',
            path: ["pricing", "a/b"],
            value: { input_per_mtok: 1 },
            raw: {},
          }],
        }]),
      (err: unknown) => err instanceof ConfigError && err.code === ConfigCode.CONFIG_TYPE,
    );
  });
  await t.step("a hand-built yolo is normalised", () => {
    const { config } = mergeLayers([{
      kind: "user",
      entries: [{ key: "security.mode", path: ["security", "mode"], value: "yolo", raw: "yolo" }],
    }]);
    assert.equal(config.security.mode, "autonomous");
  });
});
