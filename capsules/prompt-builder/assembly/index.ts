/**
 * The prompt builder: answers `prompt_builder.v1.assemble` with the system prompt (built-in or
 * `[env]` SYSTEM_PROMPT, plus the workspace's `ASTRID.md`, `[env]` EXTRA_CONTEXT and the installed
 * capsules' static context files and skills, asked of the kernel with `GetPromptContext`), the
 * messages (history + the user's turn) and the tool schemas gathered by a
 * `tool.v1.request.describe` fan-out; tools and context are cached in KV until
 * `astrid.v1.capsules_loaded` or the TTL (docs/capsules/prompt-builder.md).
 */
import { env, fs, Intercept, Invocation, ipc, kv, log, time } from "@astrid/sdk";
import { arrayItems, ObjectScan, quote } from "@astrid/sdk/internal/scan";

const DEFAULT_SYSTEM =
  "You are Astrid, an AI agent working in the user's workspace. Use the tools you are given " +
  "to read, change and check files and to run commands; never guess a file's contents. Work " +
  "step by step, keep changes small, and tell the user plainly what you did. When a tool fails " +
  "or an action is denied, say so and do not pretend it succeeded.";

const TOOLS_KEY = "tools";
/** KV keys of the cached static context: `context/<workspace id>`, `context/-` without one. */
const CONTEXT_KEY_PREFIX = "context/";
const CONTEXT_REQUEST_TOPIC = "astrid.v1.request.get_prompt_context";
const CONTEXT_RESPONSE_TOPIC = "astrid.v1.response.get_prompt_context";
const ASTRID_MD_LIMIT: i32 = 64 * 1024;
const CUT_MARK = "\n…(cut)";

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

/** The static context as prompt sections: `## <capsule>/<file>` blocks and `## <skill>` blocks. */
class StaticSections {
  files: string = "";
  skills: string = "";
}

function contextKey(workspace: string | null): string {
  return CONTEXT_KEY_PREFIX + (workspace !== null ? workspace! : "-");
}

/** The static context sections from the cache, or null when there are none fresh enough. */
function cachedContext(key: string): StaticSections | null {
  const text = kv.getText(key);
  if (text.isErr) return null;
  const o = new ObjectScan(text.unwrap());
  const files = o.str("files");
  const skills = o.str("skills");
  if (!o.ok || files === null || skills === null) return null;
  const age = now() - o.num("at");
  if (age < 0 || age > <f64>configInt("CACHE_TTL_MS", 300000)) return null;
  const out = new StaticSections();
  out.files = files;
  out.skills = skills;
  return out;
}

/** Formats a `GetPromptContext` result (the kernel has bounded it) as prompt sections. */
function formatContext(result: string): StaticSections {
  const out = new StaticSections();
  const o = new ObjectScan(result);
  const files: string[] = [];
  const context = arrayItems(o.raw("context") !== null ? o.raw("context")! : "[]");
  for (let i = 0; i < context.length; i++) {
    const c = new ObjectScan(context[i]);
    const text = str(c, "text", "").trim();
    const cut = c.bool("cut");
    if (text.length == 0 && !cut) continue;
    files.push(
      "## " + str(c, "capsule", "?") + "/" + str(c, "file", "?") + "\n\n" + text +
        (cut ? CUT_MARK : ""),
    );
  }
  const skills: string[] = [];
  const list = arrayItems(o.raw("skills") !== null ? o.raw("skills")! : "[]");
  for (let i = 0; i < list.length; i++) {
    const k = new ObjectScan(list[i]);
    let block = "## " + str(k, "name", "?");
    const description = str(k, "description", "").trim();
    if (description.length > 0) block += "\n\n" + description;
    const text = str(k, "text", "").trim();
    if (text.length > 0) block += "\n\n" + text;
    if (k.bool("cut")) block += CUT_MARK;
    skills.push(block);
  }
  out.files = files.join("\n\n");
  out.skills = skills.join("\n\n");
  return out;
}

/**
 * Asks the kernel for the context files and skills of the capsules this principal sees
 * (`GetPromptContext`); null when no answer came in time or the kernel refused.
 */
