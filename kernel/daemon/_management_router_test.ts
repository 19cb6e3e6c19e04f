import assert from "node:assert/strict";
import type { AuditInput, AuditLog } from "../audit/mod.ts";
import { ManualClock } from "../clock.ts";
import { EventBus, type JsonValue } from "../events/mod.ts";
import { DEFAULT_PRINCIPAL, principalId } from "../identity/mod.ts";
import {
  type CapsuleHost,
  EmptyCapsuleHost,
  type PromptContextSource,
  type TrustDecisionWire,
  type WorkspaceCapsuleWire,
  type WorkspaceTrustHost,
} from "./capsule_host.ts";
import { DaemonLog } from "./_daemon_log.ts";
import { managementRequest, ManagementRouter } from "./_management_router.ts";
import type { DaemonStatusWire } from "./protocol.ts";
import { SlidingWindowLimiter } from "./sliding_window_limiter.ts";

function setup(capsules: CapsuleHost = new EmptyCapsuleHost()) {
  const clock = new ManualClock(0);
  const bus = new EventBus({ clock });
  const audited: AuditInput[] = [];
  const audit = {
    append: (e: AuditInput) => (audited.push(e), Promise.resolve()),
  } as unknown as AuditLog;
  const stopped: string[] = [];
  const router = new ManagementRouter({
    bus,
    capsules,
    audit,
    log: DaemonLog.discard(clock),
    clock,
    reloadLimiter: new SlidingWindowLimiter(clock, { limit: 5, windowMs: 60_000 }),
    status: () => ({ pid: 1 }) as unknown as DaemonStatusWire,
    shutdown: (reason) => stopped.push(reason),
  });
  router.start();
  const ctx = { principal: DEFAULT_PRINCIPAL, source: { kind: "kernel", name: "test" } } as const;
  const ask = async (
    topic: string,
    params: Record<string, string> = {},
    principal: string = DEFAULT_PRINCIPAL,
  ): Promise<unknown> =>
    (await bus.request(`astrid.v1.request.${topic}`, params, {
      ctx: { ...ctx, principal: principalId(principal) },
      timeoutMs: 1_000,
    })).payload;
  return { clock, bus, router, audited, stopped, ask };
}

Deno.test("ManagementRouter answers astrid.v1.request.* on the bus", async (t) => {
  const { bus, router, audited, stopped, ask, clock } = setup();
  try {
    await t.step("read-only requests: ListCapsules, GetCommands, Status", async () => {
      assert.deepEqual(await ask("list_capsules"), {
        kind: "json",
        value: { ok: true, result: [] },
      });
      assert.deepEqual(await ask("get_commands"), {
        kind: "json",
        value: { ok: true, result: [] },
      });
      assert.deepEqual(await ask("status"), {
        kind: "json",
        value: { ok: true, result: { pid: 1 } },
      });
      assert.deepEqual(audited, []);
    });

    await t.step(
      "GetCapsuleMetadata: INVALID_PARAMS without a name, NOT_FOUND when unknown",
      async () => {
        const a = await ask("get_capsule_metadata");
        assert.equal(
          (a as { value: { error: { code: string } } }).value.error.code,
          "INVALID_PARAMS",
        );
        const b = await ask("get_capsule_metadata", { name: "weather" });
        assert.deepEqual(b, {
          kind: "json",
          value: {
            ok: false,
            error: {
              code: "NOT_FOUND",
              message: 'No capsule "weather" is loaded',
              data: { name: "weather" },
            },
          },
        });
      },
    );

    await t.step(
      "ReloadCapsules: five a minute, each audited, the sixth refused and audited",
      async () => {
        for (let i = 0; i < 5; i++) {
          const r = await ask("reload_capsules");
          assert.deepEqual(r, {
            kind: "json",
            value: { ok: true, result: { loaded: [], failed: [] } },
          });
        }
        const refused = (await ask("reload_capsules")) as {
          value: { ok: false; error: { code: string; data: { retry_after_ms: number } } };
        };
        assert.equal(refused.value.error.code, "RATE_LIMITED");
        assert.equal(refused.value.error.data.retry_after_ms, 60_000);
        assert.equal(audited.length, 6);
        assert.deepEqual(
          audited.map((e) => e.decision),
          ["allowed", "allowed", "allowed", "allowed", "allowed", "denied"],
        );
        assert.equal(audited[5].layer, "management");
        assert.equal(audited[5].rule, "rate_limit:5/60s");
        clock.advance(60_000);
        assert.equal(((await ask("reload_capsules")) as { value: { ok: boolean } }).value.ok, true);
      },
    );

    await t.step("Shutdown: audited, answered, then the daemon is told", async () => {
      const before = audited.length;
      const r = await ask("shutdown", { reason: "test" });
      assert.deepEqual(r, { kind: "json", value: { ok: true, result: { stopping: true } } });
      assert.deepEqual(stopped, ["test"]);
      assert.equal(audited[before].action, "daemon.shutdown");
      assert.equal(audited[before].decider, "operator");
    });

    await t.step("handle() serves the socket with the caller's principal", async () => {
      const out = await router.handle("ListCapsules", undefined, {
        principal: principalId("alice"),
        via: "client:c-1",
      });
      assert.deepEqual(out, { ok: true, result: [] });
    });

    await t.step("names parse in either form", () => {
      assert.equal(managementRequest("ListCapsules"), "ListCapsules");
      assert.equal(managementRequest("reload_capsules"), "ReloadCapsules");
      assert.equal(managementRequest("InstallCapsule"), undefined);
      assert.equal(managementRequest("toString"), undefined);
    });
  } finally {
    router.stop();
    bus.close();
  }
});

