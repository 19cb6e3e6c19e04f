/**
 * The capsule templates of `astrid capsule new`: each is a manifest, an AssemblyScript entry
 * and a test run by `astrid capsule test`, and each builds as it is. `{{name}}` is the capsule's
 * name, `{{Name}}` its CamelCase form.
 *
 * @module
 */

/** The template names. */
export const TEMPLATE_NAMES = ["tool", "interceptor", "provider", "run-loop"] as const;

/** One template name. */
export type TemplateName = typeof TEMPLATE_NAMES[number];

/** A template: files by path (relative to the capsule directory) and a one-line summary. */
export interface CapsuleTemplate {
  /** What it makes. */
  readonly summary: string;
  /** Path → contents (with placeholders). */
  readonly files: Readonly<Record<string, string>>;
}

const README = `# {{name}}

An Astrid capsule, made with \`astrid capsule new\`. See \`docs/capsule_authoring.md\`.

\`\`\`sh
astrid build .              # compile and pack dist/{{name}}.capsule
astrid capsule test .       # build, boot a test kernel, run tests/
astrid capsule install .    # install it for yourself
\`\`\`
`;

const GITIGNORE = "dist/\n";

const TOOL: CapsuleTemplate = {
  summary: "a tool the model can call (a @tool function taking and returning @json classes)",
  files: {
    "Capsule.toml": `[package]
name = "{{name}}"
version = "0.1.0"
description = "Greets people"

[wasm]

# The input schema is derived from GreetArgs by astrid build.
[[tool]]
name = "greet"
description = "Greets someone by name"
`,
    "assembly/index.ts": `import { log } from "@astrid/sdk";

/** What the model passes to greet. */
@json
class GreetArgs {
  /** The name of the person to greet. */
  name!: string;
  /** Say it loudly. */
  shout: bool = false;
}

/** What greet answers. */
@json
class Greeting {
  message: string = "";
}

/** Greets someone by name. */
@tool
function greet(args: GreetArgs): Greeting {
  log.info("greeting " + args.name);
  const out = new Greeting();
  out.message = "Hello, " + args.name + "!";
  if (args.shout) out.message = out.message.toUpperCase();
  return out;
}
`,
    "tests/{{name}}_test.ts": `import assert from "node:assert/strict";
import { testCapsule } from "astrid/testing";

Deno.test("greet answers with a greeting over the bus", async () => {
  await using capsule = await testCapsule(new URL("..", import.meta.url));
  const result = await capsule.callTool("greet", { name: "Ada" });
  assert.equal(result.isError, false, result.content);
  assert.deepEqual(result.json(), { message: "Hello, Ada!" });
  const loud = await capsule.callTool("greet", { name: "Ada", shout: true });
  assert.deepEqual(loud.json(), { message: "HELLO, ADA!" });
});

Deno.test("greet describes its input schema", async () => {
  await using capsule = await testCapsule(new URL("..", import.meta.url));
  const [tool] = await capsule.describeTools();
  assert.equal(tool.name, "greet");
  assert.deepEqual((tool.input_schema as { required: string[] }).required, ["name"]);
});
`,
    "README.md": README,
    ".gitignore": GITIGNORE,
  },
};

const INTERCEPTOR: CapsuleTemplate = {
  summary: "a guard that sees every user prompt first and may deny it (@interceptor)",
  files: {
    "Capsule.toml": `[package]
name = "{{name}}"
version = "0.1.0"
description = "Refuses prompts that contain blocked words"

[wasm]

[subscribe]
# A guard at priority 10 runs before the core handlers at 100.
"user.v1.prompt" = { wit = "opaque", handler = "guard_prompt", priority = 10 }

[env]
BLOCKED = { type = "array", default = ["password"], description = "Words a prompt may not contain" }
`,
    "assembly/index.ts": `import { env, Intercept, log } from "@astrid/sdk";

/** The part of a user prompt this guard reads. */
@json
class Prompt {
  text: string = "";
}

/** Denies a prompt that contains a word of [env] BLOCKED; lets the rest through. */
@interceptor("user.v1.prompt", 10)
function guardPrompt(prompt: Prompt): Intercept {
  const blocked = env.getList("BLOCKED").unwrapOr([]);
  const text = prompt.text.toLowerCase();
  for (let i = 0; i < blocked.length; i++) {
    if (blocked[i].length > 0 && text.includes(blocked[i].toLowerCase())) {
      log.warn("denied a prompt containing " + blocked[i]);
      return Intercept.deny('The prompt contains "' + blocked[i] + '"');
    }
  }
  return Intercept.next();
}
`,
    "tests/{{name}}_test.ts": `import assert from "node:assert/strict";
import { testCapsule } from "astrid/testing";

Deno.test("the guard denies a prompt with a blocked word and passes the others", async () => {
  await using capsule = await testCapsule(new URL("..", import.meta.url));
  const denied = await capsule.publish("user.v1.prompt", { text: "my Password is hunter2" });
  assert.equal(denied.outcome, "denied");
  const passed = await capsule.publish("user.v1.prompt", { text: "hello" });
  assert.equal(passed.outcome, "delivered");
});
`,
    "README.md": README,
    ".gitignore": GITIGNORE,
  },
};

