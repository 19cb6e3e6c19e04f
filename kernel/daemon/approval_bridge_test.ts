import assert from "node:assert/strict";
import { AuditLog } from "../audit/mod.ts";
import { TokenStore } from "../capabilities/mod.ts";
import { ManualClock } from "../clock.ts";
import { DEFAULT_CONFIG } from "../config/mod.ts";
import { KeyPair } from "../crypto/mod.ts";
import { type BusMessage, EventBus, type JsonValue } from "../events/mod.ts";
import { principalId } from "../identity/mod.ts";
import {
  APPROVAL_ANSWERS,
  type ApprovalRequest,
  SecurityInterceptor,
  type SensitiveAction,
} from "../security/mod.ts";
import { MemoryStore } from "../storage/mod.ts";
import { ApprovalBridge, type AttachedFrontend } from "./approval_bridge.ts";
import { bootDaemon } from "./daemon.ts";
import { DaemonClient } from "./daemon_client.ts";
import { EmptyCapsuleHost } from "./capsule_host.ts";
import { encodeFrame, FrameDecoder, HELLO_MAX_FRAME_BYTES } from "./frame_codec.ts";

function request(id: string, session = "s1", principal = "default"): ApprovalRequest {
  return {
    id,
    principal,
    session,
    workspace: "w1",
    kind: "fs.write",
    permission: "write",
    resource: "fs:/w/a",
    summary: "write /w/a",
    details: "{}",
    widening: false,
    answers: APPROVAL_ANSWERS,
    costUsd: 0,
    requestedAt: 0,
    expiresAt: 1,
    auditEntryId: "default:1",
  };
}

function frontend(
  connection: string,
  flags: Partial<AttachedFrontend> = {},
): AttachedFrontend {
  return {
    connection,
    principal: "default",
    session: "s1",
    client: "test",
    interactive: false,
    assumeYes: false,
    elicitation: false,
    ...flags,
  };
}

/** Publishes `payload` on `topic` as client connection `connection` of `principal`. */
function answer(
  bus: EventBus,
  topic: string,
  payload: JsonValue,
  from: { connection: string; principal?: string; kind?: "client" | "capsule" },
): Promise<unknown> {
  return bus.publish(topic, payload, {
    ctx: {
      principal: principalId(from.principal ?? "default"),
      source: { kind: from.kind ?? "client", name: from.connection },
    },
  });
}

Deno.test("ApprovalBridge.reach() counts what the hellos said, per (principal, session)", async (t) => {
  const bus = new EventBus();
  const bridge = new ApprovalBridge(bus);
  await t.step("nothing attached", () => {
    assert.deepEqual(bridge.reach("default", "s1"), {
      interactive: 0,
      attached: 0,
      assumeYes: false,
    });
  });
  await t.step("chat, headless -p, -p --yes and mcp serve", () => {
    bridge.attach(frontend("c-1", { interactive: true }));
    bridge.attach(frontend("c-2"));
    bridge.attach(frontend("c-3", { assumeYes: true }));
    bridge.attach(frontend("c-4", { elicitation: true }));
    bridge.attach(frontend("c-5", { session: "s2", interactive: true }));
    bridge.attach(frontend("c-6", { principal: "bob", interactive: true }));
    assert.deepEqual(bridge.reach("default", "s1"), {
      interactive: 2,
      attached: 4,
      assumeYes: true,
    });
  });
  await t.step("detach takes a connection out; detaching twice is harmless", () => {
    bridge.detach("c-1");
    bridge.detach("c-1");
    bridge.detach("c-3");
    assert.deepEqual(bridge.reach("default", "s1"), {
      interactive: 1,
      attached: 2,
      assumeYes: false,
    });
    assert.deepEqual(bridge.frontends("default", "s1").map((f) => f.connection), ["c-2", "c-4"]);
  });
  bridge.close();
  bus.close();
});

