import assert from "node:assert/strict";
import { mintToken, parseToken, verifyToken } from "../capabilities/mod.ts";
import type { AuditEntry } from "../audit/mod.ts";
import { hasCode } from "../errors.ts";
import type { ApprovalAnswer, ApprovalRequest } from "./approval.ts";
import { SecurityCode } from "./errors.ts";
import { fs, type Rig, rig, until, who } from "./_test_helpers.ts";
import { SecurityInterceptor } from "./security_interceptor.ts";
import type { SensitiveAction } from "./sensitive_action.ts";

/** Attaches an interactive frontend answering every request with `answer`; records requests. */
function human(r: Rig, answer: ApprovalAnswer, extra: { pattern?: string; session?: string } = {}) {
  const asked: ApprovalRequest[] = [];
  const handle = r.broker.attach(who.principal, extra.session ?? who.session, {
    id: "tui",
    interactive: true,
    onRequest: (req) => {
      asked.push(req);
      handle.respond(req.id, { answer, pattern: extra.pattern });
    },
  });
  return { asked, handle };
}

async function entries(r: Rig): Promise<AuditEntry[]> {
  return await r.audit.list(who.principal, { limit: 1000 });
}

const llm = (promptChars: number, maxTokens: number, model = "gpt-4o"): SensitiveAction => ({
  ...who,
  kind: "llm.generate",
  provider: "openai",
  model,
  promptChars,
  maxTokens,
});

Deno.test("authorize() lets the mode allow and audits layer mode", async () => {
  const r = await rig({ mode: "guided" });
  const auth = await r.security.authorize(fs("fs.read", "/w/a.ts", false));
  assert.equal(auth.allowed, true);
  assert.deepEqual([auth.layer, auth.rule, auth.decider], ["mode", "guided/read_outside", "mode"]);
  const [entry] = await entries(r);
  assert.equal(entry.id, auth.auditEntryId);
  assert.deepEqual([entry.decision, entry.layer, entry.rule, entry.decider], [
    "allowed",
    "mode",
    "guided/read_outside",
    "mode",
  ]);
  assert.equal(entry.session, "s1");
  assert.equal(JSON.parse(entry.details).workspace, "w1");
});

Deno.test("authorize() keeps a policy block over a valid token and an Allow Always", async () => {
  const r = await rig({ mode: "autonomous" });
  await r.tokens.add(
    await mintToken(r.key, {
      principal: "default",
      resource: "fs:/w/**",
      permissions: ["read", "write"],
      audit_entry_id: "default:0",
    }, { clock: r.clock }),
  );
  const { asked } = human(r, "allow_always", { pattern: "fs:/w/**" });
  for (
    const action of [
      fs("fs.read", "/w/.env"),
      fs("fs.write", "/w/.ssh/config"),
      fs("fs.read", "/w/x/../.env"),
    ]
  ) {
    const auth = await r.security.authorize(action);
    assert.equal(auth.allowed, false);
    assert.equal(auth.layer, "policy");
    assert.equal(auth.decider, "policy");
  }
  // Allow Always on a sibling, with a pattern covering .env, changes nothing either.
  const safe = await rig({ mode: "safe" }, { store: r.store, key: r.key, clock: r.clock });
  const tui = human(safe, "allow_always", { pattern: "fs:/w/**" });
  const first = await safe.security.authorize(fs("fs.delete", "/w/b.ts"));
  assert.equal(first.allowed, true);
  assert.equal(tui.asked.length, 1);
  const env = await safe.security.authorize(fs("fs.delete", "/w/.env"));
  assert.deepEqual([env.allowed, env.layer, env.rule], [false, "policy", "denied_paths:**/.env"]);
  assert.equal(tui.asked.length, 1);
  assert.equal(asked.length, 0);
});

Deno.test("authorize() lets a covering token answer an ask without asking", async () => {
  const r = await rig({ mode: "safe" });
  const token = await mintToken(r.key, {
    principal: "default",
    resource: "process:git",
    permissions: ["execute"],
    audit_entry_id: "default:0",
  }, { clock: r.clock });
  await r.tokens.add(token);
  const { asked } = human(r, "deny");
  const auth = await r.security.authorize({ ...who, kind: "process.spawn", argv: ["git", "push"] });
  assert.deepEqual([auth.allowed, auth.layer, auth.rule, auth.decider], [
    true,
    "token",
    token.id,
    "token",
  ]);
  assert.equal(auth.tokenId, token.id);
  assert.equal(asked.length, 0);
  const sudo = await r.security.authorize({
    ...who,
    kind: "process.spawn",
    argv: ["git", "-c", "x", "sudo"],
  });
  assert.equal(sudo.layer, "policy");
});

