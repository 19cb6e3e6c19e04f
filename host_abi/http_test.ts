import assert from "node:assert/strict";
import { parseManifest } from "../kernel/capsule/mod.ts";
import { ManualClock } from "../kernel/clock.ts";
import { DEFAULT_CONFIG, type PolicyConfig } from "../kernel/config/mod.ts";
import { EventBus, ManualTimers } from "../kernel/events/mod.ts";
import {
  type Authorization,
  describeAction,
  type NetRequestAction,
  Policy,
  type SensitiveAction,
} from "../kernel/security/mod.ts";
import { MemoryStore } from "../kernel/storage/mod.ts";
import {
  decodeFields,
  encodeFields,
  encodeU32,
  type FieldInput,
  RequestReader,
} from "./encoding.ts";
import { ManifestSecurityGate } from "./gate.ts";
import { HandleTable } from "./handle_table.ts";
import type { HostCallContext, HostFunctionRow } from "./host_function.ts";
import { capsuleBus, createHostServices, provide, scopedKv } from "./host_services.ts";
import {
  addressScope,
  HTTP_FUNCTIONS,
  HTTP_SERVICE,
  httpRequest,
  type HttpService,
  httpStreamClose,
  httpStreamRead,
  httpStreamStart,
} from "./http.ts";
import { HOST_TIMERS } from "./ipc.ts";
import { INVOCATION_ORIGIN, type InvocationOrigin, type ModelCallLedger } from "./lifecycle.ts";
import { DEFAULT_HOST_LIMITS } from "./limits.ts";
import { HostCallError, HostStatus } from "./status.ts";

/** A test CA and a leaf for `pinned.test` it signed (valid until 2126). */
const TEST_CA = `-----BEGIN CERTIFICATE-----
MIIBmDCCAT+gAwIBAgIURPWDy15JD2paTTPn+Llx5bhQjywwCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOQXN0cmlkIFRlc3QgQ0EwIBcNMjYxMTIzMTY0NTU5WhgPMjEy
NjEwMzAxNjQ1NTlaMBkxFzAVBgNVBAMMDkFzdHJpZCBUZXN0IENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAERoxeMIxH0Lv4IPsGghduBBEQGJN+Yim90fQE18rH
fwSxtQRyd/LI0eUWMiPNkRtpgpUVhCNQbO2VD8krzLmpzKNjMGEwHQYDVR0OBBYE
FLqijbSbXDnfeKo4Zn7KlAR1GNzoMB8GA1UdIwQYMBaAFLqijbSbXDnfeKo4Zn7K
lAR1GNzoMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgIEMAoGCCqGSM49
BAMCA0cAMEQCIBsbLRZqUzjxSf1IPTGb6f9esVl1GsW64k0Uqrb3Rc2gAiAamB+N
QogSgq74DgKljDySXCgpAueeBKN4nEpLzLS6Sg==
-----END CERTIFICATE-----`;
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBsDCCAVagAwIBAgIUM4rnhXHqRy42H32QHRStIZjcXkcwCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOQXN0cmlkIFRlc3QgQ0EwIBcNMjYxMTIzMTY0NTU5WhgPMjEy
NjEwMzAxNjQ1NTlaMBYxFDASBgNVBAMMC3Bpbm5lZC50ZXN0MFkwEwYHKoZIzj0C
AQYIKoZIzj0DAQcDQgAEnPKB8Y1xhkNghSwMG2bcOb3OyJ6B58EltCQy3XZ8TQmB
dJSwKmfe1VVxmfcJkOpiVleE7jNzDj3ULaiYTJmtlqN9MHswFgYDVR0RBA8wDYIL
cGlubmVkLnRlc3QwDAYDVR0TAQH/BAIwADATBgNVHSUEDDAKBggrBgEFBQcDATAd
BgNVHQ4EFgQUhQuMrhs3wu+mrstIoeFsKdjIPuQwHwYDVR0jBBgwFoAUuqKNtJtc
Od94qjhmfsqUBHUY3OgwCgYIKoZIzj0EAwIDSAAwRQIgVS1rFp/B5yIErXlcfs5W
JtkZ82nWNkPkzChh8p6NZdoCIQDX9pdR7mFzQYpeD3KWsQX56RP9STseIlbUlbe7
I6Bh8Q==
-----END CERTIFICATE-----`;
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXsdcq3tYIwCzXp/7
EtrPZ4wuuUSMxzpwsx3PViPtGVihRANCAASc8oHxjXGGQ2CFLAwbZtw5vc7InoHn
wSW0JDLddnxNCYF0lLAqZ97VVXGZ9wmQ6mJWV4TuM3MOPdQtqJhMma2W
-----END PRIVATE KEY-----`;

