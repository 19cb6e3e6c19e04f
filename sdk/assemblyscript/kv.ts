/**
 * Key-value storage, namespaced per capsule and per principal (`{principal}:capsule:{name}`):
 * the same capsule called by two principals sees two stores. Needs `[capabilities] kv = true`
 * (DENIED otherwise). Errors: `NOT_FOUND` (get of a missing key), `LIMIT_EXCEEDED` (key,
 * value, key count or listing over the limits), `INVALID_ARGUMENT` (bad key).
 */
import { JSON } from "json-as";
import { kv_clear_prefix, kv_delete, kv_get, kv_list_keys, kv_set } from "./internal/abi";
import { Request } from "./internal/request";
import { Reply } from "./internal/reply";
import { Outcome, Result } from "./result";

function key1(key: string): Request {
  return Request.reset().str(key);
}

/** The value at `key` (`NOT_FOUND` when absent). */
export function get(key: string): Result<ArrayBuffer> {
  const req = key1(key);
  const reply = Reply.of(kv_get(req.ptr, req.len));
  if (!reply.ok) return reply.fail<ArrayBuffer>("kv.get");
  return Result.ok<ArrayBuffer>(reply.bytes());
}

/** The value at `key` as UTF-8 text. */
export function getText(key: string): Result<string> {
  const req = key1(key);
  const reply = Reply.of(kv_get(req.ptr, req.len));
  if (!reply.ok) return reply.fail<string>("kv.getText");
  return Result.ok<string>(reply.text());
}

/** The value at `key` parsed as JSON into `T` (aborts if it is not `T`'s JSON). */
export function getJson<T>(key: string): Result<T> {
  const req = key1(key);
  const reply = Reply.of(kv_get(req.ptr, req.len));
  if (!reply.ok) return reply.fail<T>("kv.getJson");
  return Result.ok<T>(JSON.parse<T>(reply.text()));
}

/** Writes `value` at `key`. */
export function set(key: string, value: ArrayBuffer): Outcome {
  const req = Request.reset().str(key).bytes(value);
  return Reply.of(kv_set(req.ptr, req.len)).outcome("kv.set");
}

/** Writes `text` (UTF-8) at `key`. */
export function setText(key: string, text: string): Outcome {
  const req = Request.reset().str(key).str(text);
  return Reply.of(kv_set(req.ptr, req.len)).outcome("kv.setText");
}

/** Writes `value` as JSON at `key`. */
export function setJson<T>(key: string, value: T): Outcome {
  return setText(key, JSON.stringify<T>(value));
}

/** Removes `key`; true when it existed. */
export function remove(key: string): Result<bool> {
  const req = key1(key);
  const reply = Reply.of(kv_delete(req.ptr, req.len));
  if (!reply.ok) return reply.fail<bool>("kv.remove");
  return Result.ok<bool>(reply.text() == "true");
}

/** The keys starting with `prefix` (empty: all), ascending. */
export function listKeys(prefix: string = ""): Result<string[]> {
  const req = key1(prefix);
  const reply = Reply.of(kv_list_keys(req.ptr, req.len));
  if (!reply.ok) return reply.fail<string[]>("kv.listKeys");
  return Result.ok<string[]>(JSON.parse<string[]>(reply.text()));
}

/** Removes every key starting with `prefix` (empty: all); how many went. */
export function clearPrefix(prefix: string): Result<u32> {
  const req = key1(prefix);
  const reply = Reply.of(kv_clear_prefix(req.ptr, req.len));
  if (!reply.ok) return reply.fail<u32>("kv.clearPrefix");
  return Result.ok<u32>(<u32>I32.parseInt(reply.text()));
}
