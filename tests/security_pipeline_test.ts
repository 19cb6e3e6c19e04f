/**
 * Proves the security pipeline end to end over the real embedded stack (SqliteStore, AuditLog,
 * TokenStore in a temp dir): the modes table for every action kind inside and outside the
 * workspace, policy blocks that survive tokens and Allow Always, approvals in each frontend
 * situation, allowances and tokens that outlive a restart, budgets, and an audit chain that
 * verifies with an entry for every decision.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { AuditLog } from "../kernel/audit/mod.ts";
import { mintToken, TokenStore, verifyToken } from "../kernel/capabilities/mod.ts";
import { ManualClock } from "../kernel/clock.ts";
import { type AstridConfig, DEFAULT_CONFIG, type SecurityMode } from "../kernel/config/mod.ts";
import { KeyPair } from "../kernel/crypto/mod.ts";
import { ManualTimers } from "../kernel/events/mod.ts";
import {
  type ApprovalAnswer,
  type ApprovalRequest,
  type Authorization,
  InProcessApprovalBroker,
  SecurityInterceptor,
  type SensitiveAction,
} from "../kernel/security/mod.ts";
import { SqliteStore } from "../kernel/storage/mod.ts";

const who = { principal: "default", session: "s1", workspace: "ws-e2e" };

function config(mode: SecurityMode, budget: Partial<AstridConfig["budget"]> = {}): AstridConfig {
  return {
    ...DEFAULT_CONFIG,
    security: { ...DEFAULT_CONFIG.security, mode },
    budget: { ...DEFAULT_CONFIG.budget, ...budget },
  };
}

interface Stack {
  store: SqliteStore;
  audit: AuditLog;
  tokens: TokenStore;
  broker: InProcessApprovalBroker;
  timers: ManualTimers;
  security: SecurityInterceptor;
  decisions: Authorization[];
  authorize(
    action: SensitiveAction,
    options?: { costUsd?: number; signal?: AbortSignal },
  ): Promise<Authorization>;
  close(): Promise<void>;
}

async function open(
  dir: string,
  key: KeyPair,
  clock: ManualClock,
  cfg: AstridConfig,
): Promise<Stack> {
  const store = await SqliteStore.open(join(dir, "state.db"));
  const audit = new AuditLog(store, { signer: key, clock });
  const tokens = new TokenStore(store, { clock, trustedIssuers: [key.publicKey] });
  const broker = new InProcessApprovalBroker();
  const timers = new ManualTimers(clock);
  const security = new SecurityInterceptor({
    config: cfg,
    audit,
    tokens,
    store,
    signer: key,
    broker,
    clock,
    timers,
  });
  const decisions: Authorization[] = [];
  return {
    store,
    audit,
    tokens,
    broker,
    timers,
    security,
    decisions,
    async authorize(action, options) {
      const auth = await security.authorize(action, options);
      decisions.push(auth);
      return auth;
    },
    async close() {
      await audit.close();
      await store.close();
    },
  };
}

/** An interactive frontend answering every request with `answer`. */
function frontend(stack: Stack, answer: ApprovalAnswer, pattern?: string) {
  const asked: ApprovalRequest[] = [];
  const handle = stack.broker.attach(who.principal, who.session, {
    interactive: true,
    onRequest: (q) => {
      asked.push(q);
      handle.respond(q.id, { answer: q.widening ? "allow_once" : answer, pattern });
    },
  });
  return { asked, handle };
}

/** Yields to the event loop until `done()` holds (signing and SQLite work run in between). */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !done(); i++) await new Promise((r) => setTimeout(r, 0));
  assert.ok(done(), "condition not reached");
}

