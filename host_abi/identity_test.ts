import assert from "node:assert/strict";
import { parseManifest } from "../kernel/capsule/mod.ts";
import { ManualClock } from "../kernel/clock.ts";
import { IdentityStore } from "../kernel/identity/mod.ts";
import type { Authorization, SensitiveAction } from "../kernel/security/mod.ts";
import { MemoryStore } from "../kernel/storage/mod.ts";
import { encodeFields, type FieldInput, RequestReader } from "./encoding.ts";
import type { HostCallContext, HostFunctionRow, ServiceKey } from "./host_function.ts";
import {
  IDENTITY_SERVICE,
  identityCreateUser,
  identityLink,
  identityListLinks,
  identityResolve,
  identityUnlink,
} from "./identity.ts";
import { HostCallError, HostStatus } from "./status.ts";

const status = (s: HostStatus) => (e: unknown) => e instanceof HostCallError && e.status === s;

async function fixture() {
  const clock = new ManualClock();
  const ids = new IdentityStore(new MemoryStore(), { clock });
  for (const p of ["alice", "bob"]) await ids.ensurePrincipal(p, "test");
  const asked: SensitiveAction[] = [];
  const verdict = { allowed: true };
  const call = {
    principal: "alice",
    capsule: "idcap",
    manifest: parseManifest(`[package]\nname = "idcap"\nversion = "0.1.0"\n`, { file: "x" }),
    session: { id: "s1", workspaceId: "w1", workspaceRoot: "/w" },
    signal: new AbortController().signal,
    services: {
      security: {
        authorize: (action: SensitiveAction) => {
          asked.push(action);
          return Promise.resolve(
            {
              allowed: verdict.allowed,
              layer: "approval",
              reason: verdict.allowed ? "allowed" : "the human said no",
            } as Authorization,
          );
        },
      },
      get: <T>(key: ServiceKey<T>): T => {
        if (key === (IDENTITY_SERVICE as unknown)) return ids as T;
        throw new HostCallError(HostStatus.UNAVAILABLE, "no");
      },
    },
  } as unknown as HostCallContext;
  return { ids, asked, verdict, call };
}

async function parse(row: HostFunctionRow, fields: FieldInput[], call: HostCallContext) {
  return await row.parse(new RequestReader(encodeFields(fields)), call);
}

async function call(row: HostFunctionRow, fields: FieldInput[], ctx: HostCallContext) {
  const args = await parse(row, fields, ctx);
  const body = await row.run(args, ctx);
  return JSON.parse(body as string);
}

Deno.test("identity rows ask for the level each operation needs", async () => {
  const { ids, call: ctx } = await fixture();
  const level = async (row: HostFunctionRow, fields: FieldInput[]) =>
    (await row.gate(await parse(row, fields, ctx), ctx) as { level: string }).level;
  assert.equal(await level(identityResolve, ["discord", "1"]), "resolve");
  assert.equal(await level(identityListLinks, [""]), "resolve");
  assert.equal(await level(identityListLinks, ["alice"]), "resolve");
  assert.equal(await level(identityListLinks, ["bob"]), "admin");
  assert.equal(await level(identityListLinks, ["*"]), "admin");
  assert.equal(await level(identityLink, ["discord", "1", ""]), "link");
  assert.equal(await level(identityLink, ["discord", "1", "alice"]), "link");
  assert.equal(await level(identityLink, ["discord", "1", "bob"]), "admin");
  assert.equal(await level(identityCreateUser, ["{}"]), "admin");
  assert.equal(await level(identityUnlink, ["discord", "1"]), "link", "not linked: link level");
  await ids.link({ platform: "discord", platform_user_id: "1" }, "bob", { linkedBy: "t" });
  assert.equal(await level(identityUnlink, ["discord", "1"]), "admin");
  await ids.link({ platform: "discord", platform_user_id: "2" }, "alice", { linkedBy: "t" });
  assert.equal(await level(identityUnlink, ["discord", "2"]), "link");
});

Deno.test("identity rows refuse malformed requests before anything else", async () => {
  const { call: ctx, asked } = await fixture();
  for (
    const [row, fields] of [
      [identityResolve, ["Discord", "1"]],
      [identityResolve, ["discord", ""]],
      [identityLink, ["discord", "1", "Not Valid"]],
      [identityListLinks, ["../x"]],
      [identityCreateUser, ['{"id":"UPPER"}']],
      [identityCreateUser, ['{"id":5}']],
      [identityCreateUser, ["[]"]],
    ] as [HostFunctionRow, FieldInput[]][]
  ) {
    await assert.rejects(parse(row, fields, ctx), status(HostStatus.INVALID_ARGUMENT), row.name);
  }
  assert.equal(asked.length, 0);
});

Deno.test("identity admin operations go through security.authorize as identity.admin", async (t) => {
  const { ids, call: ctx, asked, verdict } = await fixture();

  await t.step(
    "allowed: the action names the operation and target, then the store changes",
    async () => {
      const rec = await call(identityCreateUser, ['{"id":"carol"}'], ctx);
      assert.equal(rec.id, "carol");
      assert.equal(rec.created_by, "capsule:idcap");
      assert.deepEqual(asked.at(-1), {
        kind: "identity.admin",
        principal: "alice",
        session: "s1",
        workspace: "w1",
        operation: "create_user",
        target: "carol",
      });
      await call(identityLink, ["discord", "9", "carol"], ctx);
      assert.equal((asked.at(-1) as { target: string }).target, "discord:9 as carol");
    },
  );

  await t.step("denied: DENIED and the store is untouched", async () => {
    verdict.allowed = false;
    const before = asked.length;
    await assert.rejects(call(identityUnlink, ["discord", "9"], ctx), status(HostStatus.DENIED));
    assert.equal(asked.length, before + 1);
    assert.equal(
      (await ids.resolve({ platform: "discord", platform_user_id: "9" }))?.principal,
      "carol",
    );
    await assert.rejects(call(identityCreateUser, ["{}"], ctx), status(HostStatus.DENIED));
    assert.equal((await ids.listPrincipals()).length, 3);
    verdict.allowed = true;
  });

  await t.step("an unknown principal is NOT_FOUND before a human is asked", async () => {
    const before = asked.length;
    await assert.rejects(
      call(identityLink, ["discord", "10", "nobody"], ctx),
      status(HostStatus.NOT_FOUND),
    );
    assert.equal(asked.length, before);
  });

  await t.step("link-level operations on the caller's own links ask no one", async () => {
    const before = asked.length;
    const r = await call(identityLink, ["discord", "11", ""], ctx);
    assert.equal(r.link.principal, "alice");
    assert.equal((await call(identityResolve, ["discord", "11"], ctx)).principal, "alice");
    assert.equal((await call(identityUnlink, ["discord", "11"], ctx)).principal, "alice");
    assert.equal(asked.length, before);
  });

  await t.step("store errors become statuses", async () => {
    await call(identityLink, ["discord", "12", ""], ctx);
    await assert.rejects(
      call(identityLink, ["discord", "12", "bob"], ctx),
      status(HostStatus.CONFLICT),
    );
    await assert.rejects(
      call(identityCreateUser, ['{"id":"bob"}'], ctx),
      status(HostStatus.CONFLICT),
    );
    await assert.rejects(
      call(identityResolve, ["discord", "404"], ctx),
      status(HostStatus.NOT_FOUND),
    );
  });
});
