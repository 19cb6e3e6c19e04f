/**
 * The prompt builder: answers `prompt_builder.v1.assemble` with the system prompt (built-in or
 * `[env]` SYSTEM_PROMPT, plus the workspace's `ASTRID.md` and `[env]` EXTRA_CONTEXT), the
 * messages (history + the user's turn) and the tool schemas gathered by a
 * `tool.v1.request.describe` fan-out, cached in KV until `astrid.v1.capsules_loaded` or the TTL
 * (docs/capsules/prompt-builder.md).
 */
import { env, fs, Intercept, Invocation, ipc, kv, log, time } from "@astrid/sdk";
import { arrayItems, ObjectScan, quote } from "@astrid/sdk/internal/scan";

const DEFAULT_SYSTEM =
  "You are Astrid, an AI agent working in the user's workspace. Use the tools you are given " +
  "to read, change and check files and to run commands; never guess a file's contents. Work " +
  "step by step, keep changes small, and tell the user plainly what you did. When a tool fails " +
  "or an action is denied, say so and do not pretend it succeeded.";

const TOOLS_KEY = "tools";
const ASTRID_MD_LIMIT: i32 = 64 * 1024;

function now(): f64 {
  return <f64>time.nowMs();
}

function configInt(name: string, fallback: i32): i32 {
  const text = env.getOr(name, "");
  if (text.length == 0) return fallback;
  const v = I32.parseInt(text);
  return v >= 0 ? v : fallback;
}

function str(o: ObjectScan, key: string, fallback: string): string {
  const v = o.str(key);
  return v === null ? fallback : v;
}

/** The tool schemas from the cache, or null when there is none fresh enough. */
function cachedTools(): string | null {
  const text = kv.getText(TOOLS_KEY);
  if (text.isErr) return null;
  const o = new ObjectScan(text.unwrap());
  const tools = o.raw("tools");
  if (!o.ok || tools === null) return null;
  const age = now() - o.num("at");
  if (age < 0 || age > <f64>configInt("CACHE_TTL_MS", 300000)) return null;
  return tools;
}

/** Asks every tool capsule for its tools; the first schema of a name wins. */
function describeTools(requestId: string, session: string | null): string {
  const sub = ipc.subscribe("tool.v1.response.describe.*", true);
  if (sub.isErr) {
    log.warn("cannot subscribe to tool descriptions: " + sub.error!.toString());
    return "[]";
  }
  const s = sub.unwrap();
  const rid = "d-" + requestId;
  const options = new ipc.PublishOptions();
  options.requestId = rid;
  let body = '{"request_id":' + quote(rid);
  if (session !== null) body += ',"session":' + quote(session!);
  body += "}";
  const names: string[] = [];
  const items: string[] = [];
  const sent = ipc.publish("tool.v1.request.describe", body, options);
  if (sent.isErr) {
    log.warn("cannot ask for tool descriptions: " + sent.error!.toString());
  } else {
    const quiet = configInt("DESCRIBE_WAIT_MS", 150);
    const deadline = now() + <f64>configInt("DESCRIBE_TIMEOUT_MS", 2000);
    while (true) {
      const left = deadline - now();
      if (left <= 0) break;
      const next = s.recv(<u32>(left < <f64>quiet ? left : <f64>quiet));
      if (next.isErr) break; // quiet for DESCRIBE_WAIT_MS: every capsule has answered
      const msg = next.unwrap();
      const p = new ObjectScan(msg.jsonText);
      // Concurrent assembles of one principal share this queue (the kernel joins equal
      // subscriptions), so an answer to another assemble's describe is taken as well: it lists
      // the same principal's tools.
      const tools = p.raw("tools");
      if (tools === null) continue;
      const list = arrayItems(tools);
      for (let i = 0; i < list.length; i++) {
        const name = new ObjectScan(list[i]).str("name");
        if (name === null || names.includes(name)) continue;
        names.push(name);
        items.push(list[i]);
      }
    }
  }
  s.close();
  return "[" + items.join(",") + "]";
}

/** The project's instructions: `workspace://ASTRID.md`, cut to 64 KiB; "" when absent. */
function projectInstructions(): string {
  const text = fs.readText("workspace://ASTRID.md");
  if (text.isErr) return "";
  let t = text.unwrap().trim();
  if (t.length > ASTRID_MD_LIMIT) t = t.substring(0, ASTRID_MD_LIMIT) + "\n…(cut)";
  return t;
}

function systemPrompt(): string {
  let system = env.getOr("SYSTEM_PROMPT", "");
  if (system.length == 0) system = DEFAULT_SYSTEM;
  const project = projectInstructions();
  if (project.length > 0) system += "\n\n# Project instructions (ASTRID.md)\n\n" + project;
  const extra = env.getOr("EXTRA_CONTEXT", "");
  if (extra.length > 0) system += "\n\n# Context\n\n" + extra;
  return system;
}

/** `prompt_builder.v1.assemble`: publishes the assembled prompt for the request. */
@interceptor("prompt_builder.v1.assemble")
function onAssemble(inv: Invocation): Intercept {
  const p = new ObjectScan(inv.payloadJson);
  const rid = p.str("request_id");
  const requestId = rid !== null ? rid : inv.requestId !== null ? inv.requestId! : inv.id;
  const session = p.str("session") !== null ? p.str("session") : inv.session;
  const workspace = p.str("workspace_id") !== null ? p.str("workspace_id") : inv.workspaceId;

  let tools = cachedTools();
  if (tools === null) {
    tools = describeTools(requestId, session);
    if (tools! == "[]") {
      // Nothing came: a concurrent assemble may have taken the answers and cached them.
      const cached = cachedTools();
      if (cached !== null) tools = cached;
    } else {
      const saved = kv.setText(TOOLS_KEY, '{"at":' + (<i64>now()).toString() + ',"tools":' + tools! + "}");
      if (saved.isErr) log.warn("cannot cache the tool list: " + saved.error!.toString());
    }
  }

  const history = arrayItems(p.raw("history") !== null ? p.raw("history")! : "[]");
  history.push('{"role":"user","content":' + quote(str(p, "text", "")) + "}");

  let body = "{";
  if (session !== null) body += '"session":' + quote(session!) + ",";
  if (workspace !== null) body += '"workspace_id":' + quote(workspace!) + ",";
  body += '"request_id":' + quote(requestId) + ',"system":' + quote(systemPrompt()) +
    ',"messages":[' + history.join(",") + '],"tools":' + tools! + "}";

  let topic = "prompt_builder.v1.response.assemble";
  const replyTo = inv.replyTo;
  if (replyTo !== null && replyTo!.startsWith("prompt_builder.v1.response.")) topic = replyTo!;
  const options = new ipc.PublishOptions();
  options.requestId = requestId;
  const sent = ipc.publish(topic, body, options);
  if (sent.isErr) log.error("cannot publish the assembled prompt: " + sent.error!.toString());
  return Intercept.next();
}

/** `astrid.v1.capsules_loaded`: the tool list may have changed, so drop the cache. */
@interceptor("astrid.v1.capsules_loaded")
function onCapsulesLoaded(inv: Invocation): Intercept {
  kv.remove(TOOLS_KEY);
  return Intercept.next();
}
