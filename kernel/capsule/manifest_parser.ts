/**
 * Parses and validates `Capsule.toml` into a typed {@link CapsuleManifest}. Every problem of a
 * manifest is collected (not only the first) and thrown together as one {@link ManifestError};
 * each names the file, the line of the offending key or table, the field and a fix. Unknown
 * keys are errors with a "did you mean" hint. The schema is `docs/capsule_manifest.md`.
 *
 * @module
 */
import { parse, TomlError } from "smol-toml";
import { TopicPattern } from "../events/mod.ts";
import { ManifestError } from "./errors.ts";
import {
  type CapsuleManifest,
  type ExportEntry,
  type ImportEntry,
  type PublishEntry,
  type SubscribeEntry,
} from "./manifest.ts";
import { TomlLocator } from "./_toml_locator.ts";
import { Context, type Table } from "./_manifest_context.ts";
import { readCapabilities, readPackage, readStatic, readWasm } from "./_manifest_tables.ts";
import { readInterfaces, readTopics } from "./_manifest_interfaces.ts";
import {
  readArray,
  readCommand,
  readCron,
  readEnv,
  readMcpServer,
  readSkill,
  readTool,
  readUplink,
} from "./_manifest_entries.ts";

/** Options of {@link parseManifest}. */
export interface ParseManifestOptions {
  /** The file the text came from; every message names it. */
  readonly file: string;
}

/** The largest manifest accepted, in bytes. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

const q = JSON.stringify;

/** Parses `text`, the contents of `options.file`; throws {@link ManifestError} listing every problem. */
export function parseManifest(text: string, options: ParseManifestOptions): CapsuleManifest {
  const file = options.file;
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > MAX_MANIFEST_BYTES) {
    throw new ManifestError(file, [{
      file,
      line: 1,
      field: "(file)",
      problem: `the manifest is ${bytes} bytes, the limit is ${MAX_MANIFEST_BYTES}`,
      fix: "move large content (schemas, prompts) into static/ files",
    }]);
  }
  let doc: Table;
  try {
    doc = parse(text, { maxDepth: 64, unsafeKeyBehaviour: "throw" }) as Table;
  } catch (cause) {
    if (!(cause instanceof TomlError)) throw cause;
    const detail = cause.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
    const near = text.split(/\r?\n/)[cause.line - 1]?.trim().slice(0, 60);
    throw new ManifestError(file, [{
      file,
      line: cause.line,
      column: cause.column,
      field: "(syntax)",
      problem: `invalid TOML: ${detail}` + (near ? ` in ${q(near)}` : ""),
      fix: "see https://toml.io for the syntax",
    }]);
  }
  const ctx = new Context(file, new TomlLocator(text));
  const manifest = readManifest(ctx, doc);
  if (ctx.issues.length > 0) {
    const sorted = [...ctx.issues].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new ManifestError(file, sorted);
  }
  return manifest;
}

function readManifest(ctx: Context, doc: Table): CapsuleManifest {
  ctx.known(doc, [], "");
  const pkg = readPackage(ctx, doc.package);
  const wasm = readWasm(ctx, doc.wasm, pkg.name);
  const capabilities = readCapabilities(ctx, doc.capabilities);
  const imports = readInterfaces(ctx, doc.imports, "imports") as ImportEntry[];
  const exports = readInterfaces(ctx, doc.exports, "exports") as ExportEntry[];
  const publish = readTopics(ctx, doc.publish, "publish") as PublishEntry[];
  const subscribe = readTopics(ctx, doc.subscribe, "subscribe") as SubscribeEntry[];
  const tool = readArray(ctx, doc.tool, "tool", readTool);
  const command = readArray(ctx, doc.command, "command", readCommand);
  const skill = readArray(ctx, doc.skill, "skill", readSkill);
  const env = readEnv(ctx, doc.env);
  const mcp_server = readArray(ctx, doc.mcp_server, "mcp_server", readMcpServer);
  const uplink = readArray(ctx, doc.uplink, "uplink", readUplink);
  const statics = readStatic(ctx, doc.static);
  const cron = readArray(ctx, doc.cron, "cron", readCron);
  const manifest: CapsuleManifest = {
    file: ctx.file,
    package: pkg,
    ...(wasm ? { wasm } : {}),
    capabilities,
    imports,
    exports,
    publish,
    subscribe,
    tool,
    command,
    skill,
    env,
    mcp_server,
    uplink,
    static: statics,
    cron,
  };
  crossCheck(ctx, manifest);
  return manifest;
}

