/**
 * Proves the bus-facing host functions — `ipc_*`, `uplink_*`, `identity_*`, the lifecycle
 * calls (`elicit`, `has_secret`, `signal_ready`, `get_caller`, `get_config`) and `hooks` —
 * with a real guest (the all-imports WAT guest of `_abi_guest.ts`) through the real engine,
 * dispatcher, manifest gate, bus, security pipeline and audit log (`_abi_fixture.ts`):
 *
 * - each function's allowed path, and its denied path: a missing capability or an ACL
 *   violation answers `DENIED` and leaves an audit row (layer `manifest`);
 * - a blocking `ipc_recv` is woken by a publish, and times out on the (manual) clock;
 * - the principal is stamped by the kernel: a guest cannot choose it (not in a payload, not
 *   through an uplink, not by another principal's handle);
 * - identity link → resolve → unlink round-trips; admin operations are asked of a human;
 * - `elicit` is answered by a test frontend, refused headless, and times out;
 * - `get_config`/`has_secret` never hand a secret to another capsule or in a `has_secret`
 *   answer or an error.
 */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import {
  type CapsuleConfigView,
  encodeFields,
  encodeU32,
  HOST_TABLE,
  type HostFunctionRow,
  HostStatus,
  provide,
  type ServiceEntry,
  type ServiceKey,
} from "../host_abi/mod.ts";
import { HOOKS_FUNCTIONS } from "../host_abi/hooks.ts";
import { IDENTITY_FUNCTIONS, IDENTITY_SERVICE } from "../host_abi/identity.ts";
import { HOST_TIMERS, IPC_FUNCTIONS } from "../host_abi/ipc.ts";
import {
  BusElicitor,
  CAPSULE_SECRETS,
  ELICITATION_SERVICE,
  EnvFileConfig,
  envFilePath,
  LIFECYCLE_FUNCTIONS,
  READINESS_SERVICE,
} from "../host_abi/lifecycle.ts";
import { UPLINK_FUNCTIONS, UPLINK_SERVICE, UplinkRegistry } from "../host_abi/uplink.ts";
import type { BusMessage } from "../kernel/events/mod.ts";
import { IdentityStore, type PrincipalId } from "../kernel/identity/mod.ts";
import type { ApprovalResponse } from "../kernel/security/mod.ts";
import { type AbiKernel, type AbiReply, makeAbiKernel } from "./_abi_fixture.ts";

const MINE: readonly HostFunctionRow[] = [
  ...IPC_FUNCTIONS,
  ...UPLINK_FUNCTIONS,
  ...IDENTITY_FUNCTIONS,
  ...LIFECYCLE_FUNCTIONS,
  ...HOOKS_FUNCTIONS,
];
const MY_NAMES = new Set(MINE.map((r) => r.name));

/**
 * The fixture's services take no `[env]` view, so the config rows are wrapped to read the
 * capsule's real env file ({@link EnvFileConfig}) as `services.config` and
 * {@link CAPSULE_SECRETS}, as the capsule registry provides them; everything else is the
 * real path.
 */
function withEnvFiles(row: HostFunctionRow, homeRoot: () => string): HostFunctionRow {
  if (row.name !== "get_config" && row.name !== "has_secret") return row;
  return {
    ...row,
    run: (args, call) => {
      const env = new EnvFileConfig(
        envFilePath(homeRoot(), call.principal, call.capsule),
        call.manifest.env,
      );
      const config: CapsuleConfigView = env;
      const services = call.services;
      const get = <T>(key: ServiceKey<T>): T =>
        key === (CAPSULE_SECRETS as unknown) ? env as T : services.get(key);
      return row.run(args, { ...call, services: { ...services, config, get } });
    },
  };
}

interface Bus {
  k: AbiKernel;
  ids: IdentityStore;
  uplinks: UplinkRegistry;
  readied: string[];
  /** Interactive frontends per (principal, session) for elicit; default 1. */
  reach: { interactive: number };
  /** How the human answers approvals (`identity.admin`). */
  answer: { value: ApprovalResponse["answer"] };
}