const policy: PolicyConfig = {
  ...DEFAULT_CONFIG.security.policy,
  denied_hosts: ["169.254.169.254", "203.0.113.7"],
};
const decoder = new TextDecoder();

interface Ctx {
  call: HostCallContext;
  actions: SensitiveAction[];
}

function context(
  caps: string,
  options: {
    service?: HttpService;
    timers?: ManualTimers;
    handles?: HandleTable;
    origin?: InvocationOrigin;
    requestId?: string;
  } = {},
): Ctx {
  const actions: SensitiveAction[] = [];
  const compiled = Policy.for(policy);
  const extensions = [provide(HTTP_SERVICE, options.service ?? {})];
  if (options.timers !== undefined) extensions.push(provide(HOST_TIMERS, options.timers));
  if (options.origin !== undefined) extensions.push(provide(INVOCATION_ORIGIN, options.origin));
  const call: HostCallContext = {
    principal: "alice",
    capsule: "fetcher",
    manifest: parseManifest(
      `[package]\nname = "fetcher"\nversion = "0.1.0"\n\n[capabilities]\n${caps}\n`,
      { file: "fetcher/Capsule.toml" },
    ),
    exportName: "run",
    session: { id: "s1", workspaceId: "w1", workspaceRoot: "/w" },
    ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
    signal: new AbortController().signal,
    clock: new ManualClock(),
    limits: DEFAULT_HOST_LIMITS,
    services: createHostServices({
      vfs: () => Promise.reject(new Error("unused")),
      kv: scopedKv(new MemoryStore(), "alice", "fetcher"),
      bus: capsuleBus(new EventBus(), { principal: "alice", capsule: "fetcher" }),
      security: {
        authorize(action: SensitiveAction): Promise<Authorization> {
          actions.push(action);
          const block = compiled.check(action, describeAction(action));
          return Promise.resolve({
            allowed: block === null,
            layer: block === null ? "mode" : "policy",
            reason: block?.reason ?? "allowed",
            cancelled: false,
            timedOut: false,
          } as unknown as Authorization);
        },
      },
      audit: { append: () => Promise.resolve() },
      handles: options.handles ?? new HandleTable(),
      extensions,
    }),
  };
  return { call, actions };
}

/** Parse → the real manifest gate → run, as the dispatcher does. */
async function invoke(
  row: HostFunctionRow,
  fields: readonly FieldInput[],
  call: HostCallContext,
): Promise<Uint8Array> {
  const args = await row.parse(new RequestReader(encodeFields(fields)), call);
  const spec = await row.gate(args, call);
  for (const req of spec === null ? [] : Array.isArray(spec) ? spec : [spec]) {
    const denial = ManifestSecurityGate.for(call.manifest).check(req);
    if (denial !== null) throw new HostCallError(HostStatus.DENIED, denial.message);
  }
  const out = await row.run(args, call);
  return typeof out === "string" ? new TextEncoder().encode(out) : out ?? new Uint8Array();
}

function whole(bytes: Uint8Array): { meta: Record<string, unknown>; body: string } {
  const [meta, body] = decodeFields(bytes);
  return { meta: JSON.parse(decoder.decode(meta)), body: decoder.decode(body) };
}