/** A host whose static content depends on who asks: the operator's for all, bob's for bob. */
function scopedHost() {
  const asked: { principal: string; workspaceId?: string }[] = [];
  const promptContext = (
    principal: string,
    options: { workspaceId?: string } = {},
  ): PromptContextSource => {
    asked.push({ principal, ...options });
    const context = [{ capsule: "notes", file: "static/context.md", text: "Operator notes." }];
    if (principal === "bob") {
      context.push({ capsule: "bob-notes", file: "static/context.md", text: "Bob's notes." });
    }
    return {
      context,
      skills: [{
        capsule: "notes",
        name: "research",
        description: "When researching",
        file: "static/skills/research.md",
        text: "Use sources.",
      }],
    };
  };
  const host: CapsuleHost = Object.assign(new EmptyCapsuleHost(), { promptContext });
  return { host, asked };
}

Deno.test("ManagementRouter answers get_prompt_context in the asker's view", async (t) => {
  const { host, asked } = scopedHost();
  const { bus, router, audited, ask } = setup(host);
  type Answer = {
    kind: "json";
    value: { ok: boolean; result: { context: { capsule: string }[]; skills: unknown[] } };
  };
  try {
    await t.step("the operator sees the operator's context and skills, bounded", async () => {
      const a = (await ask("get_prompt_context")) as Answer;
      assert.deepEqual(a.value, {
        ok: true,
        result: {
          context: [{ capsule: "notes", file: "static/context.md", text: "Operator notes." }],
          skills: [{
            capsule: "notes",
            name: "research",
            description: "When researching",
            file: "static/skills/research.md",
            text: "Use sources.",
          }],
          cut: [],
          cut_total: 0,
          limit_bytes: 65536,
        },
      });
      assert.deepEqual(asked.at(-1), { principal: "default" });
      assert.deepEqual(audited, [], "read-only: not audited");
    });

    await t.step(
      "the message's principal chooses the view, and workspace_id is passed",
      async () => {
        const a = (await ask("get_prompt_context", { workspace_id: "w-1" }, "bob")) as Answer;
        assert.deepEqual(a.value.result.context.map((c) => c.capsule), ["notes", "bob-notes"]);
        assert.deepEqual(asked.at(-1), { principal: "bob", workspaceId: "w-1" });
        const carol = (await ask("get_prompt_context", {}, "carol")) as Answer;
        assert.deepEqual(carol.value.result.context.map((c) => c.capsule), ["notes"]);
      },
    );

    await t.step("a malformed workspace_id is INVALID_PARAMS", async () => {
      const a = (await ask("get_prompt_context", { workspace_id: "../x" })) as {
        value: { ok: false; error: { code: string; data: { field: string } } };
      };
      assert.equal(a.value.error.code, "INVALID_PARAMS");
      assert.equal(a.value.error.data.field, "workspace_id");
    });

    await t.step("unlimited: many requests in a row are all answered", async () => {
      for (let i = 0; i < 20; i++) {
        assert.equal(((await ask("get_prompt_context")) as Answer).value.ok, true);
      }
    });

    await t.step("names parse in either form", () => {
      assert.equal(managementRequest("GetPromptContext"), "GetPromptContext");
      assert.equal(managementRequest("get_prompt_context"), "GetPromptContext");
    });
  } finally {
    router.stop();
    bus.close();
  }
});

const HASH_A = `blake3:${"a".repeat(64)}`;
const HASH_B = `blake3:${"b".repeat(64)}`;
const HASH_W = `blake3:${"c".repeat(64)}`;