async function kernel(options: { maxHandles?: number; services?: boolean } = {}): Promise<Bus> {
  const root = { path: "" };
  const state = {
    readied: [] as string[],
    reach: { interactive: 1 },
    answer: { value: "allow_once" as ApprovalResponse["answer"] },
  };
  let extras: ServiceEntry[] = [];
  const k = await makeAbiKernel({
    table: [
      ...HOST_TABLE.filter((r) => !MY_NAMES.has(r.name)),
      ...MINE.map((r) => withEnvFiles(r, () => root.path)),
    ],
    limits: options.maxHandles === undefined ? {} : { maxHandlesPerKind: options.maxHandles },
    approver: () => ({ answer: state.answer.value }),
    extensions: () => extras,
  });
  root.path = k.home.root;
  const ids = new IdentityStore(k.store, { clock: k.clock, homes: k.home });
  const uplinks = new UplinkRegistry(k.bus, { identity: ids, clock: k.clock });
  const elicitor = new BusElicitor(k.bus, {
    reach: () => state.reach,
    now: () => k.clock.now(),
  });
  if (options.services !== false) {
    extras = [
      provide(HOST_TIMERS, k.timers),
      provide(IDENTITY_SERVICE, ids),
      provide(UPLINK_SERVICE, uplinks),
      provide(ELICITATION_SERVICE, elicitor),
      provide(READINESS_SERVICE, { ready: (c: string) => void state.readied.push(c) }),
    ];
  }
  return { k, ids, uplinks, ...state };
}

