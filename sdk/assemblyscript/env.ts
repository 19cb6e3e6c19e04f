/**
 * The capsule's configuration: the `[env]` fields of its `Capsule.toml`, with the values the
 * calling principal gave at install (or the defaults). A `secret` is readable only by the
 * capsule that declares it; `hasSecret` tells whether one is set without reading it.
 * Errors: `NOT_FOUND` for a field the manifest does not declare.
 */
import { get_config, has_secret } from "./internal/abi";
import { Request } from "./internal/request";
import { Reply } from "./internal/reply";
import { arrayItems, unquote } from "./internal/scan";
import { Result } from "./result";

function config(op: string, name: string): Reply {
  const req = Request.reset().str(name);
  return Reply.of(get_config(req.ptr, req.len));
}

/** The value of field `name` (a `text`, `select` or `secret`), or null when unset. */
export function get(name: string): Result<string | null> {
  const reply = config("env.get", name);
  if (!reply.ok) return reply.fail<string | null>("env.get");
  const text = reply.text();
  if (text.length >= 2 && text.charCodeAt(0) == 34) return Result.ok<string | null>(unquote(text));
  if (text.length > 0 && text.charCodeAt(0) == 91) {
    return Result.ok<string | null>(arrayItems(text).map<string>((s) => unquote(s)).join(","));
  }
  return Result.ok<string | null>(null);
}

/** The value of field `name`, or `fallback` when unset or on error. */
export function getOr(name: string, fallback: string): string {
  const r = get(name);
  if (!r.ok) return fallback;
  const v = r.unwrap();
  return v !== null ? v : fallback;
}

/** The values of an `array` field (a text field gives one element; unset gives none). */
export function getList(name: string): Result<string[]> {
  const reply = config("env.getList", name);
  if (!reply.ok) return reply.fail<string[]>("env.getList");
  const text = reply.text();
  if (text.length > 0 && text.charCodeAt(0) == 91) {
    return Result.ok<string[]>(arrayItems(text).map<string>((s) => unquote(s)));
  }
  if (text.length >= 2 && text.charCodeAt(0) == 34) return Result.ok<string[]>([unquote(text)]);
  return Result.ok<string[]>([]);
}

/** Every non-secret field and its value, as a JSON object's text. */
export function allJson(): Result<string> {
  const reply = config("env.allJson", "");
  if (!reply.ok) return reply.fail<string>("env.allJson");
  return Result.ok<string>(reply.text());
}

/** Whether secret `name` has a value for the calling principal (never the value itself). */
export function hasSecret(name: string): Result<bool> {
  const req = Request.reset().str(name);
  const reply = Reply.of(has_secret(req.ptr, req.len));
  if (!reply.ok) return reply.fail<bool>("env.hasSecret");
  return Result.ok<bool>(reply.u32() != 0);
}