/** A host with one workspace `w-1` holding capsule `notes`, trust kept in memory. */
function trustHost() {
  const decisions = new Map<string, TrustDecisionWire>();
  const calls: string[] = [];
  const disk = { manifest_hash: HASH_A, wasm_hash: HASH_W as string | null };
  let loaded = false;
  const installed = (ws: string): WorkspaceCapsuleWire => {
    const d = decisions.get(`${ws}/notes`);
    return {
      workspace_id: ws,
      name: "notes",
      version: "0.1.0",
      ...disk,
      trust: d === undefined
        ? "untrusted"
        : d.manifest_hash === disk.manifest_hash && d.wasm_hash === disk.wasm_hash
        ? "trusted"
        : "changed",
      state: loaded ? "loaded" : "untrusted",
    };
  };
  const workspaceTrust: WorkspaceTrustHost = {
    knows: (ws) => ws === "w-1",
    inspect: (ws, name) => {
      const decision = decisions.get(`${ws}/${name}`);
      return Promise.resolve({
        ...(name === "notes" ? { installed: installed(ws) } : {}),
        ...(decision === undefined ? {} : { decision }),
      });
    },
    trust: (c, options = {}) => {
      calls.push(`trust ${c.workspace_id}/${c.name}`);
      const d = {
        manifest_hash: c.manifest_hash,
        wasm_hash: c.wasm_hash,
        trusted_at: 7,
        by: options.by ?? "operator",
      };
      decisions.set(`${c.workspace_id}/${c.name}`, d);
      return Promise.resolve(d);
    },
    untrust: (ws, name) => {
      calls.push(`untrust ${ws}/${name}`);
      return Promise.resolve(decisions.delete(`${ws}/${name}`));
    },
    reloadWorkspace: (ws) => {
      calls.push(`reload ${ws}`);
      const d = decisions.get(`${ws}/notes`);
      loaded = d !== undefined && d.manifest_hash === disk.manifest_hash &&
        d.wasm_hash === disk.wasm_hash;
      return Promise.resolve(
        loaded
          ? { loaded: ["notes#w-1"], failed: [] }
          : { loaded: [], failed: [{ name: "notes#w-1", error: "untrusted: not trusted" }] },
      );
    },
  };
  const host: CapsuleHost = Object.assign(new EmptyCapsuleHost(), { workspaceTrust });
  return { host, calls, decisions, disk };
}

type Reply = {
  kind: "json";
  value: {
    ok: boolean;
    result?: Record<string, unknown>;
    error?: { code: string; message: string; data?: Record<string, unknown> };
  };
};

