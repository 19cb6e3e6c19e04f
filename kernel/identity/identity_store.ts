/**
 * The identity store: which principals exist, and which outside identity (a user of a chat
 * platform, a socket peer) acts as which principal.
 *
 * Everything lives in the store's namespace `system:identity`:
 *
 * | key                                         | value (JSON)                                                  |
 * | ------------------------------------------- | ------------------------------------------------------------- |
 * | `principal/<id>`                            | {@link PrincipalRecord} `{ id, created_at, created_by, … }`   |
 * | `link/<platform>:<platform_user_id>`        | {@link IdentityLink} `{ platform, platform_user_id, … }`      |
 * | `by_principal/<id>/<platform>:<user_id>`    | the same link, indexed by principal (for `listLinks`)         |
 *
 * The `principal/<id>` keys and values are the ones the daemon's principal registry wrote
 * before this store existed, so both read each other's records.
 *
 * Atomicity: a link is written with one {@link Store.atomic} batch that checks the link key is
 * absent and the principal record unchanged, so two concurrent links of the same outside user
 * can never both succeed (no two principals for one platform user); an unlink deletes both
 * keys in one batch that checks the link is still the one read. A batch that loses a race is
 * retried after reading again.
 *
 * This file imports only types from `storage/`, so importing `identity/mod.ts` (which the bus
 * and the CLI do) never loads a storage backend.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "../storage/mod.ts";
 * import { ManualClock } from "../clock.ts";
 * import { IdentityStore } from "./mod.ts";
 *
 * const ids = new IdentityStore(new MemoryStore(), { clock: new ManualClock() });
 * const user = await ids.createUser({ createdBy: "doc" });
 * const outside = { platform: "discord", platform_user_id: "12345" };
 * await ids.link(outside, user.id, { linkedBy: "doc" });
 * if ((await ids.resolve(outside))?.principal !== user.id) throw new Error("unexpected");
 * ```
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { AtomicOp, Store } from "../storage/mod.ts";
import { IdentityCode, IdentityError } from "./errors.ts";
import { isPrincipalId, type PrincipalId, principalId } from "./principal.ts";

/** The store namespace the identity store owns. */
export const IDENTITY_NAMESPACE = "system:identity";
/** Platform names: `[a-z0-9][a-z0-9_-]{0,31}` (`discord`, `telegram`, `cli`). */
export const PLATFORM_RE: RegExp = /^[a-z0-9][a-z0-9_-]{0,31}$/;
/** The longest platform user id, in UTF-8 bytes. */
export const MAX_PLATFORM_USER_ID_BYTES = 256;

const NS = IDENTITY_NAMESPACE;
const PRINCIPAL_PREFIX = "principal/";
const LINK_PREFIX = "link/";
const BY_PRINCIPAL_PREFIX = "by_principal/";
const MAX_ATTEMPTS = 8;

/** A recorded principal. */
export interface PrincipalRecord {
  /** The principal id. */
  readonly id: string;
  /** When it was created, ms since the epoch. */
  readonly created_at: number;
  /** How it was created (`boot`, `connection c-3 (cli)`, `capsule:admin-tool`). */
  readonly created_by: string;
  /** A name to show, when one was given at creation. */
  readonly display_name?: string;
}

/** A user outside Astrid: a platform and that platform's id for the user. */
export interface OutsideIdentity {
  /** The platform: {@link PLATFORM_RE}, e.g. `discord`. */
  readonly platform: string;
  /** The platform's id of the user, 1 to 256 UTF-8 bytes without control characters. */
  readonly platform_user_id: string;
}

/** A link: an outside identity acts as a principal. */
export interface IdentityLink extends OutsideIdentity {
  /** The principal the outside user acts as. */
  readonly principal: string;
  /** When it was linked, ms since the epoch. */
  readonly linked_at: number;
  /** Who linked it (`capsule:discord-uplink`, `operator`). */
  readonly linked_by: string;
}

/** Where principals' home trees are laid out (structurally `AstridHome`). */
export interface PrincipalHomes {
  /** Creates `home/<principal>/…` if absent. */
  ensurePrincipal(principal: string): Promise<unknown>;
}

/** Options of {@link IdentityStore}. */
export interface IdentityStoreOptions {
  /** Stamps `created_at` and `linked_at`. */
  clock: Clock;
  /** Lays out a new principal's home tree; none when absent. */
  homes?: PrincipalHomes;
  /** Makes the id of a new principal when `createUser` names none; default `u-<16 hex>`. */
  newId?: () => string;
}