const rejectsWith = (s: HostStatus, re?: RegExp) => (e: unknown) =>
  e instanceof HostCallError && e.status === s && (re === undefined || re.test(e.message));

/** A loopback server: echo, big, SSE (pushed by the test), slow. */
function startServer(tls = false) {
  const events: ReadableStreamDefaultController<Uint8Array>[] = [];
  const seen: { host: string | null; method: string; body: string }[] = [];
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    ...(tls ? { cert: TEST_CERT, key: TEST_KEY } : {}),
  }, async (req) => {
    const url = new URL(req.url);
    seen.push({ host: req.headers.get("host"), method: req.method, body: await req.text() });
    if (url.pathname === "/big") return new Response("x".repeat(5000));
    if (url.pathname === "/sse") {
      const body = new ReadableStream<Uint8Array>({ start: (c) => void events.push(c) });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    }
    return new Response(
      `echo ${req.method} ${url.pathname}${url.search} ${req.headers.get("x-test")}`,
      {
        status: url.pathname === "/missing" ? 404 : 200,
        headers: { "x-reply": "yes" },
      },
    );
  });
  return { server, port: server.addr.port, events, seen };
}

Deno.test("HTTP_FUNCTIONS lists the four rows in table order", () => {
  assert.deepEqual(HTTP_FUNCTIONS.map((r) => r.name), [
    "http_request",
    "http_stream_start",
    "http_stream_read",
    "http_stream_close",
  ]);
});

