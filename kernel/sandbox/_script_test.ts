import assert from "node:assert/strict";
import {
  buildSandboxScript,
  envScript,
  READY_MARKER,
  type SandboxPlan,
  shellQuote,
  unshareArgs,
} from "./_script.ts";

const plan: SandboxPlan = {
  cmdDir: "/h/cmd/1",
  workspace: "/w/it's $(x)",
  lowers: ["/h/upper", "/w/it's $(x)"],
  cwd: "/w/it's $(x)/src",
  binds: [
    { kind: "dir", path: "/usr", remounts: [{ path: "/usr", flags: ["ro", "nosuid", "nodev"] }] },
    { kind: "symlink", path: "/bin", target: "usr/bin" },
  ],
  tmpBytes: 1024,
  maskFiles: ["/w/it's $(x)/.env"],
  maskDirs: ["/w/it's $(x)/secrets"],
  network: false,
  uid: 1000,
  gid: 1000,
};

async function sh(script: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("sh", { args: ["-c", script, "sh", ...args] }).output();
  return new TextDecoder().decode(out.stdout);
}

Deno.test("shellQuote() survives quotes, $, backticks and newlines in sh", async () => {
  for (const text of ["plain", "it's", "$(touch x) `y` $HOME", "a\nb", "'", ""]) {
    assert.equal(await sh(`printf %s ${shellQuote(text)}`), text);
  }
});

Deno.test("buildSandboxScript() quotes every path and keeps the protocol", async (t) => {
  const script = buildSandboxScript(plan);
  await t.step("hostile paths appear only single-quoted", () => {
    assert.ok(!script.includes(`"/w/it's`));
    assert.ok(script.includes(shellQuote("/w/it's $(x)/.env")));
    assert.ok(script.includes(shellQuote("/w/it's $(x)/src")));
  });
  await t.step("the overlay is stacked on the session upper, then the workspace", () => {
    assert.match(script, /lowerdir=\/h\/upper:\/w\/it'\\''s \$\(x\),upperdir=\/h\/cmd\/1\/upper/);
    assert.match(script, /workdir=\/h\/cmd\/1\/work,userxattr/);
  });
  await t.step("masks, binds, marker and the dropped capabilities", () => {
    assert.match(script, /mount --bind '\/h\/cmd\/1\/mask' "\$R"'\/w\/it'\\''s \$\(x\)\/\.env'/);
    assert.match(script, /astrid-mask "\$R"'\/w\/it'\\''s \$\(x\)\/secrets'/);
    assert.match(script, /mount -o remount,bind,ro,nosuid,nodev "\$R"'\/usr'/);
    assert.match(script, /ln -s 'usr\/bin' "\$R"'\/bin'/);
    assert.ok(script.includes(shellQuote(READY_MARKER)));
    assert.match(script, /--map-user=1000 --map-group=1000/);
    assert.match(script, /setpriv --no-new-privs -- /);
    assert.match(script, /ip link set lo up/);
  });
  await t.step("root drops its bounding set; a network plan skips loopback setup", () => {
    const rooted = buildSandboxScript({ ...plan, uid: 0, gid: 0, network: true });
    assert.match(rooted, /--bounding-set=-all --inh-caps=-all --ambient-caps=-all/);
    assert.doesNotMatch(rooted, /ip link set lo up/);
  });
  await t.step("a narrowed view mounts the overlay aside and binds each granted path", async () => {
    const narrowed = buildSandboxScript({
      ...plan,
      view: [{ path: "src", kind: "dir" }, { path: "docs/it's.md", kind: "file" }],
    });
    assert.match(narrowed, /userxattr' '\/h\/cmd\/1\/view'\n/);
    assert.match(narrowed, /astrid-view "\$R"'\/w\/it'\\''s \$\(x\)'/);
    assert.match(narrowed, /mount -o remount,ro,nosuid,nodev "\$R"'\/w\/it'\\''s \$\(x\)'/);
    assert.ok(narrowed.includes(`mount --bind '/h/cmd/1/view/src' "$R"`));
    assert.ok(narrowed.includes(shellQuote("/h/cmd/1/view/docs/it's.md")));
    assert.ok(
      narrowed.indexOf("remount,ro,nosuid,nodev") < narrowed.indexOf("cmd/1/view/src'"),
      "the root is read-only before the binds go in",
    );
    const out = await new Deno.Command("sh", { args: ["-n", "-c", narrowed] }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  });
  await t.step("the script is valid sh", async () => {
    const out = await new Deno.Command("sh", { args: ["-n", "-c", script] }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  });
});

Deno.test("unshareArgs() adds --net unless the network is allowed", () => {
  assert.ok(unshareArgs({ network: false }).includes("--net"));
  assert.ok(!unshareArgs({ network: true }).includes("--net"));
  assert.ok(unshareArgs({ network: true }).includes("--kill-child=SIGKILL"));
});

Deno.test("envScript() exports each variable quoted", async () => {
  const script = envScript({ A: "it's $HOME", B: "x\ny" });
  assert.equal(await sh(`${script} printf '%s|%s' "$A" "$B"`), "it's $HOME|x\ny");
});
