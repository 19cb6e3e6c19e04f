/**
 * Capability tokens at rest, per principal, and the security pipeline's token-layer lookup.
 *
 * Layout in namespace `{principal}:kernel:tokens`:
 * - `token/<id>`: the token's JSON (`token_json.ts`).
 * - `revoked/<id>`: `{"id","reason","revoked_at"}`. A revocation is its own record, written
 *   even for an unknown id and never deleted, so a revoked token stays revoked if re-added.
 *
 * Each principal's tokens are loaded once, checked (well formed, in the right namespace,
 * trusted issuer, signature) once, and kept parsed in memory, indexed by permission and by
 * literal resource; {@link TokenStore.findCovering} then only checks time bounds and matches
 * globs. Records that fail the checks are skipped and reported to `onInvalid`. The cache
 * follows this instance's own writes; after another writer changed the store, call
 * {@link TokenStore.invalidate}.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { blake3Hex } from "../crypto/mod.ts";
import { principalId } from "../identity/mod.ts";
import { kernelNamespace, type Store } from "../storage/mod.ts";
import { CapabilityCode, CapabilityError } from "./errors.ts";
import { compileGlob, type Glob } from "./glob.ts";
import {
  type CapabilityToken,
  checkTokenSignature,
  issuerSet,
  type Permission,
  validateToken,
} from "./token.ts";
import { parseToken, serializeToken } from "./token_json.ts";

/** Options of {@link TokenStore}. */
export interface TokenStoreOptions {
  /** The current time, read on every lookup. */
  clock: Clock;
  /** Public keys whose tokens are accepted (normally the runtime key alone). */
  trustedIssuers: readonly Uint8Array[];
  /** Told about a stored record that was skipped because it failed a check. */
  onInvalid?(principal: string, key: string, error: unknown): void;
}

/** A persisted revocation. */
export interface Revocation {
  /** The revoked token id. */
  id: string;
  /** Why, in a sentence. */
  reason: string;
  /** When, ms since the epoch. */
  revoked_at: number;
}

interface Cached {
  token: CapabilityToken;
  glob: Glob;
  notBefore: number;
  expiresAt: number;
}

interface PermissionIndex {
  exact: Map<string, Cached[]>;
  patterns: Cached[];
}

interface PrincipalCache {
  tokens: Map<string, Cached>;
  revoked: Set<string>;
  index: Map<Permission, PermissionIndex>;
}

const SUBSYSTEM = "tokens";
const TOKEN_PREFIX = "token/";
const REVOKED_PREFIX = "revoked/";
const ID_RE = /^[0-9a-f]{32}$/;
const MAX_REASON_LENGTH = 1024;
const VERIFIED_LIMIT = 65_536;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Per-principal capability tokens over a {@link Store}, with a cached covering lookup. */
export class TokenStore {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #trusted: ReadonlySet<string>;
  readonly #onInvalid: TokenStoreOptions["onInvalid"];
  readonly #cache = new Map<string, PrincipalCache>();
  readonly #loading = new Map<string, Promise<PrincipalCache>>();
  #generation = 0;
  /** Token id → BLAKE3 of the stored JSON whose signature already verified. */
  readonly #verified = new Map<string, string>();

  /** Keeps tokens in `store`, trusting tokens signed by `options.trustedIssuers`. */
  constructor(store: Store, options: TokenStoreOptions) {
    this.#store = store;
    this.#clock = options.clock;
    this.#trusted = issuerSet(options.trustedIssuers);
    this.#onInvalid = options.onInvalid;
  }

