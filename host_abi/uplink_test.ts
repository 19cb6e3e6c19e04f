import assert from "node:assert/strict";
import { ManualClock } from "../kernel/clock.ts";
import { type BusMessage, EventBus } from "../kernel/events/mod.ts";
import { IdentityStore } from "../kernel/identity/mod.ts";
import { MemoryStore } from "../kernel/storage/mod.ts";
import { encodeFields, RequestReader } from "./encoding.ts";
import type { HostCallContext } from "./host_function.ts";
import { HostCallError, HostStatus } from "./status.ts";
import { uplinkRegister, UplinkRegistry, uplinkSend, USER_PROMPT_TOPIC } from "./uplink.ts";

const status = (s: HostStatus) => (e: unknown) => e instanceof HostCallError && e.status === s;

async function fixture() {
  const clock = new ManualClock(1_000);
  const bus = new EventBus({ clock });
  bus.setAcl("tg", { publish: [USER_PROMPT_TOPIC], subscribe: [] });
  bus.setAcl("mute", { publish: [], subscribe: [] });
  const ids = new IdentityStore(new MemoryStore(), { clock });
  await ids.ensurePrincipal("alice", "test");
  await ids.link({ platform: "telegram", platform_user_id: "42" }, "alice", { linkedBy: "t" });
  const seen: BusMessage[] = [];
  bus.listen(USER_PROMPT_TOPIC, (m) => void seen.push(m));
  return { bus, ids, seen, uplinks: new UplinkRegistry(bus, { identity: ids, clock }) };
}

Deno.test("UplinkRegistry.register() keeps one capsule per uplink name", async () => {
  const { uplinks } = await fixture();
  const reg = uplinks.register({
    capsule: "tg",
    name: "tg",
    platform: "telegram",
    profile: "human",
  });
  assert.equal(reg.registered_at, 1_000);
  uplinks.register({ capsule: "tg", name: "tg", platform: "telegram", profile: "human" });
  assert.throws(
    () => uplinks.register({ capsule: "x", name: "tg", platform: "telegram", profile: "human" }),
    status(HostStatus.CONFLICT),
  );
  assert.deepEqual(uplinks.list().map((r) => r.capsule), ["tg"]);
  assert.equal(uplinks.unregisterCapsule("tg"), 1);
  assert.equal(uplinks.get("tg"), undefined);
});

Deno.test("UplinkRegistry.send() publishes for the linked principal only", async (t) => {
  const { uplinks, seen } = await fixture();
  uplinks.register({ capsule: "tg", name: "tg", platform: "telegram", profile: "human" });
  uplinks.register({ capsule: "mute", name: "mute", platform: "telegram", profile: "bridge" });

  await t.step("an unregistered uplink or another capsule's is NOT_FOUND", async () => {
    const turn = { capsule: "tg", platformUserId: "42", payload: {} };
    await assert.rejects(uplinks.send({ ...turn, uplink: "nope" }), status(HostStatus.NOT_FOUND));
    await assert.rejects(
      uplinks.send({ ...turn, capsule: "mute", uplink: "tg" }),
      status(HostStatus.NOT_FOUND),
    );
  });

  await t.step("an unlinked outside user is NOT_FOUND and nothing is published", async () => {
    await assert.rejects(
      uplinks.send({ capsule: "tg", uplink: "tg", platformUserId: "43", payload: {} }),
      (e) => status(HostStatus.NOT_FOUND)(e) && /telegram:43/.test((e as Error).message),
    );
    assert.equal(seen.length, 0);
  });

  await t.step("a linked user's turn carries that principal and a stable session", async () => {
    const a = await uplinks.send({
      capsule: "tg",
      uplink: "tg",
      platformUserId: "42",
      payload: { text: "hi", principal: "default" },
      requestId: "r-1",
    });
    const b = await uplinks.send({
      capsule: "tg",
      uplink: "tg",
      platformUserId: "42",
      payload: {},
    });
    assert.equal(a.principal, "alice");
    assert.match(a.session, /^uplink\.tg\.[0-9a-f]{16}$/);
    assert.equal(a.session, b.session);
    assert.equal(seen[0].principal, "alice");
    assert.equal(seen[0].request_id, "r-1");
    assert.deepEqual(seen[0].source, { kind: "uplink", name: "tg" });
    assert.equal((seen[0].payload as { value: { principal?: string } }).value.principal, undefined);
  });

  await t.step("the capsule's [publish] list still applies: DENIED", async () => {
    await assert.rejects(
      uplinks.send({ capsule: "mute", uplink: "mute", platformUserId: "42", payload: {} }),
      status(HostStatus.DENIED),
    );
  });
});

Deno.test("uplink rows check names, platforms, payloads and sessions when parsing", async () => {
  const call = { principal: "default" } as HostCallContext;
  const parse = (row: typeof uplinkSend, fields: string[]) =>
    Promise.resolve().then(() => row.parse(new RequestReader(encodeFields(fields)), call));
  await assert.rejects(
    parse(uplinkRegister, ["Bad Name", "x"]),
    status(HostStatus.INVALID_ARGUMENT),
  );
  await assert.rejects(parse(uplinkRegister, ["ok", "Bad"]), status(HostStatus.INVALID_ARGUMENT));
  await assert.rejects(parse(uplinkSend, ["tg", "1", "[1]"]), status(HostStatus.INVALID_ARGUMENT));
  await assert.rejects(
    parse(uplinkSend, ["tg", "1", "{}", '{"session":"../x"}']),
    status(HostStatus.INVALID_ARGUMENT),
  );
  const args = await parse(uplinkSend, ["tg", "1", '{"text":"a"}', '{"session":"c-1"}']);
  assert.deepEqual(await uplinkSend.gate(args, call), [
    { capability: "uplink" },
    { capability: "publish", target: USER_PROMPT_TOPIC },
  ]);
});