const PROVIDER: CapsuleTemplate = {
  summary: "an LLM provider answering llm.v1.request.generate.{{name}} with a stream",
  files: {
    "Capsule.toml": `[package]
name = "{{name}}"
version = "0.1.0"
description = "A model provider that echoes the last message back, word by word"

[wasm]

# Payloads: docs/bus_topics.md § Model calls.
[subscribe]
# detach: the caller's publish does not wait for the whole answer, so its stream is relayed live.
"llm.v1.request.generate.{{name}}" = { wit = "opaque", handler = "generate", detach = true }
"llm.v1.request.describe" = { wit = "opaque", handler = "describe" }

[publish]
"llm.v1.stream.{{name}}" = "opaque"
"llm.v1.response.describe.{{name}}" = "opaque"
`,
    "assembly/index.ts": `import { Intercept, Invocation, ipc } from "@astrid/sdk";

@json
class ChatMessage {
  role: string = "";
  content: string = "";
}

/** A generate request (the fields this provider reads). */
@json
class GenerateRequest {
  request_id: string = "";
  session: string = "";
  model: string = "echo-1";
  messages: ChatMessage[] = [];
}

/** A piece of the answer. */
@json
class TextDelta {
  type: string = "text_delta";
  request_id: string = "";
  session: string = "";
  text: string = "";
}

@json
class Usage {
  input_tokens: i32 = 0;
  output_tokens: i32 = 0;
  model: string = "";
}

/** The last message of a stream: the kernel commits its usage. */
@json
class Final {
  type: string = "final";
  request_id: string = "";
  session: string = "";
  stop_reason: string = "end_turn";
  model: string = "";
  usage: Usage = new Usage();
}

/** Streams the last message's words back on llm.v1.stream.{{name}}, then a final message. */
@interceptor("llm.v1.request.generate.{{name}}")
function generateReply(request: GenerateRequest, inv: Invocation): Intercept {
  const requestId = request.request_id.length > 0
    ? request.request_id
    : (inv.requestId !== null ? inv.requestId! : "");
  const options = new ipc.PublishOptions();
  options.requestId = requestId;
  const last = request.messages.length > 0
    ? request.messages[request.messages.length - 1].content
    : "";
  const words = last.split(" ");
  for (let i = 0; i < words.length; i++) {
    const delta = new TextDelta();
    delta.request_id = requestId;
    delta.session = request.session;
    delta.text = (i > 0 ? " " : "") + words[i];
    ipc.publishJson<TextDelta>("llm.v1.stream.{{name}}", delta, options).unwrap();
  }
  const done = new Final();
  done.request_id = requestId;
  done.session = request.session;
  done.model = request.model;
  done.usage.input_tokens = last.length / 4;
  done.usage.output_tokens = last.length / 4;
  done.usage.model = request.model;
  options.endOfStream = true;
  ipc.publishJson<Final>("llm.v1.stream.{{name}}", done, options).unwrap();
  return Intercept.next();
}

@json
class Model {
  id: string = "echo-1";
  tools: bool = false;
}

@json
class Described {
  request_id: string = "";
  provider: string = "{{name}}";
  models: Model[] = [new Model()];
}

/** Says which models this provider serves. */
@interceptor("llm.v1.request.describe")
function describeModels(payload: string, inv: Invocation): Intercept {
  const out = new Described();
  if (inv.requestId !== null) out.request_id = inv.requestId!;
  const options = new ipc.PublishOptions();
  options.requestId = inv.requestId;
  ipc.publishJson<Described>("llm.v1.response.describe.{{name}}", out, options).unwrap();
  return Intercept.next();
}
`,
    "tests/{{name}}_test.ts": `import assert from "node:assert/strict";
import { messageJson, testCapsule } from "astrid/testing";

Deno.test("generate streams the words back, then a final message with usage", async () => {
  // The kernel meters every model call before a provider sees it: give this route a price.
  await using capsule = await testCapsule(new URL("..", import.meta.url), {
    configToml: '[pricing."{{name}}/*"]\\ninput_per_mtok = 0.0\\noutput_per_mtok = 0.0\\n',
  });
  const messages = await capsule.collect(
    "llm.v1.stream.{{name}}",
    () =>
      capsule.publish("llm.v1.request.generate.{{name}}", {
        request_id: "r1",
        model: "echo-1",
        max_tokens: 64,
        messages: [{ role: "user", content: "hello there" }],
      }, { requestId: "r1" }),
    { until: (m) => m.end_of_stream },
  );
  const deltas = messages.map((m) => messageJson<{ type: string; text?: string }>(m));
  assert.equal(deltas.filter((d) => d.type === "text_delta").map((d) => d.text).join(""), "hello there");
  assert.equal(deltas.at(-1)?.type, "final");
  assert.ok(messages.every((m) => m.request_id === "r1"));
});

Deno.test("describe names the provider's models", async () => {
  await using capsule = await testCapsule(new URL("..", import.meta.url));
  const answer = await capsule.waitFor(
    "llm.v1.response.describe.{{name}}",
    () => capsule.publish("llm.v1.request.describe", {}, { requestId: "d1" }),
  );
  assert.deepEqual(messageJson(answer), {
    request_id: "d1",
    provider: "{{name}}",
    models: [{ id: "echo-1", tools: false }],
  });
});
`,
    "README.md": README,
    ".gitignore": GITIGNORE,
  },
};

