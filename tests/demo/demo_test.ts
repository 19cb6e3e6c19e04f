/**
 * `deno task demo` end to end: runs `tests/demo/run_demo.ts` as its own process with no model key
 * set (so it starts the scripted OpenAI-compatible server), and checks its sections, the turn's
 * tool calls and approvals, the overlay diff before the commit, and its exit code.
 *
 * @module
 */
import assert from "node:assert/strict";

const DRIVER = new URL("./run_demo.ts", import.meta.url).pathname;

Deno.test("run_demo.ts runs one scripted agent turn end to end", async (t) => {
  const env = Deno.env.toObject();
  for (const k of ["ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ASTRID_HOME"]) delete env[k];
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", DRIVER],
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(res.stdout);
  const stderr = new TextDecoder().decode(res.stderr);
  const context = `stdout:\n${stdout}\nstderr:\n${stderr}`;

  await t.step("exits 0", () => {
    assert.equal(res.code, 0, context);
  });
  await t.step("says plainly that it uses the scripted server", () => {
    assert.match(stdout, /scripted OpenAI-compatible server .* at http:\/\/127\.0\.0\.1:\d+\/v1/);
  });
  await t.step("prints every named section in order of first appearance", () => {
    const names = ["setup", "request", "stream", "tool calls", "approval", "diff", "commit"];
    let at = -1;
    for (const name of [...names, "audit verify", "done"]) {
      const i = stdout.indexOf(`\n== ${name} ==\n`);
      assert.ok(i > at, `section "${name}" missing or out of order\n${context}`);
      at = i;
    }
  });
  await t.step("shows the three tool calls and their approvals", () => {
    for (const tool of ["read_file", "write_file", "run_shell"]) {
      assert.match(stdout, new RegExp(`→ ${tool} `), context);
    }
    assert.equal(stdout.match(/answered: allow_once/g)?.length, 2, context);
  });
  await t.step("shows summary.md only in the overlay before the commit and in it after", () => {
    assert.match(stdout, /added\s+summary\.md/, context);
    assert.match(stdout, /summary\.md does not exist yet/, context);
    assert.match(stdout, /summary\.md now exists/, context);
  });
  await t.step("verifies the audit chain", () => {
    assert.match(stdout, /ok\s+default: \d+ entries verified/, context);
  });
});