/** Polls (yielding to the event loop) until `pred` holds; fails after ~2 s of real time. */
async function until(pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

function ok(r: AbiReply, what = ""): AbiReply {
  assert.equal(r.name, "OK", `${what}: ${r.name} ${r.text}`);
  return r;
}

function status(r: AbiReply, name: string, pattern?: RegExp): void {
  assert.equal(r.name, name, r.text);
  if (pattern !== undefined) assert.match(r.text, pattern);
}

/** The latest manifest-gate denial in `principal`'s audit chain for host function `fn`. */
async function deniedRow(k: AbiKernel, principal: string, fn: string) {
  const rows = (await k.auditEntries(principal)).filter((e) =>
    e.action === `host.${fn}` && e.decision === "denied" && e.layer === "manifest"
  );
  assert.ok(rows.length > 0, `no audit row for a denied ${fn}`);
  return rows[rows.length - 1];
}

/** The JSON payload of `m` (asserting it is JSON). */
function jsonOf<T>(m: BusMessage): T {
  assert.equal(m.payload.kind, "json");
  return (m.payload as { value: unknown }).value as T;
}

const u32 = (r: AbiReply) => new DataView(r.body.buffer, r.body.byteOffset, 4).getUint32(0, true);

const CHAT_ACL = `[publish]
"chat.v1.*" = { wit = "opaque" }
[subscribe]
"chat.v1.*" = { wit = "opaque" }
`;

Deno.test("ipc host functions through a real guest", async (t) => {
  const { k } = await kernel();
  try {
    const chat = await k.load("chat", "", CHAT_ACL);
    const other = await k.load("other", "", CHAT_ACL);
    const nobus = await k.load("nobus");
    const alice = { principal: "alice" };

    await t.step(
      "ipc_publish stamps the invocation's principal, not one in the payload",
      async () => {
        const sub = u32(ok(await chat.call("ipc_subscribe", ["chat.v1.*"], alice)));
        const pub = ok(
          await chat.call("ipc_publish", ["chat.v1.hello", '{"text":"hi","principal":"root"}'], {
            principal: "bob",
          }),
        ).json<{ outcome: string; recipients: number }>();
        assert.equal(pub.outcome, "delivered");
        const msg = ok(await chat.call("ipc_poll", [encodeU32(sub)], alice)).json<
          { principal: string; source: string; payload: { principal: string }; topic: string }
        >();
        assert.equal(msg.principal, "bob");
        assert.equal(msg.source, "capsule:chat");
        assert.equal(msg.topic, "chat.v1.hello");
        assert.equal(msg.payload.principal, "root", "the payload is data, not identity");
        const empty = ok(await chat.call("ipc_poll", [encodeU32(sub)], alice));
        assert.equal(empty.body.length, 0);
        ok(await chat.call("ipc_unsubscribe", [encodeU32(sub)], alice));
      },
    );

    await t.step("ipc_publish outside [publish] is DENIED and audited", async () => {
      status(
        await chat.call("ipc_publish", ["tool.v1.execute.shell", "{}"], alice),
        "DENIED",
        /may not publish on "tool\.v1\.execute\.shell"/,
      );
      const row = await deniedRow(k, "alice", "ipc_publish");
      assert.equal(row.resource, "tool.v1.execute.shell");
      assert.equal(row.rule, "publish");
      status(await nobus.call("ipc_publish", ["chat.v1.x", "{}"], alice), "DENIED");
      await deniedRow(k, "alice", "ipc_publish");
    });

    await t.step("ipc_subscribe outside [subscribe] is DENIED and audited", async () => {
      status(await chat.call("ipc_subscribe", ["chat.*"], alice), "DENIED", /subscribe/);
      const row = await deniedRow(k, "alice", "ipc_subscribe");
      assert.equal(row.resource, "chat.*");
      assert.equal(row.rule, "subscribe");
    });

    await t.step("a blocking ipc_recv is woken by a publish from another capsule", async () => {
      const sub = u32(ok(await chat.call("ipc_subscribe", ["chat.v1.room"], alice)));
      const pending = k.timers.pending;
      let settled = false;
      const recv = chat.call("ipc_recv", [encodeU32(sub), encodeU32(0)], alice).finally(() =>
        settled = true
      );
      await until(() => k.timers.pending > pending, "ipc_recv to block");
      assert.equal(settled, false);
      ok(await other.call("ipc_publish", ["chat.v1.room", '"wake up"'], { principal: "carol" }));
      const msg = ok(await recv).json<{ payload: string; principal: string; source: string }>();
      assert.deepEqual([msg.payload, msg.principal, msg.source], [
        "wake up",
        "carol",
        "capsule:other",
      ]);
      assert.equal(k.timers.pending, pending, "the recv deadline is cleared");
      ok(await chat.call("ipc_unsubscribe", [encodeU32(sub)], alice));
    });

    await t.step("ipc_recv times out on the clock with TIMEOUT", async () => {
      const sub = u32(ok(await chat.call("ipc_subscribe", ["chat.v1.quiet"], alice)));
      const pending = k.timers.pending;
      const recv = chat.call("ipc_recv", [encodeU32(sub), encodeU32(1500)], alice);
      await until(() => k.timers.pending > pending, "ipc_recv to block");
      k.timers.advance(1500);
      status(await recv, "TIMEOUT", /1500 ms/);
      ok(await chat.call("ipc_unsubscribe", [encodeU32(sub)], alice));
    });

    await t.step(
      "an aborted invocation stops its ipc_recv without losing the next message",
      async () => {
        const sub = u32(ok(await chat.call("ipc_subscribe", ["chat.v1.abort"], alice)));
        const pending = k.timers.pending;
        const stop = new AbortController();
        const recv = chat.call("ipc_recv", [encodeU32(sub), encodeU32(0)], {
          ...alice,
          signal: stop.signal,
        });
        await until(() => k.timers.pending > pending, "ipc_recv to block");
        stop.abort();
        await assert.rejects(recv, /abort/i);
        await until(() => k.timers.pending === pending, "the recv deadline to clear");
        ok(await other.call("ipc_publish", ["chat.v1.abort", '"kept"'], alice));
        const msg = ok(await chat.call("ipc_poll", [encodeU32(sub)], alice)).json<
          { payload: string }
        >();
        assert.equal(msg.payload, "kept");
        ok(await chat.call("ipc_unsubscribe", [encodeU32(sub)], alice));
      },
    );

    await t.step("handles belong to one (capsule, principal)", async () => {
      const sub = u32(ok(await chat.call("ipc_subscribe", ["chat.v1.*"], alice)));
      status(await chat.call("ipc_poll", [encodeU32(sub)], { principal: "bob" }), "NOT_FOUND");
      status(await other.call("ipc_poll", [encodeU32(sub)], alice), "NOT_FOUND");
      status(
        await other.call("ipc_recv", [encodeU32(sub), encodeU32(1)], alice),
        "NOT_FOUND",
      );
      ok(await chat.call("ipc_unsubscribe", [encodeU32(sub)], alice));
      status(await chat.call("ipc_unsubscribe", [encodeU32(sub)], alice), "NOT_FOUND");
      status(await chat.call("ipc_poll", [encodeU32(sub)], alice), "NOT_FOUND");
    });

    await t.step("ipc_subscribe with scope principal sees only the caller's messages", async () => {
      const sub = u32(
        ok(await chat.call("ipc_subscribe", ["chat.v1.scoped", '{"scope":"principal"}'], alice)),
      );
      ok(await other.call("ipc_publish", ["chat.v1.scoped", "1"], { principal: "bob" }));
      ok(await other.call("ipc_publish", ["chat.v1.scoped", "2"], alice));
      const msg = ok(await chat.call("ipc_poll", [encodeU32(sub)], alice)).json<
        { payload: number }
      >();
      assert.equal(msg.payload, 2);
      assert.equal(ok(await chat.call("ipc_poll", [encodeU32(sub)], alice)).body.length, 0);
      ok(await chat.call("ipc_unsubscribe", [encodeU32(sub)], alice));
    });

    await t.step("bytes payloads travel as base64 with their options", async () => {
      const sub = u32(ok(await chat.call("ipc_subscribe", ["chat.v1.bin"], alice)));
      ok(
        await chat.call("ipc_publish", [
          "chat.v1.bin",
          new Uint8Array([0, 1, 255]),
          '{"format":"bytes","request_id":"r-1","reply_to":"chat.v1.reply","end_of_stream":true}',
        ], alice),
      );
      const msg = ok(await chat.call("ipc_poll", [encodeU32(sub)], alice)).json<
        Record<string, unknown>
      >();
      assert.equal(msg.payload_kind, "bytes");
      assert.equal(msg.payload, "AAH/");
      assert.equal(msg.request_id, "r-1");
      assert.equal(msg.reply_to, "chat.v1.reply");
      assert.equal(msg.end_of_stream, true);
      ok(await chat.call("ipc_unsubscribe", [encodeU32(sub)], alice));
    });

    await t.step("an interceptor's Deny answers DENIED; Final answers its reply", async () => {
      const deny = k.bus.intercept(
        "chat.v1.guarded",
        () => ({ action: "deny", reason: "not today" }),
        { priority: 10, name: "guard" },
      );
      const final = k.bus.intercept(
        "chat.v1.cached",
        () => ({ action: "final", reply: { cached: true } }),
        { priority: 50, guard: false, name: "cache" },
      );
      try {
        status(
          await chat.call("ipc_publish", ["chat.v1.guarded", "{}"], alice),
          "DENIED",
          /denied by "guard": not today/,
        );
        const r = ok(await chat.call("ipc_publish", ["chat.v1.cached", "{}"], alice)).json<
          { outcome: string; by: string; reply: { payload: unknown } }
        >();
        assert.equal(r.outcome, "final");
        assert.equal(r.by, "cache");
        assert.deepEqual(r.reply.payload, { cached: true });
      } finally {
        deny.close();
        final.close();
      }
    });

    await t.step("malformed requests are INVALID_ARGUMENT naming the field", async () => {
      status(
        await chat.call("ipc_publish", ["chat.v1.x", "{nope"], alice),
        "INVALID_ARGUMENT",
        /payload/,
      );
      status(await chat.call("ipc_publish", ["chat..x", "{}"], alice), "INVALID_ARGUMENT");
      status(await chat.call("ipc_subscribe", ["chat.v1.x*"], alice), "INVALID_ARGUMENT");
      status(
        await chat.call("ipc_recv", [encodeU32(1), encodeU32(300_001)], alice),
        "INVALID_ARGUMENT",
        /timeout_ms/,
      );
      status(await chat.callRaw("ipc_poll", new Uint8Array([1, 0]), alice), "INVALID_ARGUMENT");
    });
  } finally {
    await k.close();
  }
});

Deno.test("ipc_subscribe stops at the per-(capsule, principal) handle limit", async () => {
  const { k } = await kernel({ maxHandles: 2 });
  try {
    const chat = await k.load("chat", "", CHAT_ACL);
    ok(await chat.call("ipc_subscribe", ["chat.v1.a"]));
    ok(await chat.call("ipc_subscribe", ["chat.v1.b"]));
    status(await chat.call("ipc_subscribe", ["chat.v1.c"]), "LIMIT_EXCEEDED", /limit 2/);
    ok(await chat.call("ipc_subscribe", ["chat.v1.c"], { principal: "bob" }));
  } finally {
    await k.close();
  }
});

const UPLINK_MANIFEST = `[[uplink]]
name = "discord"
platform = "discord"

[publish]
"user.v1.prompt" = { wit = "opaque" }
`;

Deno.test("uplink host functions through a real guest", async (t) => {
  const { k, ids } = await kernel();
  try {
    const up = await k.load("discord-up", "uplink = true", UPLINK_MANIFEST);
    const prompts: BusMessage[] = [];
    const listener = k.bus.listen("user.v1.prompt", (m) => void prompts.push(m));

    await t.step("uplink_register registers a declared [[uplink]]", async () => {
      const reg = ok(await up.call("uplink_register", ["discord", "discord"])).json<
        { name: string; capsule: string; profile: string }
      >();
      assert.deepEqual([reg.name, reg.capsule, reg.profile], ["discord", "discord-up", "human"]);
      status(await up.call("uplink_register", ["slack", "slack"]), "NOT_FOUND", /\[\[uplink\]\]/);
      status(await up.call("uplink_register", ["discord", "telegram"]), "INVALID_ARGUMENT");
    });

    await t.step("uplink_send for an unlinked outside user is NOT_FOUND", async () => {
      status(
        await up.call("uplink_send", ["discord", "4242", '{"text":"hi"}']),
        "NOT_FOUND",
        /not linked to a principal/,
      );
      assert.equal(prompts.length, 0);
    });

    await t.step("uplink_send stamps the linked principal, whatever the payload says", async () => {
      await ids.ensurePrincipal("alice", "test");
      await ids.link({ platform: "discord", platform_user_id: "4242" }, "alice", {
        linkedBy: "test",
      });
      const r = ok(
        await up.call("uplink_send", [
          "discord",
          "4242",
          '{"text":"hello","principal":"default","session":"forged"}',
          '{"session":"chan-1"}',
        ], { principal: "default" }),
      ).json<{ principal: string; session: string }>();
      assert.equal(r.principal, "alice");
      assert.equal(r.session, "uplink.discord.chan-1");
      assert.equal(prompts.length, 1);
      const m = prompts[0];
      assert.equal(m.principal, "alice");
      assert.deepEqual(m.source, { kind: "uplink", name: "discord-up" });
      const p = jsonOf<Record<string, unknown>>(m);
      assert.equal(p.text, "hello");
      assert.equal(p.principal, undefined, "a principal field is dropped");
      assert.equal(p.session, "uplink.discord.chan-1");
      assert.deepEqual(p.uplink, {
        name: "discord",
        platform: "discord",
        platform_user_id: "4242",
      });
    });

    await t.step("uplink_* without the uplink capability is DENIED and audited", async () => {
      const plain = await k.load("plain", "", `[publish]\n"user.v1.prompt" = { wit = "opaque" }\n`);
      status(await plain.call("uplink_register", ["discord", "discord"]), "DENIED", /uplink/);
      assert.equal((await deniedRow(k, "default", "uplink_register")).rule, "uplink");
      status(await plain.call("uplink_send", ["discord", "4242", "{}"]), "DENIED");
      await deniedRow(k, "default", "uplink_send");
    });

    await t.step(
      "uplink_send without user.v1.prompt in [publish] is DENIED and audited",
      async () => {
        const mute = await k.load(
          "mute-up",
          "uplink = true",
          `[[uplink]]\nname = "tg"\nplatform = "telegram"\n`,
        );
        ok(await mute.call("uplink_register", ["tg", "telegram"]));
        status(await mute.call("uplink_send", ["tg", "1", "{}"]), "DENIED", /user\.v1\.prompt/);
        assert.equal((await deniedRow(k, "default", "uplink_send")).rule, "publish");
      },
    );

    await t.step("another capsule cannot take a registered uplink name", async () => {
      const thief = await k.load("thief", "uplink = true", UPLINK_MANIFEST);
      status(await thief.call("uplink_register", ["discord", "discord"]), "CONFLICT");
      status(await thief.call("uplink_send", ["discord", "4242", "{}"]), "NOT_FOUND");
    });
    listener.close();
  } finally {
    await k.close();
  }
});

Deno.test("identity host functions through a real guest", async (t) => {
  const { k, ids, answer } = await kernel();
  try {
    const none = await k.load("noid");
    const resolver = await k.load("resolver", `identity = "resolve"`);
    const linker = await k.load("linker", `identity = "link"`);
    const admin = await k.load("admin", `identity = "admin"`);
    await ids.ensurePrincipal("alice", "test");
    await ids.ensurePrincipal("bob", "test");
    const alice = { principal: "alice" };

    await t.step("without an identity level every call is DENIED and audited", async () => {
      status(await none.call("identity_resolve", ["discord", "1"], alice), "DENIED", /identity/);
      assert.equal((await deniedRow(k, "alice", "identity_resolve")).rule, "identity");
      status(await resolver.call("identity_link", ["discord", "1", ""], alice), "DENIED");
      await deniedRow(k, "alice", "identity_link");
    });

    await t.step(
      "link → resolve → list → unlink round-trips for the calling principal",
      async () => {
        const linked = ok(await linker.call("identity_link", ["discord", "77", ""], alice)).json<
          { created: boolean; link: { principal: string; linked_by: string } }
        >();
        assert.equal(linked.created, true);
        assert.equal(linked.link.principal, "alice");
        assert.equal(linked.link.linked_by, "capsule:linker");
        const resolved = ok(await resolver.call("identity_resolve", ["discord", "77"])).json<
          { principal: string }
        >();
        assert.equal(resolved.principal, "alice");
        const links = ok(await resolver.call("identity_list_links", [""], alice)).json<
          { platform_user_id: string }[]
        >();
        assert.deepEqual(links.map((l) => l.platform_user_id), ["77"]);
        ok(await linker.call("identity_unlink", ["discord", "77"], alice));
        status(await resolver.call("identity_resolve", ["discord", "77"]), "NOT_FOUND");
        status(await linker.call("identity_unlink", ["discord", "77"], alice), "NOT_FOUND");
      },
    );

    await t.step(
      "a guest cannot link to or unlink from another principal below admin",
      async () => {
        status(
          await linker.call("identity_link", ["discord", "88", "bob"], alice),
          "DENIED",
          /level "admin"/,
        );
        await ids.link({ platform: "discord", platform_user_id: "99" }, "bob", { linkedBy: "t" });
        status(await linker.call("identity_unlink", ["discord", "99"], alice), "DENIED");
        status(await linker.call("identity_list_links", ["bob"], alice), "DENIED");
        assert.equal(
          (await ids.resolve({ platform: "discord", platform_user_id: "99" }))?.principal,
          "bob",
        );
      },
    );

    await t.step("admin operations are asked of a human every time", async () => {
      const before = k.approvals.length;
      const made = ok(
        await admin.call("identity_create_user", ['{"id":"carol","display_name":"Carol"}'], alice),
      ).json<{ id: string; created_by: string }>();
      assert.deepEqual([made.id, made.created_by], ["carol", "capsule:admin"]);
      const asked = k.approvals[before];
      assert.equal(asked.kind, "identity.admin");
      assert.equal(asked.widening, true);
      assert.deepEqual(asked.answers, ["allow_once", "deny"]);
      ok(await admin.call("identity_link", ["discord", "5", "carol"], alice));
      assert.equal(k.approvals.length, before + 2);
      assert.equal(
        (await ids.resolve({ platform: "discord", platform_user_id: "5" }))?.principal,
        "carol",
      );
      answer.value = "deny";
      status(await admin.call("identity_unlink", ["discord", "5"], alice), "DENIED", /Denied/);
      status(await admin.call("identity_create_user", ["{}"], alice), "DENIED");
      assert.equal(
        (await ids.resolve({ platform: "discord", platform_user_id: "5" }))?.principal,
        "carol",
      );
      answer.value = "allow_once";
      const all = ok(await admin.call("identity_list_links", ["*"], alice)).json<unknown[]>();
      assert.equal(all.length, 2);
    });

    await t.step("conflicts and malformed identities have their own statuses", async () => {
      status(await linker.call("identity_link", ["discord", "99", ""], alice), "CONFLICT", /bob/);
      status(await linker.call("identity_link", ["Discord", "1", ""], alice), "INVALID_ARGUMENT");
      status(
        await admin.call("identity_link", ["discord", "1", "Not Valid"], alice),
        "INVALID_ARGUMENT",
      );
      status(await admin.call("identity_link", ["discord", "1", "nobody"], alice), "NOT_FOUND");
    });
  } finally {
    await k.close();
  }
});

const ENV_MANIFEST = `[env]
API_KEY = { type = "secret", description = "The provider key" }
MODEL = { type = "text", default = "m1" }
TAGS = { type = "array", default = ["a"] }
`;

Deno.test("lifecycle host functions through a real guest", async (t) => {
  const b = await kernel();
  const k = b.k;
  try {
    const app = await k.load("app", "", ENV_MANIFEST);
    const other = await k.load("other");
    const secret = "sk-live-SECRET-0123456789";

    await t.step("elicit is answered by the session's frontend", async () => {
      const seen: BusMessage[] = [];
      const frontend = k.bus.listen("astrid.v1.elicit.*", (m) => {
        if (m.topic.startsWith("astrid.v1.elicit.response.")) return;
        seen.push(m);
        const id = jsonOf<{ id: string }>(m).id;
        const topic = `astrid.v1.elicit.response.${id}`;
        queueMicrotask(async () => {
          // A forged answer from another principal is ignored; then the real one.
          await k.bus.publish(topic, { value: "mallory" }, {
            ctx: { principal: "bob" as PrincipalId, source: { kind: "client", name: "c-2" } },
          });
          await k.bus.publish(topic, { value: "Oslo", session: "s1" }, {
            ctx: { principal: m.principal, source: { kind: "client", name: "c-1" } },
          });
        });
      });
      try {
        const r = ok(
          await app.call("elicit", ['{"message":"Which city?"}'], { principal: "alice" }),
        ).json<{ value: string }>();
        assert.equal(r.value, "Oslo");
        assert.equal(seen.length, 1);
        assert.equal(seen[0].principal, "alice");
        const q = jsonOf<Record<string, unknown>>(seen[0]);
        assert.deepEqual([q.message, q.type, q.session, q.capsule], [
          "Which city?",
          "text",
          "s1",
          "app",
        ]);
      } finally {
        frontend.close();
      }
    });

    await t.step("elicit with no interactive frontend is UNAVAILABLE at once", async () => {
      b.reach.interactive = 0;
      status(await app.call("elicit", ['{"message":"?"}']), "UNAVAILABLE", /no interactive/);
      b.reach.interactive = 1;
    });

    await t.step("elicit times out on the clock and withdraws the question", async () => {
      const withdrawn: BusMessage[] = [];
      const watch = k.bus.listen("astrid.v1.elicit.response.*", (m) => void withdrawn.push(m));
      const pending = k.timers.pending;
      const r = app.call("elicit", ['{"message":"?","timeout_ms":2000}']);
      await until(() => k.timers.pending > pending, "elicit to wait");
      k.timers.advance(2000);
      status(await r, "TIMEOUT");
      await until(() => withdrawn.length > 0, "the withdrawal notice");
      assert.deepEqual(jsonOf<unknown>(withdrawn[0]), {
        cancelled: true,
        reason: "withdrawn",
      });
      watch.close();
    });

    await t.step(
      "get_config answers values and defaults; has_secret says only yes or no",
      async () => {
        assert.equal(ok(await app.call("get_config", ["MODEL"])).json(), "m1");
        assert.equal(ok(await app.call("has_secret", ["API_KEY"])).body[0], 0);
        const file = envFilePath(k.home.root, "default", "app");
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, JSON.stringify({ API_KEY: secret, MODEL: "m2" }), { mode: 0o600 });
        assert.equal(ok(await app.call("get_config", ["MODEL"])).json(), "m2");
        assert.deepEqual(ok(await app.call("get_config", ["TAGS"])).json(), ["a"]);
        const has = ok(await app.call("has_secret", ["API_KEY"]));
        assert.deepEqual([...has.body], [1, 0, 0, 0]);
        const all = ok(await app.call("get_config", [""]));
        assert.deepEqual(all.json(), { MODEL: "m2", TAGS: ["a"] });
        assert.ok(!all.text.includes(secret));
      },
    );

    await t.step("a secret reaches only the capsule that declares it", async () => {
      assert.equal(ok(await app.call("get_config", ["API_KEY"])).json(), secret);
      for (const fn of ["get_config", "has_secret"]) {
        const r = await other.call(fn, ["API_KEY"]);
        status(r, "NOT_FOUND", /declares no \[env\] field "API_KEY"/);
        assert.ok(!r.text.includes(secret));
      }
      status(await app.call("has_secret", ["MODEL"]), "INVALID_ARGUMENT", /not "secret"/);
      status(await app.call("get_config", ["NOPE"]), "NOT_FOUND");
      // Another principal has its own values.
      assert.equal(ok(await app.call("has_secret", ["API_KEY"], { principal: "bob" })).body[0], 0);
      assert.equal(
        ok(await app.call("get_config", ["API_KEY"], { principal: "bob" })).json(),
        null,
      );
    });

    await t.step(
      "get_caller answers what the kernel stamped; the guest names nothing",
      async () => {
        const c = ok(
          await app.call("get_caller", [], { principal: "alice", session: "s9", requestId: "r-7" }),
        ).json<Record<string, string>>();
        assert.deepEqual(c, {
          principal: "alice",
          capsule: "app",
          session: "s9",
          workspace: "w1",
          request_id: "r-7",
        });
        status(await app.call("get_caller", ["root"]), "INVALID_ARGUMENT");
      },
    );

    await t.step("signal_ready tells the registry", async () => {
      ok(await app.call("signal_ready"));
      assert.deepEqual(b.readied, ["app"]);
    });
  } finally {
    await k.close();
  }
});