/** Options of {@link IdentityStore.createUser}. */
export interface CreateUserOptions {
  /** The id to create; default a fresh one. A taken id is `IDENTITY_PRINCIPAL_EXISTS`. */
  id?: string;
  /** Who creates it (recorded as `created_by`). */
  createdBy: string;
  /** A name to show (at most 128 characters, no control characters). */
  displayName?: string;
}

/** Options of {@link IdentityStore.link}. */
export interface LinkOptions {
  /** Who links it (recorded as `linked_by`). */
  linkedBy: string;
}

/** What {@link IdentityStore.link} did. */
export interface LinkResult {
  /** The link now stored. */
  readonly link: IdentityLink;
  /** False when the same link already existed (nothing was written). */
  readonly created: boolean;
}

/** Options of {@link IdentityStore.unlink}. */
export interface UnlinkOptions {
  /** Only unlink when the outside identity is linked to this principal. */
  principal?: string;
}

/** Options of {@link IdentityStore.listLinks}. */
export interface ListLinksOptions {
  /** Only links to this principal. */
  principal?: string;
  /** Only links of this platform. */
  platform?: string;
  /** At most this many (default: all). */
  limit?: number;
}

/**
 * Principals and links over a {@link Store}; see the module doc for keys and atomicity.
 * Concurrent `ensurePrincipal()` calls for one id create it once.
 */
export class IdentityStore {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #homes: PrincipalHomes | undefined;
  readonly #newId: () => string;
  readonly #known = new Set<string>();
  readonly #pending = new Map<string, Promise<boolean>>();

  /** Opens the identity store over `store` (namespace {@link IDENTITY_NAMESPACE}). */
  constructor(store: Store, options: IdentityStoreOptions) {
    this.#store = store;
    this.#clock = options.clock;
    this.#homes = options.homes;
    this.#newId = options.newId ?? randomPrincipalId;
  }

  /**
   * Records principal `id` if it is new (first use) and lays out its home; resolves true when
   * it was created by this call. Throws `INVALID_ARGUMENT` for a malformed id.
   */
  ensurePrincipal(id: string, createdBy: string): Promise<boolean> {
    const principal = principalId(id);
    if (this.#known.has(principal)) return Promise.resolve(false);
    const pending = this.#pending.get(principal);
    if (pending !== undefined) return pending.then(() => false);
    const p = this.#ensure(principal, createdBy).finally(() => this.#pending.delete(principal));
    this.#pending.set(principal, p);
    return p;
  }

  /**
   * Creates a new principal (a fresh id unless `options.id` names one) and lays out its home.
   * Throws `IDENTITY_PRINCIPAL_EXISTS` when `options.id` is taken, `INVALID_ARGUMENT` for a
   * malformed id, `IDENTITY_INVALID` for a malformed display name.
   */
  async createUser(options: CreateUserOptions): Promise<PrincipalRecord> {
    const displayName = options.displayName;
    if (displayName !== undefined) checkText("display_name", displayName, 128);
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const id = principalId(options.id ?? this.#newId());
      const record: PrincipalRecord = {
        id,
        created_at: this.#clock.now(),
        created_by: options.createdBy,
        ...(displayName === undefined ? {} : { display_name: displayName }),
      };
      const key = PRINCIPAL_PREFIX + id;
      const created = await this.#store.atomic([
        { op: "check", ns: NS, key, value: null },
        { op: "set", ns: NS, key, value: encode(record) },
      ]);
      if (created) {
        if (this.#homes !== undefined) await this.#homes.ensurePrincipal(id);
        this.#known.add(id);
        return record;
      }
      if (options.id !== undefined) {
        throw new IdentityError(
          IdentityCode.IDENTITY_PRINCIPAL_EXISTS,
          `Cannot create principal "${id}": it already exists`,
          { data: { principal: id } },
        );
      }
    }
    throw contended("create_user");
  }

