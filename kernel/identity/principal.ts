/**
 * Principal ids: who an action is done for. Every bus message, KV namespace, audit chain and
 * overlay is keyed by one.
 *
 * @module
 */
import { AstridError, CommonCode } from "../errors.ts";

/** A validated principal id: `[a-z0-9][a-z0-9_-]{0,62}`. */
export type PrincipalId = string & { readonly __principal: unique symbol };

/** The principal the operator acts as unless `--principal` says otherwise. */
export const DEFAULT_PRINCIPAL = "default" as PrincipalId;

const PRINCIPAL_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** True when `value` is a well-formed principal id. */
export function isPrincipalId(value: string): value is PrincipalId {
  return PRINCIPAL_RE.test(value);
}

/** Returns `value` as a {@link PrincipalId}, or throws `INVALID_ARGUMENT` naming the rule. */
export function principalId(value: string): PrincipalId {
  if (!isPrincipalId(value)) {
    throw new AstridError(
      CommonCode.INVALID_ARGUMENT,
      `Invalid principal id "${value}": use 1 to 63 characters of a-z, 0-9, "_" or "-", starting with a letter or digit`,
      { data: { field: "principal" } },
    );
  }
  return value;
}