function fetchContext(requestId: string, workspace: string | null): StaticSections | null {
  const sub = ipc.subscribe(CONTEXT_RESPONSE_TOPIC, true);
  if (sub.isErr) {
    log.warn("cannot subscribe to the prompt context: " + sub.error!.toString());
    return null;
  }
  const s = sub.unwrap();
  const rid = "c-" + requestId;
  const options = new ipc.PublishOptions();
  options.requestId = rid;
  const body = workspace !== null ? '{"workspace_id":' + quote(workspace!) + "}" : "{}";
  let found: StaticSections | null = null;
  const sent = ipc.publish(CONTEXT_REQUEST_TOPIC, body, options);
  if (sent.isErr) {
    log.warn("cannot ask for the prompt context: " + sent.error!.toString());
  } else if (!sent.unwrap().reachedNobody) {
    const deadline = now() + <f64>configInt("CONTEXT_TIMEOUT_MS", 2000);
    while (true) {
      const left = deadline - now();
      if (left <= 0) {
        log.warn("no prompt context came within CONTEXT_TIMEOUT_MS");
        break;
      }
      const next = s.recv(<u32>left);
      if (next.isErr) {
        log.warn("no prompt context came: " + next.error!.toString());
        break;
      }
      const msg = next.unwrap();
      // Every subscription has a queue of its own, but a concurrent assemble's answer may pass.
      if (msg.requestId === null || msg.requestId! != rid) continue;
      const p = new ObjectScan(msg.jsonText);
      const result = p.raw("result");
      if (!p.bool("ok") || result === null) {
        log.warn("the kernel refused the prompt context: " + msg.jsonText);
      } else {
        found = formatContext(result);
      }
      break;
    }
  }
  s.close();
  return found;
}

/** The static context for this assemble: from the cache, else asked and cached. */
function staticContext(requestId: string, workspace: string | null): StaticSections {
  const key = contextKey(workspace);
  const cached = cachedContext(key);
  if (cached !== null) return cached;
  const fetched = fetchContext(requestId, workspace);
  if (fetched === null) return new StaticSections();
  const saved = kv.setText(
    key,
    '{"at":' + (<i64>now()).toString() + ',"files":' + quote(fetched.files) + ',"skills":' +
      quote(fetched.skills) + "}",
  );
  if (saved.isErr) log.warn("cannot cache the prompt context: " + saved.error!.toString());
  return fetched;
}

/** The project's instructions: `workspace://ASTRID.md`, cut to 64 KiB; "" when absent. */
function projectInstructions(): string {
  const text = fs.readText("workspace://ASTRID.md");
  if (text.isErr) return "";
  let t = text.unwrap().trim();
  if (t.length > ASTRID_MD_LIMIT) t = t.substring(0, ASTRID_MD_LIMIT) + CUT_MARK;
  return t;
}

/**
 * The system prompt: the base prompt, `# Project instructions (ASTRID.md)`, `# Context`
 * (EXTRA_CONTEXT, then each capsule context file under `## <capsule>/<file>`), `# Skills`.
 */
function systemPrompt(sections: StaticSections): string {
  let system = env.getOr("SYSTEM_PROMPT", "");
  if (system.length == 0) system = DEFAULT_SYSTEM;
  const project = projectInstructions();
  if (project.length > 0) system += "\n\n# Project instructions (ASTRID.md)\n\n" + project;
  let context = env.getOr("EXTRA_CONTEXT", "");
  if (sections.files.length > 0) {
    context += (context.length > 0 ? "\n\n" : "") + sections.files;
  }
  if (context.length > 0) system += "\n\n# Context\n\n" + context;
  if (sections.skills.length > 0) {
    system += "\n\n# Skills\n\nFollow a skill's instructions when its description fits the " +
      "task.\n\n" + sections.skills;
  }
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

  const sections = staticContext(requestId, workspace);

  const history = arrayItems(p.raw("history") !== null ? p.raw("history")! : "[]");
  history.push('{"role":"user","content":' + quote(str(p, "text", "")) + "}");

  let body = "{";
  if (session !== null) body += '"session":' + quote(session!) + ",";
  if (workspace !== null) body += '"workspace_id":' + quote(workspace!) + ",";
  body += '"request_id":' + quote(requestId) + ',"system":' + quote(systemPrompt(sections)) +
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

/** `astrid.v1.capsules_loaded`: tools, context and skills may have changed: drop the caches. */
@interceptor("astrid.v1.capsules_loaded")
function onCapsulesLoaded(inv: Invocation): Intercept {
  kv.remove(TOOLS_KEY);
  kv.clearPrefix(CONTEXT_KEY_PREFIX);
  return Intercept.next();
}