Deno.test("ManagementRouter TrustCapsule and UntrustCapsule", async (t) => {
  const { host, calls, decisions, disk } = trustHost();
  const { bus, router, audited, clock } = setup(host);
  const announced: unknown[] = [];
  const seen = bus.listen("astrid.v1.capsules_loaded", (m) => void announced.push(m.payload));
  const from = (kind: "client" | "capsule" | "kernel", name: string) =>
  async (
    topic: string,
    params: Record<string, unknown>,
  ): Promise<Reply> =>
    (await bus.request(`astrid.v1.request.${topic}`, params as JsonValue, {
      ctx: { principal: DEFAULT_PRINCIPAL, source: { kind, name } },
      timeoutMs: 1_000,
    })).payload as unknown as Reply;
  const client = from("client", "c-1");
  bus.setAcl("mole", { publish: ["astrid.v1.request.*"], subscribe: [] });
  const capsule = from("capsule", "mole");
  try {
    await t.step("a capsule is refused with FORBIDDEN, and the refusal is audited", async () => {
      const r = await capsule("trust_capsule", { name: "notes", workspace_id: "w-1" });
      assert.equal(r.value.ok, false);
      assert.equal(r.value.error?.code, "FORBIDDEN");
      assert.deepEqual(r.value.error?.data, { request: "TrustCapsule", via: "capsule:mole" });
      assert.deepEqual(calls, [], "nothing trusted, nothing reloaded");
      assert.equal(audited.length, 1);
      const e = audited[0];
      assert.equal(e.action, "capsule.trust");
      assert.equal(e.decision, "denied");
      assert.equal(e.resource, "capsule:w-1/notes");
      assert.equal(e.layer, "management");
      assert.equal(e.rule, "operator_only");
      assert.equal(e.decider, "policy");
      assert.deepEqual(JSON.parse(e.details!), {
        via: "capsule:mole",
        name: "notes",
        workspace_id: "w-1",
      });
      const u = await capsule("untrust_capsule", { name: "notes", workspace_id: "w-1" });
      assert.equal(u.value.error?.code, "FORBIDDEN");
      assert.equal(audited[1].action, "capsule.untrust");
      assert.equal(audited[1].decision, "denied");
    });

    await t.step("a kernel component is refused too: only a client connection", async () => {
      const out = await router.handle("TrustCapsule", { name: "notes", workspace_id: "w-1" }, {
        principal: DEFAULT_PRINCIPAL,
        via: "kernel:test",
      });
      assert.equal(out.ok ? "ok" : out.error.code, "FORBIDDEN");
      assert.deepEqual(calls, []);
    });

    await t.step("malformed params are INVALID_PARAMS, unaudited", async () => {
      const before = audited.length;
      for (
        const [params, field] of [
          [{ workspace_id: "w-1" }, "name"],
          [{ name: "../x", workspace_id: "w-1" }, "name"],
          [{ name: "notes" }, "workspace_id"],
          [{ name: "notes", workspace_id: "../w" }, "workspace_id"],
          [{ name: "notes", workspace_id: "w-1", manifest_hash: "md5:1" }, "manifest_hash"],
        ] as const
      ) {
        const r = await client("trust_capsule", params);
        assert.equal(r.value.error?.code, "INVALID_PARAMS", JSON.stringify(params));
        assert.equal(r.value.error?.data?.field, field);
      }
      assert.equal(audited.length, before);
    });

    await t.step("an unknown workspace or capsule is NOT_FOUND", async () => {
      const w = await client("trust_capsule", { name: "notes", workspace_id: "w-2" });
      assert.equal(w.value.error?.code, "NOT_FOUND");
      assert.match(w.value.error!.message, /Workspace "w-2" is not known to the daemon/);
      const c = await client("trust_capsule", { name: "weather", workspace_id: "w-1" });
      assert.equal(c.value.error?.code, "NOT_FOUND");
      assert.match(c.value.error!.message, /No workspace capsule "weather" is installed/);
      assert.deepEqual(calls, []);
    });

    await t.step("hashes that differ from the record on disk are refused", async () => {
      const before = audited.length;
      const r = await client("trust_capsule", {
        name: "notes",
        workspace_id: "w-1",
        manifest_hash: HASH_B,
      });
      assert.equal(r.value.error?.code, "INVALID_PARAMS");
      assert.match(r.value.error!.message, /changed since it was shown: manifest_hash is/);
      assert.equal(audited.length, before);
      assert.deepEqual(calls, []);
    });

    await t.step(
      "a client's TrustCapsule is audited with the pinned hashes, then reloads",
      async () => {
        audited.length = 0;
        announced.length = 0;
        const r = await client("trust_capsule", {
          name: "notes",
          workspace_id: "w-1",
          manifest_hash: HASH_A,
          wasm_hash: HASH_W,
        });
        assert.equal(r.value.ok, true, JSON.stringify(r.value.error));
        assert.deepEqual(calls, ["trust w-1/notes", "reload w-1"]);
        assert.equal(audited.length, 1);
        const e = audited[0];
        assert.equal(e.action, "capsule.trust");
        assert.equal(e.decision, "allowed");
        assert.equal(e.resource, "capsule:w-1/notes");
        assert.equal(e.layer, "management");
        assert.equal(e.rule, "TrustCapsule");
        assert.equal(e.decider, "operator");
        assert.deepEqual(JSON.parse(e.details!), {
          via: "client:c-1",
          workspace_id: "w-1",
          name: "notes",
          version: "0.1.0",
          manifest_hash: HASH_A,
          wasm_hash: HASH_W,
        });
        const result = r.value.result!;
        assert.deepEqual(result.trusted, {
          manifest_hash: HASH_A,
          wasm_hash: HASH_W,
          trusted_at: 7,
          by: "operator",
        });
        assert.equal((result.capsule as WorkspaceCapsuleWire).trust, "trusted");
        assert.equal((result.capsule as WorkspaceCapsuleWire).state, "loaded");
        assert.deepEqual(result.reload, { loaded: ["notes#w-1"], failed: [] });
        assert.deepEqual(announced, [{ kind: "json", value: { capsules: ["notes#w-1"] } }]);
      },
    );

    await t.step(
      "a changed record reads as changed; trusting again pins the new hashes",
      async () => {
        disk.manifest_hash = HASH_B;
        const v = await host.workspaceTrust!.inspect("w-1", "notes");
        assert.equal(v.installed?.trust, "changed");
        const r = await client("trust_capsule", { name: "notes", workspace_id: "w-1" });
        assert.equal(r.value.ok, true);
        assert.equal(decisions.get("w-1/notes")?.manifest_hash, HASH_B);
        assert.equal(JSON.parse(audited.at(-1)!.details!).manifest_hash, HASH_B);
      },
    );

    await t.step("UntrustCapsule is audited with what was trusted, then reloads", async () => {
      calls.length = 0;
      audited.length = 0;
      const r = await client("untrust_capsule", { name: "notes", workspace_id: "w-1" });
      assert.equal(r.value.ok, true);
      assert.deepEqual(calls, ["untrust w-1/notes", "reload w-1"]);
      assert.equal(r.value.result!.revoked, true);
      assert.equal((r.value.result!.capsule as WorkspaceCapsuleWire).trust, "untrusted");
      assert.equal(audited.length, 1);
      assert.equal(audited[0].action, "capsule.untrust");
      assert.equal(audited[0].resource, "capsule:w-1/notes");
      assert.equal(audited[0].decider, "operator");
      assert.deepEqual(JSON.parse(audited[0].details!), {
        via: "client:c-1",
        workspace_id: "w-1",
        name: "notes",
        manifest_hash: HASH_B,
        wasm_hash: HASH_W,
      });
    });

    await t.step("untrusting what is not trusted changes nothing and is not audited", async () => {
      calls.length = 0;
      const r = await client("untrust_capsule", { name: "notes", workspace_id: "w-1" });
      assert.deepEqual(r.value, {
        ok: true,
        result: { workspace_id: "w-1", name: "notes", revoked: false },
      });
      assert.deepEqual(calls, []);
      assert.equal(audited.length, 1);
    });

    await t.step("they share ReloadCapsules' sliding window; a refusal is audited", async () => {
      clock.advance(60_000);
      audited.length = 0;
      for (let i = 0; i < 5; i++) {
        assert.equal((await client("reload_capsules", {})).value.ok, true);
      }
      const r = await client("trust_capsule", { name: "notes", workspace_id: "w-1" });
      assert.equal(r.value.error?.code, "RATE_LIMITED");
      assert.equal(r.value.error?.data?.retry_after_ms, 60_000);
      const e = audited.at(-1)!;
      assert.equal(e.action, "capsule.trust");
      assert.equal(e.decision, "denied");
      assert.equal(e.rule, "rate_limit:5/60s");
      assert.equal(e.decider, "system");
      assert.equal(decisions.has("w-1/notes"), false);
      const capsuleTry = await capsule("trust_capsule", { name: "notes", workspace_id: "w-1" });
      assert.equal(capsuleTry.value.error?.code, "FORBIDDEN", "refused before the limiter");
    });

    await t.step("names parse in either form", () => {
      assert.equal(managementRequest("TrustCapsule"), "TrustCapsule");
      assert.equal(managementRequest("trust_capsule"), "TrustCapsule");
      assert.equal(managementRequest("untrust_capsule"), "UntrustCapsule");
    });
  } finally {
    seen.close();
    router.stop();
    bus.close();
  }
});

