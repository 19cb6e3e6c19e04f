/**
 * Capability tokens as JSON text, for storage and transport. The JSON is not what is signed
 * (see `token_encoding.ts`); it carries the fields, and parsing checks every one strictly.
 *
 * @module
 */
import { CapabilityCode, CapabilityError } from "./errors.ts";
import { type CapabilityToken, validateToken } from "./token.ts";

/** Longest token JSON accepted by {@link parseToken}, in UTF-16 code units. */
export const MAX_TOKEN_JSON_LENGTH = 16 * 1024;

/** Serializes `token` as compact JSON with its fields in canonical order. */
export function serializeToken(token: CapabilityToken): string {
  return JSON.stringify(validateToken(token));
}

/** Parses and strictly validates token JSON; throws `TOKEN_MALFORMED` naming the field. */
export function parseToken(text: string): CapabilityToken {
  if (typeof text !== "string" || text.length > MAX_TOKEN_JSON_LENGTH) {
    throw new CapabilityError(
      CapabilityCode.TOKEN_MALFORMED,
      `Malformed capability token: JSON must be a string of at most ${MAX_TOKEN_JSON_LENGTH} characters (got ${
        typeof text === "string" ? text.length : typeof text
      })`,
      { data: { field: "(json)" } },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new CapabilityError(
      CapabilityCode.TOKEN_MALFORMED,
      `Malformed capability token: invalid JSON: ${(cause as Error).message}`,
      { data: { field: "(json)" }, cause },
    );
  }
  return validateToken(value);
}