const KINDS: [string, (inside: boolean) => SensitiveAction][] = [
  [
    "fs.read",
    (inside) => ({ ...who, kind: "fs.read", path: "/work/repo/a.ts", insideWorkspace: inside }),
  ],
  [
    "fs.write",
    (inside) => ({ ...who, kind: "fs.write", path: "/work/repo/a.ts", insideWorkspace: inside }),
  ],
  [
    "fs.delete",
    (inside) => ({ ...who, kind: "fs.delete", path: "/work/repo/a.ts", insideWorkspace: inside }),
  ],
  [
    "process.spawn",
    (inside) => ({
      ...who,
      kind: "process.spawn",
      argv: ["git", "status"],
      insideWorkspace: inside,
    }),
  ],
  [
    "net.request",
    (inside) => ({
      ...who,
      kind: "net.request",
      host: "api.github.com",
      port: 443,
      insideWorkspace: inside,
    }),
  ],
  [
    "tool.execute",
    (inside) => ({ ...who, kind: "tool.execute", tool: "read_file", insideWorkspace: inside }),
  ],
  ["tool.execute+native", (inside) => ({
    ...who,
    kind: "tool.execute",
    tool: "shell",
    native: true,
    insideWorkspace: inside,
  })],
  ["llm.generate", (inside) => ({
    ...who,
    kind: "llm.generate",
    provider: "local",
    model: "llama",
    promptChars: 400,
    maxTokens: 100,
    insideWorkspace: inside,
  })],
  ["capability.mint", (inside) => ({
    ...who,
    kind: "capability.mint",
    grant: { principal: "default", resource: "fs:/work/**", permissions: ["write"] },
    insideWorkspace: inside,
  })],
  ["capability.change", (inside) => ({
    ...who,
    kind: "capability.change",
    capsule: "weather",
    change: "net += api.weather.test",
    insideWorkspace: inside,
  })],
  ["identity.admin", (inside) => ({
    ...who,
    kind: "identity.admin",
    operation: "link",
    target: "telegram:42",
    insideWorkspace: inside,
  })],
];

// kind → [inside, outside] per mode: a = allowed by the mode, h = a human was asked.
const TABLE: Record<string, Record<SecurityMode, [string, string]>> = {
  "fs.read": { safe: ["a", "h"], guided: ["a", "a"], autonomous: ["a", "a"] },
  "fs.write": { safe: ["h", "h"], guided: ["h", "h"], autonomous: ["a", "a"] },
  "fs.delete": { safe: ["h", "h"], guided: ["h", "h"], autonomous: ["a", "a"] },
  "process.spawn": { safe: ["h", "h"], guided: ["h", "h"], autonomous: ["a", "a"] },
  "net.request": { safe: ["h", "h"], guided: ["h", "h"], autonomous: ["a", "a"] },
  "tool.execute": { safe: ["h", "h"], guided: ["a", "a"], autonomous: ["a", "a"] },
  "tool.execute+native": { safe: ["h", "h"], guided: ["h", "h"], autonomous: ["a", "a"] },
  "llm.generate": { safe: ["a", "a"], guided: ["a", "a"], autonomous: ["a", "a"] },
  "capability.mint": { safe: ["h", "h"], guided: ["h", "h"], autonomous: ["h", "h"] },
  "capability.change": { safe: ["h", "h"], guided: ["h", "h"], autonomous: ["h", "h"] },
  "identity.admin": { safe: ["h", "h"], guided: ["h", "h"], autonomous: ["h", "h"] },
};

