import assert from "node:assert/strict";
import { hasCode } from "../errors.ts";
import { APPROVAL_ANSWERS, type ApprovalRequest, type ApprovalResponse } from "./approval.ts";
import { SecurityCode } from "./errors.ts";
import { InProcessApprovalBroker } from "./in_process_approval_broker.ts";

function request(id: string, session = "s1", widening = false): ApprovalRequest {
  return {
    id,
    principal: "default",
    session,
    workspace: "w1",
    kind: "fs.write",
    permission: "write",
    resource: "fs:/w/a",
    summary: "write /w/a",
    details: "{}",
    widening,
    answers: widening ? ["allow_once", "deny"] : APPROVAL_ANSWERS,
    costUsd: 0,
    requestedAt: 0,
    expiresAt: 1,
    auditEntryId: "default:1",
  };
}

Deno.test("InProcessApprovalBroker.reach() counts interactive, headless and --yes frontends", () => {
  const broker = new InProcessApprovalBroker();
  assert.deepEqual(broker.reach("default", "s1"), {
    interactive: 0,
    attached: 0,
    assumeYes: false,
  });
  const a = broker.attach("default", "s1", { interactive: true });
  broker.attach("default", "s1", { interactive: false, assumeYes: true });
  broker.attach("default", "s2", { interactive: true });
  assert.deepEqual(broker.reach("default", "s1"), { interactive: 1, attached: 2, assumeYes: true });
  a.detach();
  assert.deepEqual(broker.reach("default", "s1"), { interactive: 0, attached: 1, assumeYes: true });
});

Deno.test("InProcessApprovalBroker.ask() shows every frontend of the session; the first answer wins", async () => {
  const broker = new InProcessApprovalBroker();
  const seen: string[] = [];
  const settled: [string, string, ApprovalResponse | null][] = [];
  const tui = broker.attach("default", "s1", {
    id: "tui",
    interactive: true,
    onRequest: (r) => seen.push(`tui:${r.id}`),
    onSettled: (id, resp) => settled.push(["tui", id, resp]),
  });
  broker.attach("default", "s1", {
    id: "web",
    interactive: true,
    onRequest: (r) => seen.push(`web:${r.id}`),
    onSettled: (id, resp) => settled.push(["web", id, resp]),
  });
  const other = broker.attach("default", "s2", {
    interactive: true,
    onRequest: (r) => seen.push(`s2:${r.id}`),
  });
  const answer = broker.ask(request("r1"), { signal: new AbortController().signal });
  assert.deepEqual(seen, ["tui:r1", "web:r1"]);
  assert.throws(
    () => other.respond("r1", { answer: "allow_once" }),
    (err: unknown) => hasCode(err, SecurityCode.APPROVAL_UNKNOWN),
  );
  tui.respond("r1", { answer: "allow_session" });
  assert.deepEqual(await answer, { answer: "allow_session", frontend: "tui" });
  assert.deepEqual(settled.map(([f, id]) => `${f}:${id}`), ["tui:r1", "web:r1"]);
  assert.throws(
    () => tui.respond("r1", { answer: "deny" }),
    (err: unknown) => hasCode(err, SecurityCode.APPROVAL_UNKNOWN),
  );
});

Deno.test("InProcessApprovalBroker shows a queued request to a frontend that attaches later", async () => {
  const broker = new InProcessApprovalBroker();
  const answer = broker.ask(request("r1"), { signal: new AbortController().signal });
  assert.equal(broker.pending("default").length, 1);
  const tui = broker.attach("default", "s1", {
    interactive: true,
    onRequest: (r) => tui.respond(r.id, { answer: "allow_once" }),
  });
  assert.equal((await answer).answer, "allow_once");
  assert.equal(broker.pending().length, 0);
});

Deno.test("InProcessApprovalBroker rejects an answer that was not offered", () => {
  const broker = new InProcessApprovalBroker();
  const tui = broker.attach("default", "s1", { interactive: true });
  broker.ask(request("r1", "s1", true), { signal: new AbortController().signal });
  assert.throws(
    () => tui.respond("r1", { answer: "allow_always" }),
    (err: unknown) => hasCode(err, SecurityCode.APPROVAL_ANSWER_INVALID),
  );
  assert.equal(broker.pending().length, 1);
});

Deno.test("InProcessApprovalBroker.ask() withdraws the request when the signal aborts", async () => {
  const broker = new InProcessApprovalBroker();
  const settled: (ApprovalResponse | null)[] = [];
  broker.attach("default", "s1", { interactive: true, onSettled: (_id, r) => settled.push(r) });
  const controller = new AbortController();
  const answer = broker.ask(request("r1"), { signal: controller.signal });
  controller.abort(new Error("gone"));
  await assert.rejects(answer, /gone/);
  assert.deepEqual(settled, [null]);
  assert.equal(broker.pending().length, 0);
});

Deno.test("InProcessApprovalBroker calls onSessionIdle when the last frontend detaches", () => {
  const idle: string[] = [];
  const broker = new InProcessApprovalBroker({ onSessionIdle: (p, s) => idle.push(`${p}/${s}`) });
  const a = broker.attach("default", "s1", { interactive: true });
  const b = broker.attach("default", "s1", { interactive: false });
  a.detach();
  assert.deepEqual(idle, []);
  b.detach();
  b.detach();
  assert.deepEqual(idle, ["default/s1"]);
});
