/**
 * Capability tokens: what a token is, minting (signing with the runtime key) and verifying a
 * token against a request. The signed bytes are defined in `token_encoding.ts`; JSON transport
 * in `token_json.ts`; persistence and the fast lookup in `token_store.ts`.
 *
 * @example
 * ```ts
 * import { KeyPair } from "../crypto/mod.ts";
 * import { ManualClock } from "../clock.ts";
 * import { mintToken, verifyToken } from "./token.ts";
 *
 * const key = await KeyPair.generate();
 * const clock = new ManualClock();
 * const token = await mintToken(key, {
 *   principal: "default",
 *   resource: "fs:/work/repo/**",
 *   permissions: ["read"],
 *   audit_entry_id: "default:1",
 * }, { clock });
 * await verifyToken(token, {
 *   principal: "default",
 *   permission: "read",
 *   resource: "fs:/work/repo/src/a.ts",
 * }, { clock, trustedIssuers: [key.publicKey] });
 * ```
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { fromHex, type Signer, toHex, verifySignature } from "../crypto/mod.ts";
import { isPrincipalId } from "../identity/mod.ts";
import { CapabilityCode, CapabilityError } from "./errors.ts";
import { compileGlob } from "./glob.ts";
import { encodeTokenBody } from "./token_encoding.ts";

/**
 * The closed set of permissions, in canonical order. None implies another:
 * `read` (fs read, kv get, list) · `write` (create, modify, kv set) · `execute` (run a process
 * or call a tool) · `delete` (unlink, kv delete) · `network` (outbound connections, HTTP) ·
 * `admin` (identity admin, capability and manifest changes).
 */
export const PERMISSIONS = ["read", "write", "execute", "delete", "network", "admin"] as const;

/** One permission of {@link PERMISSIONS}. */
export type Permission = typeof PERMISSIONS[number];

/** What approval answer minted a token: informational, signed, not interpreted here. */
export const TOKEN_SCOPES = ["always", "session"] as const;

/** One scope of {@link TOKEN_SCOPES}. */
export type TokenScope = typeof TOKEN_SCOPES[number];

/** The token format version this code mints and accepts. */
export const TOKEN_VERSION = 1;

/** Limits on token fields (UTF-8 bytes). */
export const TOKEN_LIMITS = {
  /** Longest `resource` pattern. */
  resourceBytes: 4096,
  /** Longest `audit_entry_id`. */
  auditEntryIdBytes: 256,
} as const;

/** An ed25519-signed grant of permissions on a resource pattern to one principal. */
export interface CapabilityToken {
  /** 128 random bits as 32 lowercase hex characters. */
  readonly id: string;
  /** Format version: 1. */
  readonly version: 1;
  /** The principal the grant is for. */
  readonly principal: string;
  /** A glob pattern over resources (see `glob.ts`). */
  readonly resource: string;
  /** Granted permissions: unique, non-empty, in the order of {@link PERMISSIONS}. */
  readonly permissions: readonly Permission[];
  /** The issuer's ed25519 public key as 64 lowercase hex characters. */
  readonly issuer: string;
  /** When it was minted, ms since the epoch. */
  readonly issued_at: number;
  /** Not valid before this instant (inclusive), ms since the epoch; at least `issued_at`. */
  readonly not_before: number;
  /** Not valid from this instant on (exclusive); absent means no expiry. */
  readonly expires_at?: number;
  /** The id of the audit entry recording the approval that minted it. */
  readonly audit_entry_id: string;
  /** The approval answer that minted it, when recorded. */
  readonly scope?: TokenScope;
  /** Ed25519 signature of the canonical body as 128 lowercase hex characters. */
  readonly signature: string;
}

/** A token without its signature: what the canonical encoding covers. */
export type UnsignedToken = Omit<CapabilityToken, "signature">;

/** What a caller chooses when minting; the rest comes from the signer and the clock. */
export interface MintFields {
  /** The principal the grant is for. */
  principal: string;
  /** The resource glob pattern. */
  resource: string;
  /** Granted permissions, in any order; duplicates are dropped. */
  permissions: readonly Permission[];
  /** The audit entry that records the approval. */
  audit_entry_id: string;
  /** Start of validity (default: now). */
  not_before?: number;
  /** End of validity, exclusive (default: none). */
  expires_at?: number;
  /** The approval answer that minted it. */
  scope?: TokenScope;
}