  /** The record of principal `id`, or `null` when it is not recorded (or malformed). */
  async principal(id: string): Promise<PrincipalRecord | null> {
    if (!isSafeKeyPart(id)) return null;
    return decode<PrincipalRecord>(await this.#store.get(NS, PRINCIPAL_PREFIX + id));
  }

  /** Every recorded principal, by id. */
  async listPrincipals(): Promise<PrincipalRecord[]> {
    const entries = await this.#store.scan(NS, { prefix: PRINCIPAL_PREFIX });
    return entries.map((e) => decode<PrincipalRecord>(e.value)!);
  }

  /**
   * Links `outside` to `principal`. Resolves `{ created: false }` when that exact link exists;
   * throws `IDENTITY_LINK_CONFLICT` when `outside` is linked to another principal,
   * `IDENTITY_PRINCIPAL_NOT_FOUND` when `principal` is not recorded, `IDENTITY_INVALID` for a
   * malformed outside identity.
   */
  async link(
    outside: OutsideIdentity,
    principal: string,
    options: LinkOptions,
  ): Promise<LinkResult> {
    const who = checkOutside(outside);
    const linkKey = LINK_PREFIX + outsideKey(who);
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const principalBytes = isSafeKeyPart(principal)
        ? await this.#store.get(NS, PRINCIPAL_PREFIX + principal)
        : null;
      if (principalBytes === null) throw principalNotFound(principal);
      const existing = decode<IdentityLink>(await this.#store.get(NS, linkKey));
      if (existing !== null) {
        if (existing.principal === principal) return { link: existing, created: false };
        throw new IdentityError(
          IdentityCode.IDENTITY_LINK_CONFLICT,
          `Cannot link "${label(who)}" to principal "${principal}": it is already linked to ` +
            `"${existing.principal}"; unlink it first`,
          { data: { ...who, principal: existing.principal } },
        );
      }
      const link: IdentityLink = {
        platform: who.platform,
        platform_user_id: who.platform_user_id,
        principal,
        linked_at: this.#clock.now(),
        linked_by: options.linkedBy,
      };
      const value = encode(link);
      const ops: AtomicOp[] = [
        { op: "check", ns: NS, key: linkKey, value: null },
        { op: "check", ns: NS, key: PRINCIPAL_PREFIX + principal, value: principalBytes },
        { op: "set", ns: NS, key: linkKey, value },
        { op: "set", ns: NS, key: reverseKey(principal, who), value },
      ];
      if (await this.#store.atomic(ops)) return { link, created: true };
    }
    throw contended("link");
  }

  /**
   * Removes the link of `outside` and resolves with what was removed. Throws
   * `IDENTITY_LINK_NOT_FOUND` when it is not linked (or not to `options.principal`).
   */
  async unlink(outside: OutsideIdentity, options: UnlinkOptions = {}): Promise<IdentityLink> {
    const who = checkOutside(outside);
    const linkKey = LINK_PREFIX + outsideKey(who);
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const bytes = await this.#store.get(NS, linkKey);
      const existing = decode<IdentityLink>(bytes);
      if (
        bytes === null || existing === null ||
        (options.principal !== undefined && existing.principal !== options.principal)
      ) {
        throw new IdentityError(
          IdentityCode.IDENTITY_LINK_NOT_FOUND,
          options.principal === undefined
            ? `Cannot unlink "${label(who)}": it is not linked`
            : `Cannot unlink "${label(who)}": it is not linked to principal "${options.principal}"`,
          { data: { ...who } },
        );
      }
      const ops: AtomicOp[] = [
        { op: "check", ns: NS, key: linkKey, value: bytes },
        { op: "delete", ns: NS, key: linkKey },
        { op: "delete", ns: NS, key: reverseKey(existing.principal, who) },
      ];
      if (await this.#store.atomic(ops)) return existing;
    }
    throw contended("unlink");
  }

  /** The link of `outside`, or `null`; throws `IDENTITY_INVALID` for a malformed identity. */
  async resolve(outside: OutsideIdentity): Promise<IdentityLink | null> {
    const who = checkOutside(outside);
    return decode<IdentityLink>(await this.#store.get(NS, LINK_PREFIX + outsideKey(who)));
  }

  /** Links, by outside identity, filtered by principal and platform. */
  async listLinks(options: ListLinksOptions = {}): Promise<IdentityLink[]> {
    const { principal, platform, limit } = options;
    if (platform !== undefined && !PLATFORM_RE.test(platform)) throw invalidPlatform(platform);
    if (principal !== undefined && !isSafeKeyPart(principal)) return [];
    const platformPart = platform === undefined ? "" : `${platform}:`;
    const prefix = principal === undefined
      ? LINK_PREFIX + platformPart
      : `${BY_PRINCIPAL_PREFIX}${principal}/${platformPart}`;
    const entries = await this.#store.scan(NS, { prefix, limit });
    return entries.map((e) => decode<IdentityLink>(e.value)!);
  }

  async #ensure(principal: PrincipalId, createdBy: string): Promise<boolean> {
    const key = PRINCIPAL_PREFIX + principal;
    const record: PrincipalRecord = {
      id: principal,
      created_at: this.#clock.now(),
      created_by: createdBy,
    };
    const created = await this.#store.atomic([
      { op: "check", ns: NS, key, value: null },
      { op: "set", ns: NS, key, value: encode(record) },
    ]);
    if (this.#homes !== undefined) await this.#homes.ensurePrincipal(principal);
    this.#known.add(principal);
    return created;
  }
}

/** Parses `platform:platform_user_id` (split at the first colon); throws `IDENTITY_INVALID`. */
export function parseOutsideIdentity(text: string): OutsideIdentity {
  const at = text.indexOf(":");
  if (at < 0) {
    throw new IdentityError(
      IdentityCode.IDENTITY_INVALID,
      `Invalid outside identity "${cut(text)}": write it as platform:user_id, e.g. discord:12345`,
      { data: { field: "identity", value: cut(text) } },
    );
  }
  return checkOutside({ platform: text.slice(0, at), platform_user_id: text.slice(at + 1) });
}

/** Checks `outside` and returns a copy holding only its two fields; throws `IDENTITY_INVALID`. */
export function checkOutside(outside: OutsideIdentity): OutsideIdentity {
  const platform = outside?.platform;
  if (typeof platform !== "string" || !PLATFORM_RE.test(platform)) {
    throw invalidPlatform(String(platform));
  }
  checkText("platform_user_id", outside.platform_user_id, MAX_PLATFORM_USER_ID_BYTES);
  return { platform, platform_user_id: outside.platform_user_id };
}

function checkText(field: string, value: unknown, maxBytes: number): void {
  const ok = typeof value === "string" && value.length > 0 && value.isWellFormed() &&
    !hasControl(value) && new TextEncoder().encode(value).length <= maxBytes;
  if (!ok) {
    const shown = cut(String(value));
    throw new IdentityError(
      IdentityCode.IDENTITY_INVALID,
      `Invalid ${field} "${shown}": use 1 to ${maxBytes} UTF-8 bytes without control characters`,
      { data: { field, value: shown } },
    );
  }
}

function invalidPlatform(value: string): IdentityError {
  const shown = cut(value);
  return new IdentityError(
    IdentityCode.IDENTITY_INVALID,
    `Invalid platform "${shown}": use 1 to 32 characters of a-z, 0-9, "_" or "-", starting with a letter or digit`,
    { data: { field: "platform", value: shown } },
  );
}

function principalNotFound(principal: string): IdentityError {
  const shown = cut(principal);
  return new IdentityError(
    IdentityCode.IDENTITY_PRINCIPAL_NOT_FOUND,
    `Principal "${shown}" does not exist: create it first (create_user)`,
    { data: { principal: shown } },
  );
}

function contended(operation: string): IdentityError {
  return new IdentityError(
    IdentityCode.IDENTITY_CONTENDED,
    `Identity ${operation} kept conflicting with concurrent writes: gave up after ${MAX_ATTEMPTS} attempts`,
    { data: { operation, attempts: MAX_ATTEMPTS } },
  );
}

function outsideKey(o: OutsideIdentity): string {
  return `${o.platform}:${o.platform_user_id}`;
}

function reverseKey(principal: string, o: OutsideIdentity): string {
  return `${BY_PRINCIPAL_PREFIX}${principal}/${outsideKey(o)}`;
}

function label(o: OutsideIdentity): string {
  return cut(outsideKey(o));
}

function cut(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}

/** Principal ids are checked where they are created; a lookup of a malformed one finds nothing. */
function isSafeKeyPart(id: string): boolean {
  return typeof id === "string" && isPrincipalId(id);
}

/** True when `text` holds a C0 or C1 control character, DEL, or U+2028/U+2029. */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029) return true;
  }
  return false;
}

function randomPrincipalId(): string {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return `u-${Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")}`;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

function encode(value: unknown): Uint8Array {
  return utf8.encode(JSON.stringify(value));
}

function decode<T>(bytes: Uint8Array | null): T | null {
  return bytes === null ? null : JSON.parse(utf8Decoder.decode(bytes)) as T;
}
