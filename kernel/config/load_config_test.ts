import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ConfigCode,
  ConfigError,
  type ConfigFiles,
  configPaths,
  ConfigWarningCode,
  DEFAULT_CONFIG,
  loadConfig,
} from "./mod.ts";

const noEnv = { get: (_: string): string | undefined => undefined };

async function withDirs(
  fn: (dirs: { home: string; workspace: string }) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "astrid_config_" });
  try {
    await fn({ home: join(root, "astrid"), workspace: join(root, "project") });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

async function write(path: string, text: string): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeTextFile(path, text);
}

Deno.test("configPaths() lists the system, user and workspace files", () => {
  assert.deepEqual(configPaths({ homeDir: "/h", principal: "alice", workspace: "/w" }), [
    { kind: "system", path: "/h/etc/config.toml" },
    { kind: "user", path: "/h/home/alice/.config/config.toml" },
    { kind: "workspace", path: "/w/.astrid/config.toml" },
  ]);
  assert.deepEqual(configPaths({ homeDir: "/h" }).map((p) => p.path), [
    "/h/etc/config.toml",
    "/h/home/default/.config/config.toml",
  ]);
  assert.throws(() => configPaths({ homeDir: "/h", principal: "../root" }));
});

Deno.test("loadConfig() with no files returns the defaults", async () => {
  await withDirs(async ({ home, workspace }) => {
    const loaded = await loadConfig({ homeDir: home, workspace, env: noEnv });
    assert.deepEqual(loaded.config, DEFAULT_CONFIG);
    assert.deepEqual(loaded.warnings, []);
    assert.deepEqual(loaded.files.map((f) => [f.kind, f.found]), [
      ["system", false],
      ["user", false],
      ["workspace", false],
    ]);
  });
});

Deno.test("loadConfig() reads every layer from disk in precedence order", async (t) => {
  await withDirs(async ({ home, workspace }) => {
    const sysFile = join(home, "etc", "config.toml");
    const userFile = join(home, "home", "alice", ".config", "config.toml");
    const wsFile = join(workspace, ".astrid", "config.toml");
    const env = new Map([["ASTRID_MODEL", "env-model"], ["ASTRID_MAX_TOKENS", "11"]]);
    await write(sysFile, '[model]\nname = "sys-model"\nprovider = "openai"\n');
    await write(userFile, '[model]\nname = "user-model"\n\n[security]\nmode = "safe"\n');
    await write(wsFile, '[model]\nname = "ws-model"\n[security]\nmode = "yolo"\n');

    const loaded = await loadConfig({ homeDir: home, principal: "alice", workspace, env });
    const { config, sources, warnings } = loaded;

    await t.step("the highest layer that sets a key wins", () => {
      assert.equal(config.model.name, "ws-model");
      assert.equal(config.model.provider, "openai");
      assert.equal(config.model.max_tokens, 11);
    });
    await t.step("sources name the layer, file and line of each value", () => {
      assert.deepEqual(sources["model.name"], [
        { layer: "defaults" },
        { layer: "env", variable: "ASTRID_MODEL" },
        { layer: "system", file: sysFile, line: 2 },
        { layer: "user", file: userFile, line: 2 },
        { layer: "workspace", file: wsFile, line: 2 },
      ]);
      assert.deepEqual(sources["model.provider"].at(-1), {
        layer: "system",
        file: sysFile,
        line: 3,
      });
      assert.deepEqual(sources["security.mode"].at(-1), { layer: "user", file: userFile, line: 5 });
    });
    await t.step("the workspace cannot loosen the user's mode", () => {
      assert.equal(config.security.mode, "safe");
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0].code, ConfigWarningCode.WORKSPACE_LOOSENS);
      assert.equal(warnings[0].file, wsFile);
      assert.equal(
        warnings[0].message,
        `Ignored security.mode = "yolo" in ${wsFile}:4: a workspace may only tighten security (current "safe")`,
      );
    });
    await t.step("files report what was found", () => {
      assert.deepEqual(loaded.files, [
        { kind: "system", path: sysFile, found: true },
        { kind: "user", path: userFile, found: true },
        { kind: "workspace", path: wsFile, found: true },
      ]);
    });
  });
});

Deno.test("loadConfig() reads the user layer of the named principal only", async () => {
  await withDirs(async ({ home }) => {
    await write(join(home, "home", "bob", ".config", "config.toml"), "budget.session_usd = 1");
    const alice = await loadConfig({ homeDir: home, principal: "alice", env: noEnv });
    const bob = await loadConfig({ homeDir: home, principal: "bob", env: noEnv });
    assert.equal(alice.config.budget.session_usd, 5);
    assert.equal(bob.config.budget.session_usd, 1);
  });
});

Deno.test("loadConfig() resolves the home from ASTRID_HOME in env", async () => {
  await withDirs(async ({ home }) => {
    await write(join(home, "etc", "config.toml"), 'runtime.log_level = "debug"');
    const env = new Map([["ASTRID_HOME", home]]);
    assert.equal((await loadConfig({ env })).config.runtime.log_level, "debug");
  });
});

Deno.test("loadConfig() fails with CONFIG_READ when a config path cannot be read", async () => {
  await withDirs(async ({ home }) => {
    const path = join(home, "etc", "config.toml");
    await Deno.mkdir(path, { recursive: true }); // a directory where the file belongs
    await assert.rejects(
      loadConfig({ homeDir: home, env: noEnv }),
      (err: unknown) =>
        err instanceof ConfigError && err.code === ConfigCode.CONFIG_READ &&
        err.data?.file === path && err.message.startsWith(`Cannot read config file "${path}"`),
    );
  });
});

Deno.test("loadConfig() reports errors of a file with its path and line", async () => {
  await withDirs(async ({ home, workspace }) => {
    const wsFile = join(workspace, ".astrid", "config.toml");
    await write(wsFile, '[security]\nmode = "safe"\n\n[security.polcy]\ndenied_paths = []\n');
    await assert.rejects(
      loadConfig({ homeDir: home, workspace, env: noEnv }),
      (err: unknown) =>
        err instanceof ConfigError && err.code === ConfigCode.CONFIG_UNKNOWN_KEY &&
        err.data?.file === wsFile && err.data?.line === 4 &&
        err.message === `${wsFile}:4: security.polcy: unknown key; did you mean security.policy?`,
    );
  });
});

Deno.test("loadConfig() fails on a bad environment variable", async () => {
  await assert.rejects(
    loadConfig({ homeDir: "/nonexistent", env: new Map([["ASTRID_MODE", "wild"]]) }),
    (err: unknown) => err instanceof ConfigError && err.code === ConfigCode.CONFIG_ENV,
  );
});

Deno.test("loadConfig() reads through an injected ConfigFiles", async () => {
  const texts: Record<string, string> = {
    "/h/etc/config.toml": "budget.session_usd = 3",
    "/w/.astrid/config.toml": "budget.session_usd = 4\nbudget.per_action_usd = 0.5",
  };
  const files: ConfigFiles = { readText: (path) => Promise.resolve(texts[path]) };
  const { config, warnings } = await loadConfig({
    homeDir: "/h",
    workspace: "/w",
    env: noEnv,
    files,
  });
  assert.equal(config.budget.session_usd, 3);
  assert.equal(config.budget.per_action_usd, 0.5);
  assert.deepEqual(warnings.map((w) => [w.key, w.line]), [["budget.session_usd", 1]]);
});
