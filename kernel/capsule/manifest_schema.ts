/**
 * The field catalogue of `Capsule.toml`: which keys each table accepts. The parser rejects
 * every other key with a "did you mean" hint, and `manifest_docs_test.ts` checks that
 * `docs/capsule_manifest.md` documents exactly these fields, so doc and code cannot drift.
 *
 * Keys: `""` is the top level; `"imports.*"` an inline-table entry of `[imports]` (likewise
 * `exports.*`, `publish.*`, `subscribe.*`, `env.*`); array tables by their name (`tool`).
 *
 * @module
 */

/** Every table of the manifest and the fields it accepts. */
export const MANIFEST_SCHEMA: Readonly<Record<string, readonly string[]>> = {
  "": [
    "package",
    "wasm",
    "capabilities",
    "imports",
    "exports",
    "publish",
    "subscribe",
    "tool",
    "command",
    "skill",
    "env",
    "mcp_server",
    "uplink",
    "static",
    "cron",
  ],
  package: [
    "name",
    "version",
    "description",
    "authors",
    "license",
    "repository",
    "homepage",
    "keywords",
    "astrid_version",
  ],
  wasm: ["file", "hash"],
  capabilities: [
    "fs_read",
    "fs_write",
    "net",
    "net_bind",
    "host_process",
    "allow_persistent",
    "kv",
    "identity",
    "http",
    "uplink",
    "approval",
    "allow_prompt_injection",
  ],
  "imports.*": ["version", "optional"],
  "exports.*": ["version"],
  "publish.*": ["wit", "schema", "fanout", "description"],
  "subscribe.*": ["wit", "schema", "handler", "priority", "guard", "detach", "description"],
  tool: ["name", "description", "input_schema", "handler"],
  command: ["name", "description", "handler", "file"],
  skill: ["name", "description", "file"],
  "env.*": ["type", "default", "required", "description", "options"],
  mcp_server: ["name", "command", "args", "env", "hash", "description"],
  uplink: ["name", "platform", "profile", "description"],
  static: ["context_files"],
  cron: ["name", "schedule", "topic", "payload"],
};

/**
 * Keys other manifests (the reference implementation's, older drafts) use, with what to write
 * instead. Keyed like {@link MANIFEST_SCHEMA}, then `.` and the key.
 */
export const RENAMED_KEYS: Readonly<Record<string, string>> = {
  ".component": 'declare the module as [wasm] with file = "<name>.wasm"',
  ".interceptor": "bind interceptors as [subscribe] entries with handler and priority",
  ".context_file": "list context files in [static] context_files",
  ".topic": "describe topics with wit or schema on their [publish]/[subscribe] entry",
  ".dependencies": "declare dependencies in [imports] and [exports]",
  ".llm_provider": 'export the interface in [exports], e.g. "llm:<provider>" = "1.0.0"',
  "package.astrid-version": "write astrid_version",
  "package.wasm":
    'the module is declared in a table of its own: write [wasm] and then file = "<name>.wasm"',
  "capabilities.ipc_publish": "list topics as keys of the [publish] table",
  "capabilities.ipc_subscribe": "list topics as keys of the [subscribe] table",
  "capabilities.net_connect": "list host:port entries in net",
  "env.*.enum_values": "write options",
  "env.*.request": "write description",
  "mcp_server.id": "write name",
  "mcp_server.type": "remove it: every [[mcp_server]] speaks MCP over stdio",
  "wasm.id": "remove it: the capsule name identifies the module",
  "wasm.type": "remove it",
};
