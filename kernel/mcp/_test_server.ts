/**
 * Folder-private: a scriptable MCP server for the engine's tests, run as
 * `deno run -A _test_server.ts`. It lists its tools two per page, and offers:
 * `echo` (returns its arguments), `slow` (sends progress, then waits until cancelled or
 * `release` is called), `burst` (three progress notifications written together with its
 * result), `release`, `add_tool` (adds `extra` and sends `list_changed`),
 * `ask` (elicits a form from the client and returns the answer), `log` (sends a
 * `notifications/message`), `crash` (exits with code 3), `pid`. Three resources (two per page)
 * and one prompt.
 *
 * @module
 */
import { Server } from "@modelcontextprotocol/sdk/server";
// @ts-types="@modelcontextprotocol/sdk/server/stdio"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
// @ts-types="@modelcontextprotocol/sdk/types"
import {
  CallToolRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";

const server = new Server({ name: "astrid-test-server", version: "1.2.3" }, {
  capabilities: {
    tools: { listChanged: true },
    resources: {},
    prompts: {},
    logging: {},
  },
});

const tool = (name: string, readOnly = false) => ({
  name,
  description: `Test tool ${name}`,
  inputSchema: { type: "object" as const, properties: {} },
  annotations: { readOnlyHint: readOnly },
});
const tools = ["echo", "slow", "burst", "release", "add_tool", "ask", "log", "crash", "pid"].map((
  n,
) => tool(n, n === "echo"));
let releaseSlow: (() => void) | undefined;

function page<T>(items: T[], cursor: string | undefined): { items: T[]; next?: string } {
  const start = cursor === undefined ? 0 : Number(cursor);
  const next = start + 2 < items.length ? String(start + 2) : undefined;
  return { items: items.slice(start, start + 2), ...(next === undefined ? {} : { next }) };
}

server.setRequestHandler(ListToolsRequestSchema, (req) => {
  const p = page(tools, req.params?.cursor);
  return { tools: p.items, ...(p.next === undefined ? {} : { nextCursor: p.next }) };
});

server.setRequestHandler(ListResourcesRequestSchema, (req) => {
  const all = [1, 2, 3].map((i) => ({ uri: `test://r${i}`, name: `r${i}` }));
  const p = page(all, req.params?.cursor);
  return { resources: p.items, ...(p.next === undefined ? {} : { nextCursor: p.next }) };
});

server.setRequestHandler(ListPromptsRequestSchema, () => ({
  prompts: [{ name: "greet", description: "Say hello" }],
}));

server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
  const args = (req.params.arguments ?? {}) as Record<string, unknown>;
  const text = (t: string) => ({ content: [{ type: "text" as const, text: t }] });
  switch (req.params.name) {
    case "echo":
      return { ...text(JSON.stringify(args)), structuredContent: args };
    case "slow": {
      const token = req.params._meta?.progressToken;
      if (token !== undefined) {
        await extra.sendNotification({
          method: "notifications/progress",
          params: { progressToken: token, progress: 1, total: 2, message: "half" },
        });
      }
      await new Promise<void>((resolve) => {
        releaseSlow = resolve;
        extra.signal.addEventListener("abort", () => resolve(), { once: true });
      });
      return text(extra.signal.aborted ? "aborted" : "done");
    }
    case "burst": {
      const token = req.params._meta?.progressToken;
      for (let i = 1; i <= 3 && token !== undefined; i++) {
        void extra.sendNotification({
          method: "notifications/progress",
          params: { progressToken: token, progress: i, total: 3 },
        });
      }
      return text("burst");
    }
    case "release":
      releaseSlow?.();
      return text("released");
    case "add_tool":
      if (!tools.some((t) => t.name === "extra")) tools.push(tool("extra"));
      await server.sendToolListChanged();
      return text("added");
    case "ask": {
      const r = await server.elicitInput({
        message: "Pick a colour",
        requestedSchema: {
          type: "object",
          properties: { colour: { type: "string", enum: ["red", "blue"] } },
        },
      });
      return text(JSON.stringify(r));
    }
    case "log":
      await server.sendLoggingMessage({ level: "warning", logger: "test", data: "careful" });
      return text("logged");
    case "crash":
      setTimeout(() => Deno.exit(3), 0);
      return await new Promise(() => {});
    case "pid":
      return text(String(Deno.pid));
    default:
      return { ...text(`unknown tool ${req.params.name}`), isError: true };
  }
});

await server.connect(new StdioServerTransport());