/** Options of {@link mintToken}. */
export interface MintOptions {
  /** Source of `issued_at` (and the default `not_before`). */
  clock: Clock;
  /** A fixed id (32 lowercase hex); only for test vectors. Default: 128 random bits. */
  id?: string;
}

/** An action to authorize: who, doing what, on which resource. */
export interface TokenRequest {
  /** The acting principal. */
  principal: string;
  /** The permission the action needs. */
  permission: Permission;
  /** The concrete resource, e.g. `fs:/work/repo/src/a.ts`. */
  resource: string;
}

/** Options of {@link verifyToken}. */
export interface VerifyOptions {
  /** The current time. */
  clock: Clock;
  /** Public keys whose tokens are accepted (normally the runtime key alone). */
  trustedIssuers: readonly Uint8Array[];
  /** Answers whether a token id was revoked. */
  isRevoked?(id: string): boolean | Promise<boolean>;
}

const FIELDS = new Set([
  "id",
  "version",
  "principal",
  "resource",
  "permissions",
  "issuer",
  "issued_at",
  "not_before",
  "expires_at",
  "audit_entry_id",
  "scope",
  "signature",
]);
const ID_RE = /^[0-9a-f]{32}$/;
const KEY_RE = /^[0-9a-f]{64}$/;
const SIGNATURE_RE = /^[0-9a-f]{128}$/;
// deno-lint-ignore no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;
const encoder = new TextEncoder();

function malformed(
  field: string,
  why: string,
  tokenId?: string,
  cause?: unknown,
): CapabilityError {
  return new CapabilityError(
    CapabilityCode.TOKEN_MALFORMED,
    `Malformed capability token: field "${field}" ${why}`,
    { data: { field, tokenId }, cause },
  );
}

function quote(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return `"${text.length > 64 ? text.slice(0, 64) + "…" : text}"`;
}

function timestamp(obj: Record<string, unknown>, field: string, id: string): number {
  const v = obj[field];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw malformed(field, `must be a non-negative integer of milliseconds, got ${quote(v)}`, id);
  }
  return v;
}