Deno.test("ApprovalBridge.ask() publishes to the session and takes the first valid answer", async (t) => {
  const bus = new EventBus();
  const warnings: string[] = [];
  const bridge = new ApprovalBridge(bus, {
    log: { warn: (_m, f) => warnings.push(String(f?.why)) },
  });
  bridge.attach(frontend("c-1", { interactive: true }));
  bridge.attach(frontend("c-2")); // headless, same session
  bridge.attach(frontend("c-3", { session: "s2", interactive: true }));
  bridge.attach(frontend("c-4", { principal: "bob", interactive: true }));
  bus.setAcl("c-1", { publish: ["astrid.v1.approval.response.*"], subscribe: [] });
  const published = bus.subscribe("astrid.v1.approval");

  await t.step("the request goes out with its session, snake_case, as the kernel", async () => {
    const controller = new AbortController();
    const asked = bridge.ask(request("a1"), { signal: controller.signal });
    const msg = await published.recv();
    assert.equal(msg.topic, "astrid.v1.approval");
    assert.equal(msg.principal, "default");
    assert.equal(msg.source.kind, "kernel");
    assert.equal(msg.request_id, "a1");
    const p = (msg.payload as { value: Record<string, JsonValue> }).value;
    assert.equal(p.session, "s1");
    assert.equal(p.workspace_id, "w1");
    assert.equal(p.summary, "write /w/a");
    assert.deepEqual(p.answers, [...APPROVAL_ANSWERS]);
    assert.equal(p.audit_entry_id, "default:1");
    assert.deepEqual(bridge.pending("default", "s1"), [p]);
    assert.deepEqual(bridge.pending("default", "s2"), []);

    const topic = "astrid.v1.approval.response.a1";
    await answer(bus, topic, { answer: "allow_always" }, { connection: "c-4", principal: "bob" });
    await answer(bus, topic, { answer: "allow_always", session: "s2" }, { connection: "c-3" });
    await answer(bus, topic, { answer: "allow_always" }, { connection: "c-2" });
    await answer(bus, topic, { answer: "allow_always" }, { connection: "c-1", kind: "capsule" });
    await answer(bus, topic, { answer: "allow_always" }, { connection: "c-9" });
    await answer(bus, topic, { nothing: true }, { connection: "c-1" });
    assert.deepEqual(warnings, [
      "another principal",
      "the connection is attached to another session",
      "the connection is not interactive",
      "only a frontend connection may answer",
      "the connection is not attached",
      'no "answer" string',
    ]);
    await answer(bus, topic, { answer: "allow_session", pattern: "fs:/w/**", reason: "ok" }, {
      connection: "c-1",
    });
    assert.deepEqual(await asked, {
      answer: "allow_session",
      frontend: "client:c-1",
      pattern: "fs:/w/**",
      reason: "ok",
    });
    assert.deepEqual(bridge.pending("default", "s1"), []);
  });

  await t.step("a withdrawn request is published as settled, so prompts close", async () => {
    const responses = bus.subscribe("astrid.v1.approval.response.*");
    const controller = new AbortController();
    const asked = bridge.ask(request("a2"), { signal: controller.signal });
    await published.recv();
    controller.abort(new Error("Approval settled"));
    await assert.rejects(asked, /Approval settled/);
    const msg: BusMessage = await responses.recv();
    assert.equal(msg.topic, "astrid.v1.approval.response.a2");
    assert.equal(msg.source.kind, "kernel");
    const p = (msg.payload as { value: Record<string, JsonValue> }).value;
    assert.equal(p.withdrawn, true);
    assert.equal(p.answer, "deny");
    assert.equal(p.session, "s1");
    responses.close();
  });

  await t.step("an answer after the request settled is ignored", async () => {
    await answer(bus, "astrid.v1.approval.response.a1", { answer: "deny" }, {
      connection: "c-1",
    });
    assert.deepEqual(bridge.pending("default", "s1"), []);
  });
  bridge.close();
  bus.close();
});