Deno.test("ManagementRouter TrustCapsule without a capsule runtime is UNAVAILABLE", async () => {
  const { router, audited } = setup();
  try {
    const out = await router.handle("TrustCapsule", { name: "notes", workspace_id: "w-1" }, {
      principal: DEFAULT_PRINCIPAL,
      via: "client:c-1",
    });
    assert.equal(out.ok ? "ok" : out.error.code, "UNAVAILABLE");
    assert.deepEqual(audited, []);
  } finally {
    router.stop();
  }
});

Deno.test("ManagementRouter TrustCapsule changes nothing when its audit entry cannot be written", async () => {
  const { host, calls, decisions } = trustHost();
  const clock = new ManualClock(0);
  const bus = new EventBus({ clock });
  const router = new ManagementRouter({
    bus,
    capsules: host,
    audit: { append: () => Promise.reject(new Error("disk full")) } as unknown as AuditLog,
    log: DaemonLog.discard(clock),
    clock,
    reloadLimiter: new SlidingWindowLimiter(clock, { limit: 5, windowMs: 60_000 }),
    status: () => ({ pid: 1 }) as unknown as DaemonStatusWire,
    shutdown: () => {},
  });
  try {
    const out = await router.handle("TrustCapsule", { name: "notes", workspace_id: "w-1" }, {
      principal: DEFAULT_PRINCIPAL,
      via: "client:c-1",
    });
    assert.equal(out.ok ? "ok" : out.error.code, "INTERNAL");
    assert.deepEqual(calls, [], "not trusted, not reloaded");
    assert.equal(decisions.size, 0);
  } finally {
    bus.close();
  }
});