Deno.test("authorize() Allow Session creates an allowance honoured by every frontend until endSession", async () => {
  const r = await rig({ mode: "guided" });
  const tui = human(r, "allow_session");
  const web: ApprovalRequest[] = [];
  r.broker.attach("default", "s1", { interactive: true, onRequest: (q) => web.push(q) });
  const action = fs("fs.write", "/w/a.ts");
  const first = await r.security.authorize(action);
  assert.equal(first.allowed, true);
  assert.equal(first.answer, "allow_session");
  assert.ok(first.allowanceId);
  assert.equal(tui.asked.length, 1);
  assert.equal(web.length, 1); // both frontends saw the question
  const second = await r.security.authorize(action);
  assert.deepEqual([second.layer, second.rule, second.decider], [
    "allowance",
    first.allowanceId,
    "allowance",
  ]);
  assert.equal(tui.asked.length, 1); // the broker was not called again
  // Another session of the same principal is not covered.
  const other = await r.security.evaluate({ ...action, session: "s2" });
  assert.equal(other.outcome, "ask");
  assert.equal(r.security.endSession("default", "s1"), 1);
  await r.security.authorize(action);
  assert.equal(tui.asked.length, 2);
});

Deno.test("authorize() Allow Workspace persists for a fresh interceptor on the same store", async () => {
  const r = await rig({ mode: "safe" });
  const tui = human(r, "allow_workspace");
  const action: SensitiveAction = {
    ...who,
    kind: "net.request",
    host: "api.github.com",
    port: 443,
  };
  const first = await r.security.authorize(action);
  assert.equal(first.answer, "allow_workspace");
  assert.equal(tui.asked.length, 1);
  const fresh = await rig({ mode: "safe" }, { store: r.store, key: r.key, clock: r.clock });
  const second = await fresh.security.authorize({ ...action, session: "s9" });
  assert.deepEqual([second.allowed, second.layer, second.rule], [
    true,
    "allowance",
    first.allowanceId,
  ]);
  const elsewhere = await fresh.security.evaluate({ ...action, workspace: "w2" });
  assert.equal(elsewhere.outcome, "ask");
});

Deno.test("authorize() Allow Always mints a token that verifies and answers next time", async () => {
  const r = await rig({ mode: "safe" });
  const tui = human(r, "allow_always");
  const action: SensitiveAction = { ...who, kind: "tool.execute", tool: "read_file" };
  const first = await r.security.authorize(action);
  assert.equal(first.allowed, true);
  assert.ok(first.tokenId);
  const token = (await r.tokens.get("default", first.tokenId!))!;
  assert.equal(token.audit_entry_id, first.auditEntryId);
  assert.equal(token.scope, "always");
  assert.deepEqual(token.permissions, ["execute"]);
  await verifyToken(parseToken(JSON.stringify(token)), {
    principal: "default",
    permission: "execute",
    resource: "tool:read_file",
  }, { clock: r.clock, trustedIssuers: [r.key.publicKey] });
  const second = await r.security.authorize({ ...action, session: "s2" });
  assert.deepEqual([second.layer, second.rule, second.decider], ["token", token.id, "token"]);
  assert.equal(tui.asked.length, 1);
  const rows = await entries(r);
  assert.equal(rows.at(-1)!.layer, "token");
  assert.equal(rows.at(-1)!.rule, token.id);
});

Deno.test("authorize() denies at once and unanswerable when only headless frontends are attached", async () => {
  const r = await rig({ mode: "guided" });
  r.broker.attach("default", "s1", { interactive: false });
  const auth = await r.security.authorize(fs("fs.write", "/w/a.ts"));
  assert.deepEqual([auth.allowed, auth.decider, auth.unanswerable], [false, "headless", true]);
  const rows = await entries(r);
  assert.deepEqual(rows.map((e) => e.decision), ["denied"]); // no deferred entry, no wait
  assert.equal(r.timers.pending, 0);
});