function validate(value: unknown, signed: boolean): CapabilityToken {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw malformed("(token)", "must be an object");
  }
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!FIELDS.has(key)) throw malformed(key, "is not a token field (remove it)");
  }
  const id = obj.id;
  if (typeof id !== "string" || !ID_RE.test(id)) {
    throw malformed("id", `must be 32 lowercase hex characters, got ${quote(id)}`);
  }
  if (obj.version !== TOKEN_VERSION) {
    throw malformed("version", `must be ${TOKEN_VERSION}, got ${quote(obj.version)}`, id);
  }
  const principal = obj.principal;
  if (typeof principal !== "string" || !isPrincipalId(principal)) {
    throw malformed("principal", `must be a principal id, got ${quote(principal)}`, id);
  }
  const resource = obj.resource;
  if (typeof resource !== "string" || resource === "") {
    throw malformed("resource", `must be a non-empty glob pattern, got ${quote(resource)}`, id);
  }
  const resourceBytes = encoder.encode(resource).length;
  if (resourceBytes > TOKEN_LIMITS.resourceBytes) {
    throw malformed(
      "resource",
      `is ${resourceBytes} bytes long (limit ${TOKEN_LIMITS.resourceBytes})`,
      id,
    );
  }
  try {
    compileGlob(resource);
  } catch (cause) {
    throw malformed("resource", `is not a valid glob: ${(cause as Error).message}`, id, cause);
  }
  const permissions = obj.permissions;
  if (!Array.isArray(permissions) || permissions.length === 0) {
    throw malformed("permissions", `must be a non-empty array, got ${quote(permissions)}`, id);
  }
  let last = -1;
  for (const p of permissions) {
    const index = PERMISSIONS.indexOf(p as Permission);
    if (index < 0) {
      throw malformed(
        "permissions",
        `holds unknown ${quote(p)}: use ${PERMISSIONS.join(", ")}`,
        id,
      );
    }
    if (index <= last) {
      throw malformed(
        "permissions",
        `must be unique and in the order ${PERMISSIONS.join(", ")}, got ${quote(permissions)}`,
        id,
      );
    }
    last = index;
  }
  const issuer = obj.issuer;
  if (typeof issuer !== "string" || !KEY_RE.test(issuer)) {
    throw malformed("issuer", `must be 64 lowercase hex characters, got ${quote(issuer)}`, id);
  }
  const issuedAt = timestamp(obj, "issued_at", id);
  const notBefore = timestamp(obj, "not_before", id);
  if (notBefore < issuedAt) {
    throw malformed("not_before", `must not precede issued_at ${issuedAt}, got ${notBefore}`, id);
  }
  let expiresAt: number | undefined;
  if (obj.expires_at !== undefined) {
    expiresAt = timestamp(obj, "expires_at", id);
    if (expiresAt <= notBefore) {
      throw malformed("expires_at", `must be after not_before ${notBefore}, got ${expiresAt}`, id);
    }
  }
  const auditId = obj.audit_entry_id;
  if (
    typeof auditId !== "string" || auditId === "" || CONTROL_RE.test(auditId) ||
    encoder.encode(auditId).length > TOKEN_LIMITS.auditEntryIdBytes
  ) {
    throw malformed(
      "audit_entry_id",
      `must be 1 to ${TOKEN_LIMITS.auditEntryIdBytes} bytes without control characters, got ${
        quote(auditId)
      }`,
      id,
    );
  }
  const scope = obj.scope;
  if (scope !== undefined && !TOKEN_SCOPES.includes(scope as TokenScope)) {
    throw malformed("scope", `must be ${TOKEN_SCOPES.join(" or ")}, got ${quote(scope)}`, id);
  }
  const signature = obj.signature;
  if (signed) {
    if (typeof signature !== "string" || !SIGNATURE_RE.test(signature)) {
      throw malformed(
        "signature",
        `must be 128 lowercase hex characters, got ${quote(signature)}`,
        id,
      );
    }
  } else if (signature !== undefined) {
    throw malformed("signature", "must be absent before signing", id);
  }
  const token: Record<string, unknown> = {
    id,
    version: TOKEN_VERSION,
    principal,
    resource,
    permissions: Object.freeze([...permissions]),
    issuer,
    issued_at: issuedAt,
    not_before: notBefore,
  };
  if (expiresAt !== undefined) token.expires_at = expiresAt;
  token.audit_entry_id = auditId;
  if (scope !== undefined) token.scope = scope;
  if (signed) token.signature = signature;
  return Object.freeze(token) as unknown as CapabilityToken;
}

/**
 * Checks every field of `value` strictly (no unknown fields, exact hex lengths, canonical
 * permission order, time bounds in order) and returns a frozen copy; throws `TOKEN_MALFORMED`
 * naming the field. Says nothing about the signature: see {@link verifyToken}.
 */
export function validateToken(value: unknown): CapabilityToken {
  return validate(value, true);
}

/**
 * Signs a new token for `fields` with `signer`, reading the time from `options.clock` (or from
 * `options` itself when a bare {@link Clock} is passed); throws `TOKEN_MALFORMED` naming a bad
 * field.
 */
export async function mintToken(
  signer: Signer,
  fields: MintFields,
  options: MintOptions | Clock,
): Promise<CapabilityToken> {
  const opts: MintOptions = "clock" in options ? options : { clock: options };
  const now = opts.clock.now();
  const requested = Array.isArray(fields.permissions) ? fields.permissions : [];
  const unknown = requested.find((p) => !PERMISSIONS.includes(p));
  if (unknown !== undefined) {
    throw malformed(
      "permissions",
      `holds unknown ${quote(unknown)}: use ${PERMISSIONS.join(", ")}`,
    );
  }
  const unsigned: Record<string, unknown> = {
    id: opts.id ?? toHex(crypto.getRandomValues(new Uint8Array(16))),
    version: TOKEN_VERSION,
    principal: fields.principal,
    resource: fields.resource,
    permissions: PERMISSIONS.filter((p) => requested.includes(p)),
    issuer: toHex(signer.publicKey),
    issued_at: now,
    not_before: fields.not_before ?? now,
    expires_at: fields.expires_at,
    audit_entry_id: fields.audit_entry_id,
    scope: fields.scope,
  };
  const token = validate(unsigned, false);
  const signature = await signer.sign(encodeTokenBody(token));
  return Object.freeze({ ...token, signature: toHex(signature) });
}

/** Hex public keys, for O(1) trust checks. */
export function issuerSet(keys: readonly Uint8Array[]): ReadonlySet<string> {
  return new Set(keys.map((k) => toHex(k)));
}