  /**
   * Stores `token` under its principal after checking its form, issuer and signature (throws
   * `TOKEN_MALFORMED`, `TOKEN_UNTRUSTED_ISSUER`, `TOKEN_FORGED`). Adding the same token again
   * is a no-op; a different token with a stored id throws `TOKEN_ID_CONFLICT`. A revoked id
   * stays revoked.
   */
  async add(token: CapabilityToken): Promise<void> {
    const t = validateToken(token);
    const json = serializeToken(t);
    await this.#checkSignature(t, json);
    const entry = await this.#entry(t.principal);
    const ns = kernelNamespace(t.principal, SUBSYSTEM);
    const key = TOKEN_PREFIX + t.id;
    const bytes = encoder.encode(json);
    const applied = await this.#store.atomic([
      { op: "check", ns, key, value: null },
      { op: "set", ns, key, value: bytes },
    ]);
    if (!applied) {
      const existing = await this.#store.get(ns, key);
      if (existing === null || !sameBytes(existing, bytes)) {
        throw new CapabilityError(
          CapabilityCode.TOKEN_ID_CONFLICT,
          `Cannot add capability token "${t.id}": principal "${t.principal}" already holds a different token with this id`,
          { data: { tokenId: t.id, principal: t.principal } },
        );
      }
    }
    entry.tokens.set(t.id, cached(t));
    reindex(entry);
  }

  /** The stored token `id` of `principal` (revoked or expired included), or `null`. */
  async get(principal: string, id: string): Promise<CapabilityToken | null> {
    const entry = await this.#entry(principal);
    return entry.tokens.get(id)?.token ?? null;
  }

  /** Every stored token of `principal` (revoked and expired included), by `issued_at` then id. */
  async list(principal: string): Promise<CapabilityToken[]> {
    const entry = await this.#entry(principal);
    return sorted([...entry.tokens.values()]).map((c) => c.token);
  }

  /**
   * Revokes token `id` of `principal` for `reason`, durably and at once. Resolves true when
   * newly revoked, false when it already was (the first reason is kept). The id need not be
   * stored yet: a token added later under it is revoked from the start.
   */
  async revoke(principal: string, id: string, reason: string): Promise<boolean> {
    checkId(id);
    if (typeof reason !== "string" || reason.length > MAX_REASON_LENGTH) {
      throw new CapabilityError(
        CapabilityCode.TOKEN_MALFORMED,
        `Cannot revoke capability token "${id}": reason must be a string of at most ${MAX_REASON_LENGTH} characters`,
        { data: { field: "reason", tokenId: id } },
      );
    }
    const entry = await this.#entry(principal);
    if (!entry.revoked.has(id)) {
      entry.revoked.add(id); // effective in memory before the write: fail closed
      reindex(entry);
    }
    const record: Revocation = { id, reason, revoked_at: this.#clock.now() };
    const ns = kernelNamespace(principal, SUBSYSTEM);
    const key = REVOKED_PREFIX + id;
    return await this.#store.atomic([
      { op: "check", ns, key, value: null },
      { op: "set", ns, key, value: encoder.encode(JSON.stringify(record)) },
    ]);
  }

  /** The revocation record of token `id`, or `null` when it is not revoked. */
  async revocation(principal: string, id: string): Promise<Revocation | null> {
    checkId(id);
    const bytes = await this.#store.get(kernelNamespace(principal, SUBSYSTEM), REVOKED_PREFIX + id);
    if (bytes === null) return null;
    return JSON.parse(decoder.decode(bytes)) as Revocation;
  }

  /** True when token `id` of `principal` was revoked. */
  async isRevoked(principal: string, id: string): Promise<boolean> {
    const entry = await this.#entry(principal);
    return entry.revoked.has(id);
  }

  /**
   * The token layer's lookup: the first stored token of `principal` that is not revoked, is
   * within its time bounds now, grants `permission` and whose pattern matches `resource`, or
   * `null`. Tokens naming `resource` literally are tried before patterns; among each kind,
   * the earliest issued first. Signatures were checked when the token was loaded or added.
   */
  findCovering(
    principal: string,
    permission: Permission,
    resource: string,
  ): Promise<CapabilityToken | null> {
    const entry = this.#cache.get(principal);
    if (entry !== undefined) return Promise.resolve(this.#find(entry, permission, resource));
    return this.#entry(principal).then((e) => this.#find(e, permission, resource));
  }

  /**
   * Deletes the stored tokens of `principal` that expired by now; resolves how many went.
   * Revocation records stay.
   */
  async purgeExpired(principal: string): Promise<number> {
    const entry = await this.#entry(principal);
    const now = this.#clock.now();
    const ns = kernelNamespace(principal, SUBSYSTEM);
    let purged = 0;
    for (const [id, c] of entry.tokens) {
      if (now < c.expiresAt) continue;
      await this.#store.delete(ns, TOKEN_PREFIX + id);
      entry.tokens.delete(id);
      purged++;
    }
    if (purged > 0) reindex(entry);
    return purged;
  }

  /** Drops the cache of `principal` (or of everyone), so the next call reloads from the store. */
  invalidate(principal?: string): void {
    this.#generation++;
    if (principal === undefined) {
      this.#cache.clear();
      this.#loading.clear();
    } else {
      this.#cache.delete(principal);
      this.#loading.delete(principal);
    }
  }

  #find(entry: PrincipalCache, permission: Permission, resource: string): CapabilityToken | null {
    const index = entry.index.get(permission);
    if (index === undefined) return null;
    const now = this.#clock.now();
    const exact = index.exact.get(resource);
    if (exact !== undefined) {
      for (const c of exact) if (c.notBefore <= now && now < c.expiresAt) return c.token;
    }
    for (const c of index.patterns) {
      if (c.notBefore <= now && now < c.expiresAt && c.glob.match(resource)) return c.token;
    }
    return null;
  }

  #entry(principal: string): Promise<PrincipalCache> {
    const entry = this.#cache.get(principal);
    if (entry !== undefined) return Promise.resolve(entry);
    let loading = this.#loading.get(principal);
    if (loading === undefined) {
      loading = this.#load(principal).finally(() => {
        if (this.#loading.get(principal) === loading) this.#loading.delete(principal);
      });
      this.#loading.set(principal, loading);
    }
    return loading;
  }

  async #load(principal: string): Promise<PrincipalCache> {
    principalId(principal);
    const generation = this.#generation;
    const ns = kernelNamespace(principal, SUBSYSTEM);
    const [records, revokedKeys] = await Promise.all([
      this.#store.scan(ns, { prefix: TOKEN_PREFIX }),
      this.#store.listKeys(ns, REVOKED_PREFIX),
    ]);
    const entry: PrincipalCache = {
      tokens: new Map(),
      revoked: new Set(revokedKeys.map((k) => k.slice(REVOKED_PREFIX.length))),
      index: new Map(),
    };
    for (const { key, value } of records) {
      try {
        const json = decoder.decode(value);
        const token = parseToken(json);
        if (token.principal !== principal || key !== TOKEN_PREFIX + token.id) {
          throw new CapabilityError(
            CapabilityCode.TOKEN_MALFORMED,
            `Stored capability token "${token.id}" of principal "${token.principal}" sits at "${ns}/${key}"`,
            { data: { field: "principal", tokenId: token.id } },
          );
        }
        await this.#checkSignature(token, json);
        entry.tokens.set(token.id, cached(token));
      } catch (err) {
        this.#onInvalid?.(principal, key, err);
      }
    }
    reindex(entry);
    // Publish unless invalidate() ran meanwhile (what was read may be stale then).
    if (generation === this.#generation) this.#cache.set(principal, entry);
    return entry;
  }

  async #checkSignature(token: CapabilityToken, json: string): Promise<void> {
    const digest = blake3Hex(json);
    if (this.#verified.get(token.id) === digest && this.#trusted.has(token.issuer)) return;
    await checkTokenSignature(token, this.#trusted);
    if (this.#verified.size >= VERIFIED_LIMIT) this.#verified.clear();
    this.#verified.set(token.id, digest);
  }
}

function cached(token: CapabilityToken): Cached {
  return {
    token,
    glob: compileGlob(token.resource),
    notBefore: token.not_before,
    expiresAt: token.expires_at ?? Infinity,
  };
}

function sorted(list: Cached[]): Cached[] {
  return list.sort((a, b) =>
    a.token.issued_at - b.token.issued_at || (a.token.id < b.token.id ? -1 : 1)
  );
}

function reindex(entry: PrincipalCache): void {
  entry.index.clear();
  for (const c of sorted([...entry.tokens.values()])) {
    if (entry.revoked.has(c.token.id)) continue;
    for (const p of c.token.permissions) {
      let index = entry.index.get(p);
      if (index === undefined) {
        index = { exact: new Map(), patterns: [] };
        entry.index.set(p, index);
      }
      if (c.glob.literal !== null) {
        const list = index.exact.get(c.glob.literal);
        if (list === undefined) index.exact.set(c.glob.literal, [c]);
        else list.push(c);
      } else {
        index.patterns.push(c);
      }
    }
  }
}

function checkId(id: string): void {
  if (typeof id !== "string" || !ID_RE.test(id)) {
    throw new CapabilityError(
      CapabilityCode.TOKEN_MALFORMED,
      `Invalid capability token id "${String(id).slice(0, 64)}": use 32 lowercase hex characters`,
      { data: { field: "id" } },
    );
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