Deno.test("ApprovalBridge.observe() announces unanswerable decisions to the session", async (t) => {
  const store = new MemoryStore();
  const key = await KeyPair.generate();
  const clock = new ManualClock();
  const bus = new EventBus({ clock });
  const bridge = new ApprovalBridge(bus);
  const security = bridge.observe(
    new SecurityInterceptor({
      config: DEFAULT_CONFIG,
      audit: new AuditLog(store, { signer: key, clock }),
      tokens: new TokenStore(store, { clock, trustedIssuers: [key.publicKey] }),
      store,
      signer: key,
      broker: bridge,
      clock,
    }),
  );
  const notices = bus.subscribe("astrid.v1.approval.unanswerable");
  const write: SensitiveAction = {
    kind: "fs.write",
    principal: "default",
    session: "s1",
    workspace: "w1",
    path: "/w/a.txt",
    insideWorkspace: true,
  };
  await t.step("headless: denied at once, audited, announced", async () => {
    bridge.attach(frontend("c-1"));
    const auth = await security.authorize(write);
    assert.equal(auth.allowed, false);
    assert.equal(auth.unanswerable, true);
    assert.equal(auth.decider, "headless");
    const msg = notices.poll()!;
    assert.equal(msg.principal, "default");
    assert.equal(bridge.unanswerableSeen("c-1"), 1);
    assert.equal(bridge.unanswerableSeen("c-unknown"), 0);
    const p = (msg.payload as { value: Record<string, JsonValue> }).value;
    assert.equal(p.session, "s1");
    assert.equal(p.kind, "fs.write");
    assert.equal(p.resource, "fs:/w/a.txt");
    assert.equal(p.audit_entry_id, auth.auditEntryId);
  });
  await t.step("--yes: allowed as the operator's flag, nothing announced", async () => {
    bridge.attach(frontend("c-2", { assumeYes: true }));
    const auth = await security.authorize(write);
    assert.equal(auth.allowed, true);
    assert.equal(auth.decider, "operator_flag");
    assert.equal(notices.poll(), undefined);
  });
  notices.close();
  bridge.close();
  bus.close();
});

Deno.test("the daemon attaches each connection to the bridge with its hello flags", async (t) => {
  const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "ab" });
  const daemon = await bootDaemon({
    home,
    env: { get: () => undefined },
    echoLog: false,
    capsules: () => new EmptyCapsuleHost(),
  });
  try {
    const token = (await Deno.readTextFile(daemon.paths.token)).trim();
    const connect = (o: Record<string, unknown>) =>
      DaemonClient.connect(daemon.paths.socket, { token, client: "t", session: "s1", ...o });
    const chat = await connect({ interactive: true });
    const headless = await connect({});
    const yes = await connect({ assumeYes: true });

    await t.step("reach reflects interactive, headless and --yes connections", () => {
      assert.deepEqual(daemon.approvals.reach("default", "s1"), {
        interactive: 1,
        attached: 3,
        assumeYes: true,
      });
    });

    await t.step("a hello flag that is not a boolean is refused", async () => {
      const conn = await Deno.connect({ transport: "unix", path: daemon.paths.socket });
      try {
        await conn.write(encodeFrame({
          type: "hello",
          protocol: 1,
          token,
          client: "t",
          interactive: "yes",
        }));
        const decoder = new FrameDecoder(HELLO_MAX_FRAME_BYTES);
        const buf = new Uint8Array(4096);
        let frames: Record<string, unknown>[] = [];
        while (frames.length === 0) {
          const n = await conn.read(buf);
          if (n === null) break;
          frames = decoder.push(buf.subarray(0, n));
        }
        assert.equal(frames[0]?.type, "error");
        assert.equal(frames[0]?.code, "INVALID_HELLO");
        assert.deepEqual(frames[0]?.data, { field: "interactive" });
      } finally {
        conn.close();
      }
    });

    await t.step(
      "a request reaches the chat; its answer over the wire resolves the ask",
      async () => {
        const sub = await chat.subscribe("astrid.v1.approval");
        const controller = new AbortController();
        const asked = daemon.approvals.ask(request("w1"), { signal: controller.signal });
        const event = await sub.next();
        assert.equal(event?.topic, "astrid.v1.approval");
        assert.deepEqual(await chat.call("approvals"), {
          requests: [event!.payload],
          unanswerable: 0,
        });
        await headless.publish("astrid.v1.approval.response.w1", { answer: "allow_always" });
        await chat.publish("astrid.v1.approval.response.w1", { answer: "allow_once" });
        const r = await asked;
        assert.equal(r.answer, "allow_once");
        assert.equal(r.frontend, `client:${chat.welcome.connection}`);
        await sub.close();
      },
    );

    await t.step("closing connections detaches them", async () => {
      await chat.close();
      await yes.close();
      for (let i = 0; i < 100 && daemon.approvals.reach("default", "s1").attached > 1; i++) {
        await new Promise((r) => queueMicrotask(() => r(null)));
        await headless.call("status");
      }
      assert.deepEqual(daemon.approvals.reach("default", "s1"), {
        interactive: 0,
        attached: 1,
        assumeYes: false,
      });
      await headless.close();
    });
  } finally {
    await daemon.shutdown("test done");
    await Deno.remove(home, { recursive: true });
  }
});