/**
 * Checks that `token` (already validated) comes from a trusted issuer and that its signature
 * covers its fields; throws `TOKEN_UNTRUSTED_ISSUER` or `TOKEN_FORGED`. Folder-internal.
 */
export async function checkTokenSignature(
  token: CapabilityToken,
  trusted: ReadonlySet<string>,
): Promise<void> {
  if (!trusted.has(token.issuer)) {
    throw new CapabilityError(
      CapabilityCode.TOKEN_UNTRUSTED_ISSUER,
      `Capability token "${token.id}" was issued by untrusted key "${token.issuer}"`,
      { data: { tokenId: token.id, issuer: token.issuer } },
    );
  }
  const ok = await verifySignature(
    fromHex(token.issuer, "issuer"),
    encodeTokenBody(token),
    fromHex(token.signature, "signature"),
  );
  if (!ok) {
    throw new CapabilityError(
      CapabilityCode.TOKEN_FORGED,
      `Capability token "${token.id}" has a signature that does not match its fields`,
      { data: { tokenId: token.id } },
    );
  }
}

/** Throws `TOKEN_NOT_YET_VALID` or `TOKEN_EXPIRED` unless `now` lies in the token's bounds. */
export function checkTokenTime(token: CapabilityToken, now: number): void {
  if (now < token.not_before) {
    throw new CapabilityError(
      CapabilityCode.TOKEN_NOT_YET_VALID,
      `Capability token "${token.id}" is not valid before ${token.not_before}: now is ${now}`,
      { data: { tokenId: token.id, now, notBefore: token.not_before } },
    );
  }
  if (token.expires_at !== undefined && now >= token.expires_at) {
    throw new CapabilityError(
      CapabilityCode.TOKEN_EXPIRED,
      `Capability token "${token.id}" expired at ${token.expires_at}: now is ${now}`,
      { data: { tokenId: token.id, now, expiresAt: token.expires_at } },
    );
  }
}

/**
 * Verifies that `token` authorizes `request`, in this order: well formed, trusted issuer,
 * signature, not revoked, within its time bounds, same principal, grants the permission,
 * resource pattern matches. Resolves when it does; otherwise throws the matching
 * `CapabilityError` (`TOKEN_MALFORMED`, `TOKEN_UNTRUSTED_ISSUER`, `TOKEN_FORGED`,
 * `TOKEN_REVOKED`, `TOKEN_NOT_YET_VALID`, `TOKEN_EXPIRED`, `TOKEN_PRINCIPAL_MISMATCH`,
 * `TOKEN_PERMISSION_MISMATCH`, `TOKEN_RESOURCE_MISMATCH`).
 */
export async function verifyToken(
  token: CapabilityToken,
  request: TokenRequest,
  options: VerifyOptions,
): Promise<void> {
  const t = validateToken(token);
  await checkTokenSignature(t, issuerSet(options.trustedIssuers));
  if (options.isRevoked !== undefined && await options.isRevoked(t.id)) {
    throw new CapabilityError(
      CapabilityCode.TOKEN_REVOKED,
      `Capability token "${t.id}" was revoked`,
      { data: { tokenId: t.id } },
    );
  }
  checkTokenTime(t, options.clock.now());
  if (request.principal !== t.principal) {
    throw new CapabilityError(
      CapabilityCode.TOKEN_PRINCIPAL_MISMATCH,
      `Capability token "${t.id}" belongs to principal "${t.principal}", not ${
        quote(request.principal)
      }`,
      { data: { tokenId: t.id, principal: request.principal } },
    );
  }
  if (!t.permissions.includes(request.permission)) {
    throw new CapabilityError(
      CapabilityCode.TOKEN_PERMISSION_MISMATCH,
      `Capability token "${t.id}" does not grant ${quote(request.permission)}: it grants ${
        t.permissions.join(", ")
      }`,
      { data: { tokenId: t.id, permission: request.permission } },
    );
  }
  if (typeof request.resource !== "string" || !compileGlob(t.resource).match(request.resource)) {
    throw new CapabilityError(
      CapabilityCode.TOKEN_RESOURCE_MISMATCH,
      `Capability token "${t.id}" does not cover resource ${
        quote(request.resource)
      }: its pattern is "${t.resource}"`,
      { data: { tokenId: t.id, resource: String(request.resource) } },
    );
  }
}