Deno.test("authorize() takes --yes as Allow Once, never for policy or widening actions", async () => {
  const r = await rig({ mode: "safe" });
  r.broker.attach("default", "s1", { interactive: false, assumeYes: true });
  const write = await r.security.authorize(fs("fs.write", "/w/a.ts"));
  assert.deepEqual(
    [write.allowed, write.layer, write.rule, write.decider, write.answer],
    [true, "approval", "--yes", "operator_flag", "allow_once"],
  );
  assert.equal(write.tokenId, undefined);
  assert.deepEqual(await r.tokens.list("default"), []);
  assert.equal((await r.security.evaluate(fs("fs.write", "/w/a.ts"))).outcome, "ask"); // no allowance
  const env = await r.security.authorize(fs("fs.write", "/w/.env"));
  assert.deepEqual([env.allowed, env.layer], [false, "policy"]);
  const mint = await r.security.authorize({
    ...who,
    kind: "capability.mint",
    grant: { principal: "default", resource: "fs:/**", permissions: ["write"] },
  });
  assert.deepEqual([mint.allowed, mint.decider, mint.unanswerable], [false, "headless", true]);
});

Deno.test("authorize() asks a human for widening actions whatever the mode, token or answer scope", async () => {
  const r = await rig({ mode: "autonomous" });
  await r.tokens.add(
    await mintToken(r.key, {
      principal: "default",
      resource: "**",
      permissions: ["admin"],
      audit_entry_id: "default:0",
    }, { clock: r.clock }),
  );
  const asked: ApprovalRequest[] = [];
  const tui = r.broker.attach("default", "s1", {
    interactive: true,
    onRequest: (q) => {
      asked.push(q);
      assert.throws(
        () => tui.respond(q.id, { answer: "allow_session" }),
        (err: unknown) => hasCode(err, SecurityCode.APPROVAL_ANSWER_INVALID),
      );
      tui.respond(q.id, { answer: "allow_once" });
    },
  });
  const actions: SensitiveAction[] = [
    {
      ...who,
      kind: "capability.mint",
      grant: { principal: "default", resource: "fs:/**", permissions: ["write"] },
    },
    { ...who, kind: "capability.change", capsule: "weather", change: "net += *" },
    { ...who, kind: "identity.admin", operation: "create_user", target: "eve" },
  ];
  for (const action of actions) {
    for (let i = 0; i < 2; i++) {
      const auth = await r.security.authorize(action);
      assert.deepEqual([auth.allowed, auth.layer, auth.decider], [true, "approval", "human"]);
    }
  }
  assert.equal(asked.length, 6);
  assert.deepEqual(asked[0].answers, ["allow_once", "deny"]);
  assert.equal(asked[0].widening, true);
});

Deno.test("authorize() queues with no frontend attached, then denies on timeout", async () => {
  const r = await rig({ mode: "guided", timeout_secs: 30 });
  const pending = r.security.authorize(fs("fs.write", "/w/a.ts"));
  await until(() => r.broker.pending().length === 1);
  const [deferred] = await entries(r);
  assert.deepEqual([deferred.decision, deferred.layer, deferred.decider], [
    "deferred",
    "approval",
    "queue",
  ]);
  r.timers.advance(29_999);
  await Promise.resolve();
  assert.equal(r.broker.pending().length, 1);
  r.timers.advance(1);
  const auth = await pending;
  assert.deepEqual([auth.allowed, auth.decider, auth.timedOut, auth.unanswerable], [
    false,
    "timeout",
    true,
    false,
  ]);
  assert.equal(auth.rule, deferred.rule);
  assert.equal(r.broker.pending().length, 0);
});

Deno.test("authorize() shows a queued request to a frontend that attaches before the timeout", async () => {
  const r = await rig({ mode: "guided" });
  const pending = r.security.authorize(fs("fs.write", "/w/a.ts"));
  await until(() => r.broker.pending().length === 1);
  human(r, "allow_once");
  const auth = await pending;
  assert.deepEqual([auth.allowed, auth.decider, auth.answer], [true, "human", "allow_once"]);
  assert.equal(r.timers.pending, 0);
});

