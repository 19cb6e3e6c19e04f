import assert from "node:assert/strict";
import { ProcessTransport, type StdioProcess } from "./process_transport.ts";

function fakeProcess(lines: string[]): { process: StdioProcess; written: string[] } {
  const written: string[] = [];
  let exit!: (v: { code: number | null; signal: string | null }) => void;
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => (exit = r));
  const encoder = new TextEncoder();
  const stdout = new ReadableStream<Uint8Array>({
    start(c) {
      // Split one message across two chunks and two messages into one chunk.
      const all = encoder.encode(lines.join(""));
      c.enqueue(all.subarray(0, 7));
      c.enqueue(all.subarray(7));
      c.close();
    },
  });
  const stdin = new WritableStream<Uint8Array>({
    write: (chunk) => void written.push(new TextDecoder().decode(chunk)),
  });
  return {
    process: { pid: 1, stdin, stdout, exited, kill: () => exit({ code: null, signal: "SIGTERM" }) },
    written,
  };
}

Deno.test("ProcessTransport", async (t) => {
  await t.step(
    "reads newline-delimited JSON-RPC across chunks and reports other lines",
    async () => {
      const { process } = fakeProcess([
        '{"jsonrpc":"2.0","id":1,"result":{}}\n',
        "not json\r\n",
        '{"jsonrpc":"1.0","id":2,"result":{}}\n',
        '{"jsonrpc":"2.0","result":{}}\n',
        '{"jsonrpc":"2.0","method":"notifications/x"}\n',
      ]);
      const transport = new ProcessTransport(process);
      const got: unknown[] = [];
      const errors: string[] = [];
      const done = Promise.withResolvers<void>();
      transport.onmessage = (m) => {
        got.push(m);
        if (got.length === 2) done.resolve();
      };
      transport.onerror = (e) => void errors.push(e.message);
      await transport.start();
      await done.promise;
      assert.deepEqual(got, [
        { jsonrpc: "2.0", id: 1, result: {} },
        { jsonrpc: "2.0", method: "notifications/x" },
      ]);
      assert.equal(errors.length, 3, "not JSON, another version, neither method nor id");
      assert.match(errors[0], /not JSON-RPC: not json/);
      assert.match(errors[1], /not JSON-RPC: \{"jsonrpc":"1\.0"/);
      process.kill();
    },
  );
  await t.step(
    "writes one line per message and calls onclose once when the process exits",
    async () => {
      const { process, written } = fakeProcess([]);
      const transport = new ProcessTransport(process);
      let closed = 0;
      transport.onclose = () => closed++;
      await transport.start();
      await transport.send({ jsonrpc: "2.0", id: 2, method: "ping" });
      assert.deepEqual(written, ['{"jsonrpc":"2.0","id":2,"method":"ping"}\n']);
      process.kill();
      await process.exited;
      await transport.close();
      assert.equal(closed, 1);
      await assert.rejects(
        transport.send({ jsonrpc: "2.0", id: 3, method: "ping" }),
        /Not connected/,
      );
    },
  );
});
