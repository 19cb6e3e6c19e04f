/**
 * The host ABI table: the 51 functions of DESIGN §4, each listed once, in the order of the
 * design (fs · ipc · uplink · kv · http · net · identity · lifecycle · process · approval ·
 * security · hooks · clock · log · random). {@link HOST_FUNCTION_NAMES} is the table's
 * shape; each subsystem file supplies its rows as `<SUBSYSTEM>_FUNCTIONS`, and {@link HOST_TABLE}
 * holds all of them.
 *
 * {@link PENDING_FUNCTIONS} lists names whose row has not landed (empty now that every subsystem
 * has): modules may still import such a name (the engine accepts the import) and the dispatcher
 * answers it `UNSUPPORTED`. `table_test.ts` has a test named `PENDING` that fails while any name
 * is pending.
 *
 * @example
 * ```ts
 * import { HOST_FUNCTION_NAMES, hostFunctionSpecs, hostFunction } from "./table.ts";
 *
 * if (HOST_FUNCTION_NAMES.length !== 51) throw new Error("51 functions");
 * const specs = hostFunctionSpecs();
 * if (specs.find((s) => s.name === "clock_ms")?.inWorker !== true) throw new Error("in worker");
 * if (hostFunction("kv_get")?.subsystem !== "kv") throw new Error("kv_get");
 * ```
 *
 * @module
 */
import type { HostFunctionSpec } from "../kernel/capsule/engine/wasm/mod.ts";
import { APPROVAL_FUNCTIONS } from "./approval.ts";
import { CLOCK_FUNCTIONS } from "./clock.ts";
import { HostAbiCode, HostAbiError } from "./errors.ts";
import { FS_FUNCTIONS } from "./fs.ts";
import { HOOKS_FUNCTIONS } from "./hooks.ts";
import type { HostFunctionRow, Subsystem } from "./host_function.ts";
import { HTTP_FUNCTIONS } from "./http.ts";
import { IDENTITY_FUNCTIONS } from "./identity.ts";
import { IPC_FUNCTIONS } from "./ipc.ts";
import { KV_FUNCTIONS } from "./kv.ts";
import { LIFECYCLE_FUNCTIONS } from "./lifecycle.ts";
import { LOG_FUNCTIONS } from "./log.ts";
import { NET_FUNCTIONS } from "./net.ts";
import { PROCESS_FUNCTIONS } from "./process.ts";
import { RANDOM_FUNCTIONS } from "./random.ts";
import { SECURITY_FUNCTIONS } from "./security.ts";
import { UPLINK_FUNCTIONS } from "./uplink.ts";

/** The table's shape: every function name by subsystem, in DESIGN §4 order. */
export const HOST_FUNCTIONS_BY_SUBSYSTEM: Readonly<Record<Subsystem, readonly string[]>> = {
  fs: [
    "fs_exists",
    "fs_read_file",
    "fs_write_file",
    "fs_mkdir",
    "fs_readdir",
    "fs_stat",
    "fs_unlink",
  ],
  ipc: ["ipc_publish", "ipc_subscribe", "ipc_recv", "ipc_poll", "ipc_unsubscribe"],
  uplink: ["uplink_register", "uplink_send"],
  kv: ["kv_get", "kv_set", "kv_delete", "kv_list_keys", "kv_clear_prefix"],
  http: ["http_request", "http_stream_start", "http_stream_read", "http_stream_close"],
  net: [
    "net_bind_unix",
    "net_accept",
    "net_poll_accept",
    "net_read",
    "net_write",
    "net_close_stream",
  ],
  identity: [
    "identity_resolve",
    "identity_link",
    "identity_unlink",
    "identity_create_user",
    "identity_list_links",
  ],
  lifecycle: ["elicit", "has_secret", "signal_ready", "get_caller", "get_config"],
  process: ["process_spawn", "process_spawn_background", "process_read_logs", "process_kill"],
  approval: ["request_approval"],
  security: ["check_capsule_capability", "enumerate_capabilities"],
  hooks: ["trigger_hook", "get_interceptor_handles"],
  clock: ["clock_ms"],
  log: ["log"],
  random: ["random_bytes"],
};

/** Every function name, in table order (51). */
export const HOST_FUNCTION_NAMES: readonly string[] = Object.values(HOST_FUNCTIONS_BY_SUBSYSTEM)
  .flat();

/** Every subsystem's `<SUBSYSTEM>_FUNCTIONS` (all have landed); {@link buildTable} orders them. */
const LANDED: readonly HostFunctionRow[] = [
  ...FS_FUNCTIONS,
  ...IPC_FUNCTIONS,
  ...UPLINK_FUNCTIONS,
  ...KV_FUNCTIONS,
  ...HTTP_FUNCTIONS,
  ...NET_FUNCTIONS,
  ...IDENTITY_FUNCTIONS,
  ...LIFECYCLE_FUNCTIONS,
  ...PROCESS_FUNCTIONS,
  ...HOOKS_FUNCTIONS,
  ...APPROVAL_FUNCTIONS,
  ...SECURITY_FUNCTIONS,
  ...CLOCK_FUNCTIONS,
  ...LOG_FUNCTIONS,
  ...RANDOM_FUNCTIONS,
];

/** Checks `rows` against the table's shape and orders them; throws `HOST_ABI_BAD_TABLE`. */
export function buildTable(rows: readonly HostFunctionRow[]): readonly HostFunctionRow[] {
  const byName = new Map<string, HostFunctionRow>();
  for (const row of rows) {
    const expected = HOST_FUNCTIONS_BY_SUBSYSTEM[row.subsystem];
    if (expected === undefined || !expected.includes(row.name)) {
      throw new HostAbiError(
        HostAbiCode.HOST_ABI_BAD_TABLE,
        `Host function "${row.name}" is not in subsystem "${row.subsystem}" of the table`,
        { data: { name: row.name } },
      );
    }
    if (byName.has(row.name)) {
      throw new HostAbiError(
        HostAbiCode.HOST_ABI_BAD_TABLE,
        `Host function "${row.name}" is listed twice`,
        { data: { name: row.name } },
      );
    }
    byName.set(row.name, row);
  }
  return HOST_FUNCTION_NAMES.flatMap((name) => byName.get(name) ?? []);
}

/** The table: every landed row, each once, in table order. */
export const HOST_TABLE: readonly HostFunctionRow[] = buildTable(LANDED);

const ROWS = new Map(HOST_TABLE.map((row) => [row.name, row]));

/** Names of the table whose rows have not landed yet (answered `UNSUPPORTED`). */
export const PENDING_FUNCTIONS: readonly string[] = HOST_FUNCTION_NAMES.filter((n) => !ROWS.has(n));

/** The row named `name`, or undefined (unknown or pending). */
export function hostFunction(name: string): HostFunctionRow | undefined {
  return ROWS.get(name);
}

/** The `{ name, inWorker }` list `WasmEngine` takes: all 51 names, pending ones included. */
export function hostFunctionSpecs(): HostFunctionSpec[] {
  return HOST_FUNCTION_NAMES.map((name) => ({
    name,
    inWorker: ROWS.get(name)?.inWorker === true,
  }));
}