/** Checks that need several sections: engines for handlers, ACLs, names used twice. */
function crossCheck(ctx: Context, m: CapsuleManifest): void {
  const wasmFix = `add a [wasm] table (the module that exports the handler)`;
  if (!m.wasm) {
    m.subscribe.forEach((s) => {
      if (s.handler) {
        ctx.fail(
          ["subscribe", s.topic, "handler"],
          `handler ${q(s.handler)} needs a WebAssembly module`,
          wasmFix,
        );
      }
    });
    m.tool.forEach((_, i) =>
      ctx.fail(["tool", i], "a tool needs a WebAssembly module to run it", wasmFix)
    );
    m.command.forEach((c, i) => {
      if (c.handler) {
        ctx.fail(
          ["command", i, "handler"],
          `handler ${q(c.handler)} needs a WebAssembly module`,
          wasmFix,
        );
      }
    });
  }
  const dupes = (list: readonly { name: string }[], table: string) => {
    const seen = new Set<string>();
    list.forEach((e, i) => {
      if (seen.has(e.name)) {
        ctx.fail(
          [table, i, "name"],
          `${q(e.name)} is declared twice in [[${table}]]`,
          "rename or remove one",
        );
      }
      seen.add(e.name);
    });
  };
  dupes(m.tool, "tool");
  dupes(m.command, "command");
  dupes(m.skill, "skill");
  dupes(m.mcp_server, "mcp_server");
  dupes(m.uplink, "uplink");
  dupes(m.cron, "cron");
  m.tool.forEach((t, i) => {
    const topic = `tool.v1.execute.${t.name}`;
    const bound = m.subscribe.find((s) => s.handler && s.topic === topic);
    if (bound) {
      ctx.fail(
        ["tool", i, "name"],
        `tool ${q(t.name)} is bound twice: by [[tool]] and by [subscribe] ${q(topic)}`,
        "remove the [subscribe] handler; [[tool]] binds it",
      );
    }
  });
  m.mcp_server.forEach((s, i) => {
    if (!m.capabilities.host_process.includes(s.command)) {
      ctx.fail(
        ["mcp_server", i, "command"],
        `command ${q(s.command)} is not in capabilities.host_process`,
        `add host_process = [${q(s.command)}] to [capabilities]`,
      );
    }
  });
  if (m.uplink.length > 0 && !m.capabilities.uplink) {
    ctx.fail(
      ["uplink"],
      "[[uplink]] entries need the uplink capability",
      "add uplink = true to [capabilities]",
    );
  }
  if (m.capabilities.uplink && m.imports.length > 0) {
    ctx.fail(
      ["imports"],
      "an uplink capsule loads before every other capsule, so it cannot import",
      "remove [imports], or move the dependent part into a separate capsule",
    );
  }
  const publishers = m.publish.map((p) => TopicPattern.parse(p.topic));
  m.cron.forEach((c, i) => {
    if (c.topic.includes("*") || publishers.some((p) => p.matches(c.topic))) return;
    ctx.fail(
      ["cron", i, "topic"],
      `${q(c.topic)} is not covered by any [publish] key`,
      `add [publish] ${q(c.topic)} = { wit = "…" }: a cron job publishes as the capsule`,
    );
  });
}
