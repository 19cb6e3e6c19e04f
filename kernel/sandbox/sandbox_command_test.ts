import assert from "node:assert/strict";
import { SandboxCode, SandboxError } from "./errors.ts";
import { checkCommand, commandEnv } from "./sandbox_command.ts";

const invalid = (field: string) => (err: unknown) =>
  err instanceof SandboxError && err.code === SandboxCode.SANDBOX_INVALID &&
  err.data?.field === field;

Deno.test("checkCommand() refuses malformed argv and env", () => {
  assert.throws(() => checkCommand({ argv: [] }), invalid("argv"));
  assert.throws(() => checkCommand({ argv: [""] }), invalid("argv"));
  assert.throws(() => checkCommand({ argv: ["a\0b"] }), invalid("argv"));
  assert.throws(() => checkCommand({ argv: ["ls"], env: { "A=B": "x" } }), invalid("env"));
  assert.throws(() => checkCommand({ argv: ["ls"], env: { A: "x\0" } }), invalid("env"));
  checkCommand({ argv: ["ls", "-la"], env: { LD_PRELOAD: "x", _A1: "" } });
});

Deno.test("commandEnv() gives defaults the caller may override and nothing of the daemon", () => {
  const env = commandEnv({ HOME: "/tmp/h", FOO: "1" });
  assert.equal(env.HOME, "/tmp/h");
  assert.equal(env.PATH, "/usr/local/bin:/usr/bin:/bin");
  assert.equal(env.FOO, "1");
  assert.equal(Object.keys(env).length, 5);
});