Deno.test("security pipeline end to end over SqliteStore, AuditLog and TokenStore", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "astrid-security-" });
  const key = await KeyPair.generate();
  const clock = new ManualClock();
  const all: Authorization[] = [];
  try {
    await t.step("each mode decides the table of every kind, inside and outside", async () => {
      for (const mode of ["safe", "guided", "autonomous"] as const) {
        const stack = await open(dir, key, clock, config(mode));
        const { asked } = frontend(stack, "allow_once");
        for (const [name, make] of KINDS) {
          for (const [i, inside] of [true, false].entries()) {
            const before = asked.length;
            const auth = await stack.authorize(make(inside));
            const want = TABLE[name][mode][i];
            const cell = `${mode} ${name} inside=${inside}`;
            assert.equal(auth.allowed, true, cell);
            if (want === "a") {
              assert.deepEqual([auth.layer, auth.decider], ["mode", "mode"], cell);
              assert.equal(asked.length, before, cell);
            } else {
              assert.deepEqual([auth.layer, auth.decider, auth.answer], [
                "approval",
                "human",
                "allow_once",
              ], cell);
              assert.equal(asked.length, before + 1, cell);
            }
          }
        }
        // yolo is autonomous once the config is merged; policy blocks still hold in it.
        const env = await stack.authorize({
          ...who,
          kind: "fs.read",
          path: "/work/repo/.env",
          insideWorkspace: true,
        });
        assert.deepEqual([env.allowed, env.layer, env.rule], [
          false,
          "policy",
          "denied_paths:**/.env",
        ]);
        all.push(...stack.decisions);
        await stack.close();
      }
    });

    await t.step(
      "policy blocks survive a valid token and an Allow Always, across a restart",
      async () => {
        let stack = await open(dir, key, clock, config("safe"));
        await stack.tokens.add(
          await mintToken(key, {
            principal: "default",
            resource: "process:*",
            permissions: ["execute"],
            audit_entry_id: "default:0",
          }, { clock }),
        );
        // Allow Always with a pattern that covers the whole repo, .env included.
        const { asked } = frontend(stack, "allow_always", "fs:/work/repo/**");
        const grant = await stack.authorize({
          ...who,
          kind: "fs.write",
          path: "/work/repo/src/a.ts",
          insideWorkspace: true,
        });
        assert.ok(grant.tokenId);
        await stack.close();
        stack = await open(dir, key, clock, config("safe"));
        frontend(stack, "allow_always");
        const blocked: SensitiveAction[] = [
          { ...who, kind: "process.spawn", argv: ["sudo", "rm", "-rf", "/"] },
          { ...who, kind: "process.spawn", argv: ["bash", "-c", "make && sudo make install"] },
          {
            ...who,
            kind: "tool.execute",
            tool: "shell",
            native: true,
            argv: ["sh", "-c", "doas id"],
          },
          { ...who, kind: "fs.write", path: "/work/repo/.env", insideWorkspace: true },
          { ...who, kind: "fs.write", path: "/work/repo/src/../.env", insideWorkspace: true },
          { ...who, kind: "net.request", host: "2852039166", port: 80 },
        ];
        for (const action of blocked) {
          const auth = await stack.authorize(action);
          assert.deepEqual(
            [auth.allowed, auth.layer, auth.decider],
            [false, "policy", "policy"],
            JSON.stringify(action),
          );
        }
        const viaToken = await stack.authorize({
          ...who,
          kind: "fs.write",
          path: "/work/repo/src/a.ts",
          insideWorkspace: true,
        });
        assert.deepEqual([viaToken.layer, viaToken.rule], ["token", grant.tokenId]);
        const token = (await stack.tokens.get("default", grant.tokenId!))!;
        assert.equal(token.resource, "fs:/work/repo/**");
        await verifyToken(token, {
          principal: "default",
          permission: "write",
          resource: "fs:/work/repo/src/a.ts",
        }, { clock, trustedIssuers: [key.publicKey] });
        assert.equal(asked.length, 1);
        all.push(...stack.decisions);
        await stack.close();
      },
    );

    await t.step(
      "Allow Session holds across frontends and ends; Allow Workspace outlives a restart",
      async () => {
        let stack = await open(dir, key, clock, config("guided"));
        const tui = frontend(stack, "allow_session");
        const web = frontend(stack, "allow_session");
        // Not covered by the tokens of the previous step (write on fs:/work/repo/**, execute on
        // process:*): a delete.
        const action: SensitiveAction = {
          ...who,
          kind: "fs.delete",
          path: "/work/repo/tmp.txt",
          insideWorkspace: true,
        };
        const first = await stack.authorize(action);
        assert.equal(first.answer, "allow_session");
        assert.equal(tui.asked.length + web.asked.length >= 1, true);
        const asks = tui.asked.length;
        const second = await stack.authorize(action);
        assert.deepEqual([second.layer, second.rule], ["allowance", first.allowanceId]);
        assert.equal(tui.asked.length, asks);
        tui.handle.detach();
        web.handle.detach();
        assert.equal(stack.security.endSession("default", "s1"), 1);
        const ws = frontend(stack, "allow_workspace");
        const net: SensitiveAction = {
          ...who,
          kind: "net.request",
          host: "registry.npmjs.org",
          port: 443,
        };
        const granted = await stack.authorize(net);
        assert.equal(granted.answer, "allow_workspace");
        assert.equal(ws.asked.length, 1);
        await stack.close();
        stack = await open(dir, key, clock, config("guided"));
        stack.broker.attach("default", "s7", { interactive: false }); // headless: must not be asked
        const later = await stack.authorize({ ...net, session: "s7" });
        assert.deepEqual([later.allowed, later.layer, later.rule], [
          true,
          "allowance",
          granted.allowanceId,
        ]);
        const gone = await stack.authorize({ ...action, session: "s7" });
        assert.deepEqual([gone.allowed, gone.decider, gone.unanswerable], [
          false,
          "headless",
          true,
        ]);
        all.push(...stack.decisions);
        await stack.close();
      },
    );

    await t.step(
      "budgets: reserved before the call, held while asking, refunded, persisted",
      async () => {
        let stack = await open(
          dir,
          key,
          clock,
          config("safe", { workspace_usd: 0.05, per_action_usd: 0.03 }),
        );
        const gen: SensitiveAction = {
          ...who,
          kind: "llm.generate",
          provider: "openai",
          model: "gpt-4o",
          promptChars: 4000,
          maxTokens: 2000,
        }; // $0.0025 + $0.02
        const a = await stack.authorize(gen);
        assert.equal(a.reservation!.amountUsd, 0.0225);
        await a.reservation!.commit(0.02);
        // A tool call with a cost waits for a human with its estimate held; abort refunds it.
        const controller = new AbortController();
        const pending = stack.authorize({ ...who, kind: "tool.execute", tool: "x" }, {
          costUsd: 0.02,
          signal: controller.signal,
        });
        await until(() => stack.broker.pending().length === 1);
        assert.equal((await stack.security.budget.usage(who)).workspaceHeldUsd, 0.02);
        controller.abort();
        const cancelled = await pending;
        assert.deepEqual([cancelled.allowed, cancelled.decider], [false, "cancelled"]);
        assert.equal((await stack.security.budget.usage(who)).workspaceHeldUsd, 0);
        await stack.close();
        stack = await open(
          dir,
          key,
          clock,
          config("safe", { workspace_usd: 0.05, per_action_usd: 0.03 }),
        );
        assert.equal(
          (await stack.security.budget.usage({ ...who, session: "new" })).workspaceSpentUsd,
          0.02,
        );
        const b = await stack.authorize({ ...gen, session: "new" });
        await b.reservation!.commit(0.0225);
        const c = await stack.authorize({ ...gen, session: "new2" });
        assert.deepEqual([c.allowed, c.rule, c.budgetExhausted], [
          false,
          "budget.workspace_usd",
          true,
        ]);
        all.push(...stack.decisions);
        await stack.close();
      },
    );

    await t.step(
      "no frontend at all: queued with a timeout, then denied; headless never waits",
      async () => {
        const stack = await open(dir, key, clock, config("guided"));
        const pending = stack.authorize({
          ...who,
          session: "cron",
          kind: "fs.delete",
          path: "/work/repo/out.txt",
          insideWorkspace: true,
        });
        await until(() => stack.broker.pending().length === 1);
        stack.timers.advance(DEFAULT_CONFIG.security.approval.timeout_secs * 1000);
        const timedOut = await pending;
        assert.deepEqual([timedOut.allowed, timedOut.decider, timedOut.timedOut], [
          false,
          "timeout",
          true,
        ]);
        stack.broker.attach("default", "cli", { interactive: false });
        const headless = await stack.authorize({
          ...who,
          session: "cli",
          kind: "fs.delete",
          path: "/work/repo/out.txt",
          insideWorkspace: true,
        });
        assert.deepEqual([headless.allowed, headless.unanswerable], [false, true]);
        stack.broker.attach("default", "yes", { interactive: false, assumeYes: true });
        const yes = await stack.authorize({
          ...who,
          session: "yes",
          kind: "fs.delete",
          path: "/work/repo/out.txt",
          insideWorkspace: true,
        });
        assert.deepEqual([yes.allowed, yes.decider, yes.tokenId], [
          true,
          "operator_flag",
          undefined,
        ]);
        const widen = await stack.authorize({
          ...who,
          session: "yes",
          kind: "identity.admin",
          operation: "create_user",
          target: "eve",
        });
        assert.deepEqual([widen.allowed, widen.unanswerable], [false, true]);
        all.push(...stack.decisions);
        await stack.close();
      },
    );

    await t.step("every decision has a durable audit entry and the chain verifies", async () => {
      const store = await SqliteStore.open(join(dir, "state.db"));
      try {
        const audit = new AuditLog(store, { signer: key, clock });
        const rows = await audit.list("default", { limit: 10_000 });
        const byId = new Map(rows.map((e) => [e.id, e]));
        for (const d of all) {
          const row = byId.get(d.auditEntryId);
          assert.ok(row, d.auditEntryId);
          assert.equal(row.decision, d.allowed ? "allowed" : "denied");
          assert.deepEqual([row.layer, row.rule, row.decider], [d.layer, d.rule, d.decider]);
        }
        const deferred = rows.filter((e) => e.decision === "deferred");
        assert.ok(deferred.length > 0);
        assert.ok(deferred.every((e) => e.layer === "approval" && e.rule.length === 32));
        const report = await audit.verify("default", key.publicKey);
        assert.equal(report.ok, true, report.broken?.message);
        assert.equal(report.verified, rows.length);
      } finally {
        await store.close();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