Deno.test("authorize() refunds the held budget when the human denies", async () => {
  const r = await rig({ mode: "safe" });
  const reserved: number[] = [];
  const tui = r.broker.attach("default", "s1", {
    interactive: true,
    onRequest: async (q) => {
      reserved.push((await r.security.budget.usage(who)).sessionHeldUsd, q.costUsd);
      tui.respond(q.id, { answer: "deny", reason: "not now" });
    },
  });
  const auth = await r.security.authorize({ ...who, kind: "tool.execute", tool: "x" }, {
    costUsd: 0.25,
  });
  assert.deepEqual([auth.allowed, auth.decider, auth.answer], [false, "human", "deny"]);
  assert.match(auth.reason, /not now/);
  assert.deepEqual(reserved, [0.25, 0.25]);
  assert.equal(auth.reservation, null);
  assert.equal((await r.security.budget.usage(who)).sessionHeldUsd, 0);
});

Deno.test("authorize() refunds the budget and audits cancelled when aborted while pending", async () => {
  const r = await rig({ mode: "safe" });
  const controller = new AbortController();
  const pending = r.security.authorize(
    { ...who, kind: "tool.execute", tool: "x" },
    { costUsd: 0.5, signal: controller.signal },
  );
  await until(() => r.broker.pending().length === 1);
  assert.equal((await r.security.budget.usage(who)).sessionHeldUsd, 0.5);
  controller.abort();
  const auth = await pending;
  assert.deepEqual([auth.allowed, auth.decider, auth.cancelled], [false, "cancelled", true]);
  assert.equal((await r.security.budget.usage(who)).sessionHeldUsd, 0);
  assert.equal(r.broker.pending().length, 0);
  assert.equal(r.timers.pending, 0);
  const rows = await entries(r);
  assert.deepEqual(rows.map((e) => `${e.decision}/${e.decider}`), [
    "deferred/queue",
    "denied/cancelled",
  ]);
});

Deno.test("authorize() reserves llm.generate before the call and refuses unknown prices", async () => {
  const r = await rig({ mode: "guided", session_usd: 0.02, per_action_usd: 0.015 });
  const auth = await r.security.authorize(llm(4000, 1000)); // $0.0125
  assert.equal(auth.allowed, true);
  assert.equal(auth.reservation?.amountUsd, 0.0125);
  await auth.reservation!.commit(0.01);
  assert.equal((await r.security.budget.usage(who)).sessionSpentUsd, 0.01);
  const big = await r.security.authorize(llm(4000, 1400)); // $0.0165 > per action
  assert.deepEqual([big.allowed, big.layer, big.rule, big.budgetExhausted], [
    false,
    "budget",
    "budget.per_action_usd",
    true,
  ]);
  const second = await r.security.authorize(llm(4000, 1000));
  assert.deepEqual([second.allowed, second.rule], [false, "budget.session_usd"]);
  const unknown = await r.security.authorize(llm(4, 1, "gpt-9"));
  assert.deepEqual([unknown.allowed, unknown.layer, unknown.rule, unknown.budgetExhausted], [
    false,
    "budget",
    "pricing",
    false,
  ]);
});

Deno.test("authorize() covers a waiting identical request once Allow Session is given", async () => {
  const r = await rig({ mode: "guided" });
  const asked: ApprovalRequest[] = [];
  const tui = r.broker.attach("default", "s1", {
    interactive: true,
    onRequest: (q) => asked.push(q),
  });
  const action = fs("fs.write", "/w/a.ts");
  const a = r.security.authorize(action);
  const b = r.security.authorize(action);
  await until(() => asked.length === 2);
  tui.respond(asked[0].id, { answer: "allow_session" });
  const [first, second] = await Promise.all([a, b]);
  assert.equal(first.decider, "human");
  assert.deepEqual([second.allowed, second.layer, second.rule], [
    true,
    "allowance",
    first.allowanceId,
  ]);
  assert.equal(r.broker.pending().length, 0);
});

Deno.test("authorize() rejects and holds nothing when the audit entry cannot be written", async () => {
  const r = await rig({ mode: "autonomous" });
  await r.audit.close();
  await assert.rejects(
    r.security.authorize({ ...who, kind: "tool.execute", tool: "x" }, { costUsd: 0.1 }),
    /closed/,
  );
  assert.equal((await r.security.budget.usage(who)).sessionHeldUsd, 0);
});

