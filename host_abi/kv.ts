/**
 * The `kv_*` host functions: the capsule's key-value namespace for the calling principal
 * (`{principal}:capsule:{name}`, `call.services.kv`). Each needs `kv = true`; one principal
 * never sees another's keys, one capsule never another's.
 *
 * Limits are checked before the store is touched: key length (`kvMaxKeyBytes`, UTF-8, no NUL),
 * value size (`kvMaxValueBytes`), keys per namespace (`kvMaxKeys`, checked when a `kv_set`
 * adds a key) and keys per listing (`kvMaxListKeys`).
 *
 * Fails with: `DENIED` (no `kv`), `INVALID_ARGUMENT` (bad key), `NOT_FOUND` (`kv_get` of an
 * absent key), `LIMIT_EXCEEDED`.
 *
 * @module
 */
import { utf8Length } from "../kernel/vfs/mod.ts";
import type { RequestReader } from "./encoding.ts";
import { defineHostFunction, type HostFunctionRow } from "./host_function.ts";
import type { HostLimits } from "./limits.ts";
import { HostCallError, HostStatus } from "./status.ts";

const q = (s: string) => JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);

/** Checks a key (or prefix) against the limit; `allowEmpty` for prefixes. */
function checkKey(
  key: string,
  field: string,
  limits: HostLimits,
  allowEmpty = false,
): string {
  if (key === "" && !allowEmpty) {
    throw new HostCallError(HostStatus.INVALID_ARGUMENT, `Field "${field}" is empty`, { field });
  }
  if (key.includes("\0")) {
    throw new HostCallError(
      HostStatus.INVALID_ARGUMENT,
      `Field "${field}" ${q(key)} contains a NUL`,
      { field },
    );
  }
  const bytes = utf8Length(key);
  if (bytes > limits.kvMaxKeyBytes) {
    throw new HostCallError(
      HostStatus.LIMIT_EXCEEDED,
      `Key ${q(key)} is too long: ${bytes} bytes (limit ${limits.kvMaxKeyBytes})`,
      { field },
    );
  }
  return key;
}

function readKey(req: RequestReader, limits: HostLimits, field = "key"): string {
  return checkKey(req.string(field), field, limits, field === "prefix");
}

/** `kv_get(key)` → the value; `NOT_FOUND` when absent. */
export const kvGet = defineHostFunction<{ key: string }>({
  name: "kv_get",
  subsystem: "kv",
  doc: "Reads one key",
  capabilities: ["kv"],
  parse: (req, call) => {
    const key = readKey(req, call.limits);
    req.end();
    return { key };
  },
  gate: () => ({ capability: "kv" }),
  run: async ({ key }, call) => {
    const value = await call.services.kv.get(key);
    if (value === null) {
      throw new HostCallError(HostStatus.NOT_FOUND, `Key ${q(key)} does not exist`);
    }
    return value;
  },
});

/** `kv_set(key, value)` → empty. */
export const kvSet = defineHostFunction<{ key: string; value: Uint8Array }>({
  name: "kv_set",
  subsystem: "kv",
  doc: "Writes one key",
  capabilities: ["kv"],
  parse: (req, call) => {
    const key = readKey(req, call.limits);
    const value = req.bytes("value");
    req.end();
    const max = call.limits.kvMaxValueBytes;
    if (value.length > max) {
      throw new HostCallError(
        HostStatus.LIMIT_EXCEEDED,
        `Value of key ${q(key)} is too large: ${value.length} bytes (limit ${max})`,
        { field: "value" },
      );
    }
    return { key, value: value.slice() };
  },
  gate: () => ({ capability: "kv" }),
  run: async ({ key, value }, call) => {
    const kv = call.services.kv;
    if (await kv.get(key) === null) {
      const max = call.limits.kvMaxKeys;
      const count = (await kv.listKeys()).length;
      if (count >= max) {
        throw new HostCallError(
          HostStatus.LIMIT_EXCEEDED,
          `Cannot add key ${q(key)}: the namespace holds ${count} keys (limit ${max})`,
        );
      }
    }
    await kv.set(key, value);
  },
});

/** `kv_delete(key)` → JSON `true` when the key existed, else `false`. */
export const kvDelete = defineHostFunction<{ key: string }>({
  name: "kv_delete",
  subsystem: "kv",
  doc: "Removes one key",
  capabilities: ["kv"],
  parse: (req, call) => {
    const key = readKey(req, call.limits);
    req.end();
    return { key };
  },
  gate: () => ({ capability: "kv" }),
  run: async ({ key }, call) => JSON.stringify(await call.services.kv.delete(key)),
});

/** `kv_list_keys(prefix)` → JSON array of keys starting with `prefix`, ascending. */
export const kvListKeys = defineHostFunction<{ prefix: string }>({
  name: "kv_list_keys",
  subsystem: "kv",
  doc: "Lists the keys starting with a prefix (empty: all)",
  capabilities: ["kv"],
  parse: (req, call) => {
    const prefix = readKey(req, call.limits, "prefix");
    req.end();
    return { prefix };
  },
  gate: () => ({ capability: "kv" }),
  run: async ({ prefix }, call) => {
    const keys = await call.services.kv.listKeys(prefix);
    const max = call.limits.kvMaxListKeys;
    if (keys.length > max) {
      throw new HostCallError(
        HostStatus.LIMIT_EXCEEDED,
        `Prefix ${q(prefix)} matches too many keys: ${keys.length} (limit ${max}); ` +
          `list a narrower prefix`,
      );
    }
    return JSON.stringify(keys);
  },
});

/** `kv_clear_prefix(prefix)` → JSON number of keys removed. */
export const kvClearPrefix = defineHostFunction<{ prefix: string }>({
  name: "kv_clear_prefix",
  subsystem: "kv",
  doc: "Removes every key starting with a prefix (empty: all)",
  capabilities: ["kv"],
  parse: (req, call) => {
    const prefix = readKey(req, call.limits, "prefix");
    req.end();
    return { prefix };
  },
  gate: () => ({ capability: "kv" }),
  run: async ({ prefix }, call) => JSON.stringify(await call.services.kv.clearPrefix(prefix)),
});

/** The `kv_*` rows, in table order. */
export const KV_FUNCTIONS: readonly HostFunctionRow[] = [
  kvGet,
  kvSet,
  kvDelete,
  kvListKeys,
  kvClearPrefix,
];
