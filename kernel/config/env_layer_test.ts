import assert from "node:assert/strict";
import { ConfigCode, ConfigError, ENV_VARS, envLayer, mergeLayers } from "./mod.ts";

const env = (vars: Record<string, string>) => new Map(Object.entries(vars));

Deno.test("ENV_VARS maps each documented variable to one key", () => {
  assert.deepEqual(Object.fromEntries(ENV_VARS), {
    ASTRID_MODE: "security.mode",
    ASTRID_APPROVAL_TIMEOUT_SECS: "security.approval.timeout_secs",
    ASTRID_SESSION_BUDGET_USD: "budget.session_usd",
    ASTRID_WORKSPACE_BUDGET_USD: "budget.workspace_usd",
    ASTRID_PER_ACTION_BUDGET_USD: "budget.per_action_usd",
    ASTRID_IDLE_TIMEOUT_SECS: "runtime.idle_timeout_secs",
    ASTRID_TOOL_TIMEOUT_SECS: "runtime.tool_timeout_secs",
    ASTRID_MAX_INSTANCES: "runtime.max_instances",
    ASTRID_LOG_LEVEL: "runtime.log_level",
    ASTRID_DB_URL: "storage.url",
    ASTRID_PROVIDER: "model.provider",
    ASTRID_MODEL: "model.name",
    ASTRID_MAX_TOKENS: "model.max_tokens",
  });
});

Deno.test("envLayer() sets every key of the table, typed", () => {
  const { config, sources } = mergeLayers([envLayer(env({
    ASTRID_MODE: "safe",
    ASTRID_APPROVAL_TIMEOUT_SECS: "60",
    ASTRID_SESSION_BUDGET_USD: "2.5",
    ASTRID_WORKSPACE_BUDGET_USD: "20",
    ASTRID_PER_ACTION_BUDGET_USD: "0.25",
    ASTRID_IDLE_TIMEOUT_SECS: "0",
    ASTRID_TOOL_TIMEOUT_SECS: "30",
    ASTRID_MAX_INSTANCES: "8",
    ASTRID_LOG_LEVEL: "debug",
    ASTRID_DB_URL: "postgres://astrid@db:5432/astrid",
    ASTRID_PROVIDER: "openai",
    ASTRID_MODEL: "gpt-4o",
    ASTRID_MAX_TOKENS: "1024",
  }))]);
  assert.equal(config.security.mode, "safe");
  assert.equal(config.security.approval.timeout_secs, 60);
  assert.deepEqual(config.budget, { session_usd: 2.5, workspace_usd: 20, per_action_usd: 0.25 });
  assert.deepEqual(config.runtime, {
    idle_timeout_secs: 0,
    tool_timeout_secs: 30,
    max_instances: 8,
    log_level: "debug",
  });
  assert.equal(config.storage.url, "postgres://astrid@db:5432/astrid");
  assert.deepEqual(config.model, { provider: "openai", name: "gpt-4o", max_tokens: 1024 });
  assert.deepEqual(sources["runtime.max_instances"].at(-1), {
    layer: "env",
    variable: "ASTRID_MAX_INSTANCES",
  });
});

Deno.test("envLayer() ignores empty and unrelated variables", () => {
  const layer = envLayer(env({ ASTRID_MODE: "", ASTRID_HOME: "/h", ASTRID_FOO: "1" }));
  assert.deepEqual(layer, { kind: "env", entries: [] });
});

Deno.test("envLayer() accepts yolo as an alias of autonomous", () => {
  const [entry] = envLayer(env({ ASTRID_MODE: "yolo" })).entries;
  assert.equal(entry.value, "autonomous");
});

Deno.test("envLayer() names the variable and the expected form of a bad value", async (t) => {
  const cases: [string, string, RegExp][] = [
    [
      "ASTRID_MODE",
      "wild",
      /^Environment variable ASTRID_MODE \(security\.mode\): expected one of "safe", "guided", "autonomous", "yolo", got "wild"$/,
    ],
    [
      "ASTRID_IDLE_TIMEOUT_SECS",
      "5m",
      /^Environment variable ASTRID_IDLE_TIMEOUT_SECS \(runtime\.idle_timeout_secs\): expected a whole number of seconds ≥ 0, got "5m"$/,
    ],
    ["ASTRID_TOOL_TIMEOUT_SECS", "0", /ASTRID_TOOL_TIMEOUT_SECS .*≥ 1, got "0"$/],
    ["ASTRID_MAX_INSTANCES", "-2", /ASTRID_MAX_INSTANCES .*whole number ≥ 0, got "-2"$/],
    [
      "ASTRID_SESSION_BUDGET_USD",
      "$5",
      /ASTRID_SESSION_BUDGET_USD .*US dollars ≥ 0, e\.g\. 5\.0, got "\$5"$/,
    ],
    [
      "ASTRID_LOG_LEVEL",
      "verbose",
      /ASTRID_LOG_LEVEL .*one of "error", "warn", "info", "debug", "trace"/,
    ],
    ["ASTRID_PROVIDER", "Open AI", /ASTRID_PROVIDER .*provider name/],
  ];
  for (const [name, value, pattern] of cases) {
    await t.step(name, () => {
      assert.throws(
        () => envLayer(env({ [name]: value })),
        (err: unknown) =>
          err instanceof ConfigError && err.code === ConfigCode.CONFIG_ENV &&
          err.data?.variable === name && err.data?.key === ENV_VARS.get(name) &&
          pattern.test(err.message),
      );
    });
  }
  await t.step("ASTRID_DB_URL hides the password", () => {
    assert.throws(
      () => envLayer(env({ ASTRID_DB_URL: "mysql://root:hunter2@db/x" })),
      (err: unknown) => err instanceof ConfigError && !err.message.includes("hunter2"),
    );
  });
});