Deno.test("addressScope() sorts addresses for the SSRF rule", () => {
  const table: [string, string][] = [
    ["8.8.8.8", "public"],
    ["127.0.0.1", "loopback"],
    ["127.9.9.9", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.32.0.1", "public"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "private"],
    ["169.254.169.254", "link-local"],
    ["0.0.0.0", "other"],
    ["224.0.0.1", "other"],
    ["255.255.255.255", "other"],
    ["::1", "loopback"],
    ["[::1]", "loopback"],
    ["::", "other"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["64:ff9b::a9fe:a9fe", "link-local"],
    ["fd00::1", "private"],
    ["fe80::1%eth0", "link-local"],
    ["ff02::1", "other"],
    ["2002:7f00:1::", "loopback"],
    ["2606:4700::1111", "public"],
    ["not an ip", "other"],
  ];
  for (const [ip, scope] of table) assert.equal(addressScope(ip), scope, ip);
});

Deno.test("http_request makes a request to a host the manifest names", async (t) => {
  const s = startServer();
  try {
    const caps = `http = true\nnet = ["127.0.0.1:${s.port}"]`;
    await t.step("GET: status, headers, body", async () => {
      const { call, actions } = context(caps);
      const reply = whole(
        await invoke(httpRequest, [
          JSON.stringify({
            url: `http://127.0.0.1:${s.port}/a?b=1`,
            headers: { "X-Test": "t1" },
          }),
        ], call),
      );
      assert.equal(reply.meta.status, 200);
      assert.equal(reply.body, "echo GET /a?b=1 t1");
      assert.ok(
        (reply.meta.headers as string[][]).some(([k, v]) => k === "x-reply" && v === "yes"),
      );
      assert.deepEqual(actions.map((a) => a.kind === "net.request" && `${a.host}:${a.port}`), [
        `127.0.0.1:${s.port}`,
      ]);
    });
    await t.step(
      "a request made while serving a metered model call is marked modelCall",
      async () => {
        // The budget guard's ledger: alice's call "c-1.1" on route openai is metered now.
        const asked: string[] = [];
        const modelCalls: ModelCallLedger = {
          metered(principal, requestId, options) {
            asked.push(`${principal} ${requestId} ${options?.provider}`);
            return principal === "alice" && requestId === "c-1.1" && options?.provider === "openai";
          },
        };
        const modelCall = async (
          options: { origin?: InvocationOrigin; requestId?: string; ledger?: ModelCallLedger },
        ) => {
          const c = context(caps, {
            service: options.ledger === undefined ? {} : { modelCalls: options.ledger },
            ...(options.origin === undefined ? {} : { origin: options.origin }),
            ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
          });
          await invoke(
            httpRequest,
            [JSON.stringify({ url: `http://127.0.0.1:${s.port}/m` })],
            c.call,
          );
          return (c.actions[0] as NetRequestAction).modelCall;
        };
        const provider = {
          source: "capsule:orchestrator",
          topic: "llm.v1.request.generate.openai",
        };
        assert.equal(await modelCall({}), undefined, "no origin");
        assert.equal(
          await modelCall({ origin: provider, requestId: "c-1.1", ledger: modelCalls }),
          true,
        );
        assert.equal(
          await modelCall({ origin: provider, requestId: "c-1.2", ledger: modelCalls }),
          undefined,
          "the topic is right but the guard metered no such call",
        );
        assert.equal(
          await modelCall({ origin: provider, ledger: modelCalls }),
          undefined,
          "no request id",
        );
        assert.equal(
          await modelCall({ origin: provider, requestId: "c-1.1" }),
          undefined,
          "no ledger: fail closed",
        );
        assert.equal(
          await modelCall({
            origin: { source: "capsule:orchestrator", topic: "llm.v1.request.generate.router" },
            requestId: "c-1.1",
            ledger: modelCalls,
          }),
          undefined,
          "the router's route is never metered",
        );
        assert.equal(
          await modelCall({
            origin: { source: "capsule:orchestrator", topic: "tool.v1.execute.fetch" },
            requestId: "c-1.1",
            ledger: modelCalls,
          }),
          undefined,
          "a tool's request",
        );
        assert.deepEqual(asked, ["alice c-1.1 openai", "alice c-1.2 openai", "alice c-1.1 router"]);
      },
    );
    await t.step("POST with a body; a 404 is a reply, not an error", async () => {
      const { call } = context(caps);
      const reply = whole(
        await invoke(httpRequest, [
          JSON.stringify({ method: "post", url: `http://127.0.0.1:${s.port}/missing` }),
          "payload",
        ], call),
      );
      assert.equal(reply.meta.status, 404);
      assert.deepEqual(s.seen.at(-1), {
        host: `127.0.0.1:${s.port}`,
        method: "POST",
        body: "payload",
      });
    });
    await t.step("a response over max_response_bytes is LIMIT_EXCEEDED", async () => {
      const { call } = context(caps);
      await assert.rejects(
        invoke(httpRequest, [
          JSON.stringify({ url: `http://127.0.0.1:${s.port}/big`, max_response_bytes: 1000 }),
        ], call),
        rejectsWith(HostStatus.LIMIT_EXCEEDED, /1000/),
      );
    });
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("http_request enforces the gate, the pipeline and the SSRF rule before connecting", async (t) => {
  const s = startServer();
  const resolve = (host: string) =>
    Promise.resolve(
      host === "api.test" || host === "other.test"
        ? [{ address: "127.0.0.1", family: 4 as const }]
        : host === "pub.test"
        ? [{ address: "203.0.113.7", family: 4 as const }]
        : [],
    );
  try {
    const url = (host: string) => JSON.stringify({ url: `http://${host}:${s.port}/` });
    await t.step("no http capability: DENIED by the gate", async () => {
      const { call, actions } = context(`net = []`);
      await assert.rejects(
        invoke(httpRequest, [url("127.0.0.1")], call),
        rejectsWith(HostStatus.DENIED, /http/),
      );
      assert.equal(actions.length, 0);
    });
    await t.step("a host no net entry covers: DENIED by the gate", async () => {
      const { call } = context(`http = true\nnet = ["example.com:443"]`);
      await assert.rejects(
        invoke(httpRequest, [url("127.0.0.1")], call),
        rejectsWith(HostStatus.DENIED, /net entry/),
      );
    });
    await t.step("loopback through a wildcard entry: DENIED by the SSRF rule", async () => {
      const before = s.seen.length;
      const { call } = context(`http = true\nnet = ["*:${s.port}"]`);
      await assert.rejects(
        invoke(httpRequest, [url("127.0.0.1")], call),
        rejectsWith(HostStatus.DENIED, /loopback address 127\.0\.0\.1/),
      );
      assert.equal(s.seen.length, before, "never connected");
    });
    await t.step(
      "a name resolving to loopback via *.test: DENIED; named exactly: allowed",
      async () => {
        const wildcard = context(`http = true\nnet = ["*.test:${s.port}"]`, {
          service: { resolve },
        });
        await assert.rejects(
          invoke(httpRequest, [url("api.test")], wildcard.call),
          rejectsWith(HostStatus.DENIED, /resolves to loopback/),
        );
        const exact = context(`http = true\nnet = ["api.test:${s.port}"]`, {
          service: { resolve },
        });
        const reply = whole(await invoke(httpRequest, [url("api.test")], exact.call));
        assert.equal(reply.meta.status, 200);
        assert.equal(s.seen.at(-1)?.host, `api.test:${s.port}`, "Host names the URL's host");
      },
    );
    await t.step("a denied host: DENIED by the policy through the pipeline", async () => {
      const { call } = context(`http = true\nnet = ["169.254.169.254:80"]`);
      await assert.rejects(
        invoke(
          httpRequest,
          [JSON.stringify({ url: "http://169.254.169.254/latest/meta-data" })],
          call,
        ),
        rejectsWith(HostStatus.DENIED, /denied host/),
      );
    });
    await t.step("a name resolving to a denied address: DENIED before connecting", async () => {
      const { call } = context(`http = true\nnet = ["pub.test:${s.port}"]`, {
        service: { resolve, policy },
      });
      await assert.rejects(
        invoke(httpRequest, [url("pub.test")], call),
        rejectsWith(HostStatus.DENIED, /203\.0\.113\.7/),
      );
    });
    await t.step("malformed requests: INVALID_ARGUMENT", async () => {
      const { call } = context(`http = true\nnet = ["*:*"]`);
      for (
        const bad of [
          { url: "file:///etc/passwd" },
          { url: "http://user:pw@x.test/" },
          { url: "http://x.test/", method: "CONNECT" },
          { url: "http://x.test/", headers: { Host: "evil" } },
          { url: "http://x.test/", headers: { "X-A": "a\r\nInjected: 1" } },
          { url: "http://x.test/", extra: 1 },
        ]
      ) {
        await assert.rejects(
          invoke(httpRequest, [JSON.stringify(bad)], call),
          rejectsWith(HostStatus.INVALID_ARGUMENT),
          JSON.stringify(bad),
        );
      }
    });
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("http_request speaks TLS to the checked address, verifying the URL's host", async (t) => {
  const s = startServer(true);
  const resolve = () => Promise.resolve([{ address: "127.0.0.1", family: 4 as const }]);
  try {
    await t.step("the certificate's name matches: OK", async () => {
      const { call } = context(`http = true\nnet = ["pinned.test:${s.port}"]`, {
        service: { resolve, caCerts: [TEST_CA] },
      });
      const reply = whole(
        await invoke(
          httpRequest,
          [JSON.stringify({ url: `https://pinned.test:${s.port}/tls` })],
          call,
        ),
      );
      assert.equal(reply.body, "echo GET /tls null");
    });
    await t.step("another name on the same address: IO (certificate mismatch)", async () => {
      const { call } = context(`http = true\nnet = ["other.test:${s.port}"]`, {
        service: { resolve, caCerts: [TEST_CA] },
      });
      await assert.rejects(
        invoke(httpRequest, [JSON.stringify({ url: `https://other.test:${s.port}/` })], call),
        rejectsWith(HostStatus.IO, /TLS/),
      );
    });
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("http_stream_* streams an SSE body as it arrives", async (t) => {
  const s = startServer();
  const timers = new ManualTimers(new ManualClock());
  const handles = new HandleTable();
  const caps = `http = true\nnet = ["127.0.0.1:${s.port}"]`;
  const { call } = context(caps, { timers, handles });
  const enc = new TextEncoder();
  try {
    const started = JSON.parse(
      decoder.decode(
        await invoke(
          httpStreamStart,
          [JSON.stringify({ url: `http://127.0.0.1:${s.port}/sse` })],
          call,
        ),
      ),
    );
    assert.equal(started.status, 200);
    assert.ok(
      (started.headers as string[][]).some(([k, v]) =>
        k === "content-type" && v === "text/event-stream"
      ),
    );
    const read = (opts = "") =>
      invoke(
        httpStreamRead,
        opts === "" ? [encodeU32(started.handle)] : [encodeU32(started.handle), opts],
        call,
      );
    await t.step("an event is readable before the next one is sent", async () => {
      s.events[0].enqueue(enc.encode("data: one\n\n"));
      assert.equal(decoder.decode(await read()), "data: one\n\n");
    });
    await t.step("a read that times out loses nothing", async () => {
      const waiting = read(`{"timeout_ms": 5000}`);
      for (let i = 0; i < 20; i++) await Promise.resolve();
      timers.advance(5000);
      await assert.rejects(waiting, rejectsWith(HostStatus.TIMEOUT));
      s.events[0].enqueue(enc.encode("data: two\n\n"));
      assert.equal(decoder.decode(await read()), "data: two\n\n");
    });
    await t.step("the end of the body is CLOSED", async () => {
      s.events[0].close();
      await assert.rejects(read(), rejectsWith(HostStatus.CLOSED));
      await assert.rejects(read(), rejectsWith(HostStatus.CLOSED));
    });
    await t.step("close frees the handle", async () => {
      await invoke(httpStreamClose, [encodeU32(started.handle)], call);
      assert.equal(handles.count("http_stream"), 0);
      await assert.rejects(read(), rejectsWith(HostStatus.NOT_FOUND));
    });
    await t.step("streams count against the per-capsule handle limit", async () => {
      const limited = context(caps, { handles: new HandleTable({ maxPerKind: 1 }) });
      const small = { ...limited.call, limits: { ...DEFAULT_HOST_LIMITS, maxHandlesPerKind: 1 } };
      const first = invoke(httpStreamStart, [
        JSON.stringify({ url: `http://127.0.0.1:${s.port}/sse` }),
      ], small);
      await first;
      await assert.rejects(
        invoke(httpStreamStart, [JSON.stringify({ url: `http://127.0.0.1:${s.port}/sse` })], small),
        rejectsWith(HostStatus.LIMIT_EXCEEDED),
      );
      await small.services.handles.closeAll();
      for (const c of s.events.slice(1)) c.close();
    });
  } finally {
    await handles.closeAll();
    await s.server.shutdown();
  }
});

Deno.test("http_request times out while the body is still arriving", async () => {
  const s = startServer();
  const timers = new ManualTimers(new ManualClock());
  try {
    const { call } = context(`http = true\nnet = ["127.0.0.1:${s.port}"]`, { timers });
    const pending = invoke(httpRequest, [
      JSON.stringify({ url: `http://127.0.0.1:${s.port}/sse`, timeout_ms: 1000 }),
    ], call);
    while (s.events.length === 0) await new Promise((r) => setTimeout(r, 5));
    s.events[0].enqueue(new TextEncoder().encode("data: partial\n\n"));
    for (let i = 0; i < 50; i++) await Promise.resolve();
    timers.advance(1000);
    await assert.rejects(pending, rejectsWith(HostStatus.TIMEOUT));
    s.events[0].close();
  } finally {
    await s.server.shutdown();
  }
});