const RUN_LOOP: CapsuleTemplate = {
  summary: "a long-running loop (@run) that receives messages and answers them",
  files: {
    "Capsule.toml": `[package]
name = "{{name}}"
version = "0.1.0"
description = "Answers every ping with a pong and a count"

[wasm]

[capabilities]
kv = true

[subscribe]
"{{name}}.v1.ping" = "opaque"

[publish]
"{{name}}.v1.pong" = "opaque"
`,
    "assembly/index.ts": `import { ipc, kv, log, runtime } from "@astrid/sdk";

@json
class Ping {
  text: string = "";
}

@json
class Pong {
  text: string = "";
  count: i32 = 0;
}

/** Runs for the capsule's lifetime: each ping gets a pong with a running count (kept in kv). */
@run
function main(): void {
  const sub = ipc.subscribe("{{name}}.v1.ping").unwrap();
  runtime.signalReady().unwrap(); // subscribed: nothing published from now on is missed
  log.info("listening on {{name}}.v1.ping");
  while (true) {
    const next = sub.recv(60_000);
    if (next.isErr) continue; // a timeout: wait again
    const ping = next.unwrap().json<Ping>();
    const pong = new Pong();
    pong.text = ping.text;
    pong.count = I32.parseInt(kv.getText("count").unwrapOr("0")) + 1;
    kv.setText("count", pong.count.toString()).unwrap();
    ipc.publishJson<Pong>("{{name}}.v1.pong", pong).unwrap();
  }
}
`,
    "tests/{{name}}_test.ts": `import assert from "node:assert/strict";
import { messageJson, testCapsule } from "astrid/testing";

Deno.test("each ping gets a pong with a running count", async () => {
  await using capsule = await testCapsule(new URL("..", import.meta.url));
  await capsule.ready();
  for (const [text, count] of [["a", 1], ["b", 2]] as const) {
    const pong = await capsule.waitFor(
      "{{name}}.v1.pong",
      () => capsule.publish("{{name}}.v1.ping", { text }),
    );
    assert.deepEqual(messageJson(pong), { text, count });
  }
});
`,
    "README.md": README,
    ".gitignore": GITIGNORE,
  },
};

/** Every template by name. */
export const TEMPLATES: Readonly<Record<TemplateName, CapsuleTemplate>> = {
  tool: TOOL,
  interceptor: INTERCEPTOR,
  provider: PROVIDER,
  "run-loop": RUN_LOOP,
};