Deno.test("lifecycle calls without kernel services answer UNAVAILABLE", async () => {
  const { k } = await kernel({ services: false });
  try {
    const app = await k.load("app");
    status(await app.call("signal_ready"), "UNAVAILABLE");
    status(await app.call("elicit", ['{"message":"?"}']), "UNAVAILABLE");
    status(await app.call("identity_resolve", ["discord", "1"]), "DENIED");
  } finally {
    await k.close();
  }
});

Deno.test("hooks host functions through a real guest", async (t) => {
  const { k } = await kernel();
  try {
    const hooker = await k.load(
      "hooker",
      "",
      `[publish]
"hooks.v1.*" = { wit = "opaque" }
[subscribe]
"chat.v1.in" = { wit = "opaque", handler = "on_in", priority = 10 }
"chat.v1.*" = { wit = "opaque" }
`,
    );
    const quiet = await k.load("quiet");

    await t.step("trigger_hook answers the chain's outcome", async () => {
      const edit = k.bus.intercept(
        "hooks.v1.before_prompt",
        (m) => ({
          action: "continue",
          payload: { ...jsonOf<Record<string, string>>(m), extra: "ctx" },
        }),
        { name: "enricher", guard: false },
      );
      const veto = k.bus.intercept(
        "hooks.v1.on_tool",
        () => ({ action: "deny", reason: "blocked" }),
        { name: "veto", priority: 10 },
      );
      try {
        const cont = ok(await hooker.call("trigger_hook", ["before_prompt", '{"text":"hi"}']))
          .json<{ outcome: string; payload: unknown }>();
        assert.equal(cont.outcome, "continue");
        assert.deepEqual(cont.payload, { text: "hi", extra: "ctx" });
        const deny = ok(await hooker.call("trigger_hook", ["on_tool", "{}"])).json<
          { outcome: string; by: string; reason: string }
        >();
        assert.deepEqual([deny.outcome, deny.by, deny.reason], ["deny", "veto", "blocked"]);
      } finally {
        edit.close();
        veto.close();
      }
    });

    await t.step("trigger_hook outside [publish] is DENIED and audited", async () => {
      status(await quiet.call("trigger_hook", ["before_prompt", "{}"]), "DENIED", /hooks\.v1/);
      assert.equal(
        (await deniedRow(k, "default", "trigger_hook")).resource,
        "hooks.v1.before_prompt",
      );
      status(await hooker.call("trigger_hook", ["", "{}"]), "INVALID_ARGUMENT");
    });

    await t.step("get_interceptor_handles answers the caller's own bindings", async () => {
      const list = ok(await hooker.call("get_interceptor_handles")).json<
        { topic: string; handler: string; priority: number }[]
      >();
      assert.deepEqual(list, [{
        topic: "chat.v1.in",
        handler: "on_in",
        priority: 10,
        from: "subscribe",
      }]);
      assert.deepEqual(ok(await quiet.call("get_interceptor_handles")).json(), []);
      const subscribed = ok(
        await hooker.call("get_interceptor_handles", ['{"subscribe":true}'], {
          principal: "alice",
        }),
      ).json<{ handle: number }[]>();
      const again = ok(
        await hooker.call("get_interceptor_handles", ['{"subscribe":true}'], {
          principal: "alice",
        }),
      ).json<{ handle: number }[]>();
      assert.equal(again[0].handle, subscribed[0].handle, "opened once");
      await k.bus.publish("chat.v1.in", { n: 1 }, {
        ctx: { principal: "alice" as PrincipalId, source: { kind: "kernel", name: "test" } },
      });
      const msg = ok(
        await hooker.call("ipc_poll", [encodeU32(subscribed[0].handle)], { principal: "alice" }),
      ).json<{ payload: unknown }>();
      assert.deepEqual(msg.payload, { n: 1 });
    });
  } finally {
    await k.close();
  }
});

Deno.test("every row of these subsystems is exercised here", () => {
  const names = [...MY_NAMES].sort();
  assert.equal(names.length, 19);
  const source = Deno.readTextFileSync(new URL(import.meta.url));
  for (const n of names) assert.ok(source.includes(`"${n}"`), `${n} is not called in this file`);
  assert.ok(encodeFields([]).length === 0);
  assert.equal(HostStatus.OK, 0);
});
