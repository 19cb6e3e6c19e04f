import assert from "node:assert/strict";
import { DEFAULT_CONFIG, type PolicyConfig } from "../config/mod.ts";
import { Policy } from "./policy.ts";
import { describeAction, type SensitiveAction } from "./sensitive_action.ts";

const who = { principal: "default", session: "s1", workspace: "w1" };

function policy(overrides: Partial<PolicyConfig> = {}): Policy {
  return new Policy({ ...DEFAULT_CONFIG.security.policy, ...overrides });
}

function check(p: Policy, action: SensitiveAction): string | null {
  return p.check(action, describeAction(action))?.rule ?? null;
}

Deno.test("Policy.checkPath() rejects traversal remnants and non-canonical paths", () => {
  const p = policy();
  const cases: [string, string | null][] = [
    ["/work/repo/a.ts", null],
    ["/", null],
    ["/work/../etc/passwd", "path_traversal"],
    ["../../etc/passwd", "path_traversal"],
    ["/work/repo/..", "path_traversal"],
    ["work/repo/a.ts", "path_not_canonical"],
    ["/work//repo", "path_not_canonical"],
    ["/work/./repo", "path_not_canonical"],
    ["/work/repo/", "path_not_canonical"],
    ["/work/a\0b", "path_not_canonical"],
    ["/work/..a/b", null],
  ];
  for (const [path, rule] of cases) assert.equal(p.checkPath(path)?.rule ?? null, rule, path);
});

Deno.test("Policy.checkPath() denies a denied path, its contents and every path form of it", () => {
  const p = policy({
    denied_paths: [...DEFAULT_CONFIG.security.policy.denied_paths, "secrets", "/etc/shadow"],
  });
  const cases: [string, string | null][] = [
    ["/work/repo/.env", "denied_paths:**/.env"],
    ["/.env", "denied_paths:**/.env"],
    ["/home/u/.ssh/id_ed25519", "denied_paths:**/.ssh/**"],
    ["/work/repo/secrets", "denied_paths:secrets"],
    ["/work/repo/secrets/key.pem", "denied_paths:secrets"],
    ["/etc/shadow", "denied_paths:/etc/shadow"],
    ["/etc/shadowx", null],
    ["/work/repo/.envrc", null],
    ["/work/repo/env", null],
  ];
  for (const [path, rule] of cases) assert.equal(p.checkPath(path)?.rule ?? null, rule, path);
});

Deno.test("Policy.checkPath() enforces a non-empty allowed_paths list", () => {
  const p = policy({ allowed_paths: ["/work/repo", "/tmp/scratch/**"] });
  assert.equal(p.checkPath("/work/repo"), null);
  assert.equal(p.checkPath("/work/repo/src/a.ts"), null);
  assert.equal(p.checkPath("/tmp/scratch/x"), null);
  assert.equal(p.checkPath("/work/other/a.ts")?.rule, "allowed_paths");
  assert.equal(p.checkPath("/work/repo/.env")?.rule, "denied_paths:**/.env");
});

Deno.test("Policy fails closed on a denied path pattern that does not compile", () => {
  const p = policy({ denied_paths: ["a{b"] });
  assert.equal(p.checkPath("/anything")?.rule, "denied_paths:a{b");
  assert.equal(p.problems.length, 1);
});

Deno.test("Policy.checkArgv() blocks privilege escalation anywhere in a command line", () => {
  const p = policy({ denied_commands: ["curl"] });
  const cases: [string[], string | null][] = [
    [["git", "status"], null],
    [["sudo", "ls"], "privilege_escalation:sudo"],
    [["/usr/bin/sudo", "ls"], "privilege_escalation:sudo"],
    [["SUDO", "ls"], "privilege_escalation:sudo"],
    [["bash", "-c", "make && sudo make install"], "privilege_escalation:sudo"],
    [["sh", "-c", "x=1;su -c id"], "privilege_escalation:su"],
    [["bash", "-lc", "echo $(doas id)"], "privilege_escalation:doas"],
    [["bash", "-c", "`pkexec id`"], "privilege_escalation:pkexec"],
    [["bash", "-c", "s'u'do id"], "privilege_escalation:sudo"],
    [["bash", "-c", "s\\udo id"], "privilege_escalation:sudo"],
    [["bash", "-c", "sh -c 'sudo id'"], "privilege_escalation:sudo"],
    [["env", "FOO=1", "sudo", "id"], "privilege_escalation:sudo"],
    [["find", ".", "-exec", "sudo", "rm", "{}", ";"], "privilege_escalation:sudo"],
    [["xargs", "-I{}", "run0", "{}"], "privilege_escalation:run0"],
    [["echo", "sudoku"], null],
    [["curl", "https://x"], "denied_commands:curl"],
    [["bash", "-c", "ls | /usr/bin/curl x"], "denied_commands:curl"],
    [["ls", "a\0b"], "argv_invalid"],
  ];
  for (const [argv, rule] of cases) {
    assert.equal(p.checkArgv(argv)?.rule ?? null, rule, argv.join(" "));
  }
});

Deno.test("Policy.check() denies hosts in every numeric form and their subdomains", () => {
  const p = policy({
    denied_hosts: ["169.254.169.254", "metadata.google.internal", "*.evil.test"],
  });
  const net = (host: string): SensitiveAction => ({ ...who, kind: "net.request", host, port: 80 });
  const cases: [string, string | null][] = [
    ["api.github.com", null],
    ["169.254.169.254", "denied_hosts:169.254.169.254"],
    ["2852039166", "denied_hosts:169.254.169.254"],
    ["0xA9FEA9FE", "denied_hosts:169.254.169.254"],
    ["[::ffff:a9fe:a9fe]", "denied_hosts:169.254.169.254"],
    ["Metadata.Google.Internal.", "denied_hosts:metadata.google.internal"],
    ["x.evil.test", "denied_hosts:*.evil.test"],
    ["evil.test", "denied_hosts:*.evil.test"],
    ["notevil.test", null],
    ["a.com/x", "host_invalid"],
  ];
  for (const [host, rule] of cases) assert.equal(check(p, net(host)), rule, host);
});

Deno.test("Policy.check() applies path and command rules to tool calls, the shell included", () => {
  const p = policy();
  const tool = (extra: Record<string, unknown>): SensitiveAction =>
    ({ ...who, kind: "tool.execute", tool: "shell", native: true, ...extra }) as SensitiveAction;
  assert.equal(
    check(p, tool({ argv: ["bash", "-c", "cat x && sudo id"] })),
    "privilege_escalation:sudo",
  );
  assert.equal(check(p, tool({ paths: ["/work/repo/.env"] })), "denied_paths:**/.env");
  assert.equal(check(p, tool({ paths: ["/work/../etc"] })), "path_traversal");
  assert.equal(check(p, tool({ argv: ["ls"], paths: ["/work/repo/a"] })), null);
});

Deno.test("Policy.for() compiles a config once", () => {
  const config = { ...DEFAULT_CONFIG.security.policy };
  assert.equal(Policy.for(config), Policy.for(config));
});