Deno.test("authorize() rejects a malformed action with ACTION_INVALID", async () => {
  const r = await rig();
  await assert.rejects(
    r.security.authorize({ ...who, kind: "fs.read" } as unknown as SensitiveAction),
    (err: unknown) => hasCode(err, SecurityCode.ACTION_INVALID),
  );
});

Deno.test("SecurityInterceptor takes a per-workspace config resolver", async () => {
  const r = await rig();
  const strict = new SecurityInterceptor({
    config: ({ workspace }) =>
      workspace === "w1"
        ? { ...r.config, security: { ...r.config.security, mode: "safe" } }
        : r.config,
    audit: r.audit,
    tokens: r.tokens,
    store: r.store,
    signer: r.key,
    broker: r.broker,
    clock: r.clock,
    timers: r.timers,
  });
  assert.equal((await strict.evaluate(fs("fs.read", "/x", false))).outcome, "ask");
  assert.equal(
    (await strict.evaluate({ ...fs("fs.read", "/x", false), workspace: "w2" })).outcome,
    "allow",
  );
});

Deno.test("evaluate() decides without auditing, reserving or asking", async () => {
  const r = await rig({ mode: "guided" });
  const { asked } = human(r, "allow_once");
  assert.equal((await r.security.evaluate(fs("fs.write", "/w/a.ts"))).outcome, "ask");
  assert.equal((await r.security.evaluate(fs("fs.read", "/w/.env"))).outcome, "deny");
  assert.equal(
    (await r.security.evaluate({ ...who, kind: "identity.admin", operation: "x", target: "y" }))
      .outcome,
    "human",
  );
  assert.equal((await r.security.evaluate(llm(4, 1, "nope"))).rule, "pricing");
  assert.equal(asked.length, 0);
  assert.deepEqual(await entries(r), []);
});

Deno.test("every authorize() decision has an audit entry and the chain verifies", async () => {
  const r = await rig({ mode: "guided" });
  human(r, "allow_session");
  const decisions = await Promise.all([
    r.security.authorize(fs("fs.read", "/w/a.ts")),
    r.security.authorize(fs("fs.write", "/w/b.ts")),
    r.security.authorize(fs("fs.read", "/w/.env")),
    r.security.authorize({ ...who, kind: "process.spawn", argv: ["sudo", "x"] }),
    r.security.authorize(llm(40, 10)),
  ]);
  const rows = await entries(r);
  for (const d of decisions) {
    const row = rows.find((e) => e.id === d.auditEntryId)!;
    assert.equal(row.decision, d.allowed ? "allowed" : "denied");
    assert.deepEqual([row.layer, row.rule, row.decider], [d.layer, d.rule, d.decider]);
  }
  assert.equal(rows.filter((e) => e.decision === "deferred").length, 1);
  const report = await r.audit.verify("default", r.key.publicKey);
  assert.equal(report.ok, true, report.broken?.message);
  assert.equal(report.verified, rows.length);
});

Deno.test("authorize() never overspends under 1,000 parallel llm.generate calls", async () => {
  // Each call reserves $0.0125 (4,000 prompt chars + 1,000 output tokens of gpt-4o).
  const r = await rig({ mode: "autonomous", session_usd: 1, workspace_usd: 1, per_action_usd: 1 });
  const auths = await Promise.all(
    Array.from({ length: 1000 }, () => r.security.authorize(llm(4000, 1000))),
  );
  const allowed = auths.filter((a) => a.allowed);
  assert.equal(allowed.length, 80);
  assert.ok(
    auths.filter((a) => !a.allowed).every((a) =>
      a.rule === "budget.session_usd" && a.budgetExhausted
    ),
  );
  assert.equal((await r.security.budget.usage(who)).sessionHeldUsd, 1);
  await Promise.all(allowed.map((a) => a.reservation!.commit(0.0125)));
  const usage = await r.security.budget.usage(who);
  assert.deepEqual([usage.sessionSpentUsd, usage.workspaceSpentUsd, usage.sessionHeldUsd], [
    1,
    1,
    0,
  ]);
  assert.equal((await r.audit.verify("default", r.key.publicKey)).verified, 1000);
});
