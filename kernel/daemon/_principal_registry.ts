/**
 * The identity store's first table: which principals exist. A principal is created on first use
 * (`--principal P` on an authenticated connection) and recorded in the store, namespace
 * `system:identity`, key `principal/<id>` → JSON `{ id, created_at, created_by }`; its home tree
 * (`home/<id>/.local/…`, `.config/env`) is laid out at the same time. Links between outside
 * users and principals (uplinks) arrive with the gateway.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { AstridHome } from "../home/mod.ts";
import { type PrincipalId, principalId } from "../identity/mod.ts";
import { decodeJson, encodeJson, type Store, systemNamespace } from "../storage/mod.ts";

const NS = systemNamespace("identity");
const PREFIX = "principal/";

/** A recorded principal. */
export interface PrincipalRecord {
  /** The principal id. */
  readonly id: string;
  /** When it was created, ms since the epoch. */
  readonly created_at: number;
  /** How it was created (`boot`, `connection c-3 (cli)`). */
  readonly created_by: string;
}

/** Creates principals on first use; concurrent first uses of one id create it once. */
export class PrincipalRegistry {
  readonly #store: Store;
  readonly #home: AstridHome;
  readonly #clock: Clock;
  readonly #known = new Set<string>();
  readonly #pending = new Map<string, Promise<boolean>>();

  /** Opens the registry over `store`, laying out homes under `home`. */
  constructor(store: Store, home: AstridHome, clock: Clock) {
    this.#store = store;
    this.#home = home;
    this.#clock = clock;
  }

  /** Validates `id` and records it when new; resolves true when it was created now. */
  ensure(id: string, createdBy: string): Promise<boolean> {
    const principal: PrincipalId = principalId(id);
    if (this.#known.has(principal)) return Promise.resolve(false);
    const pending = this.#pending.get(principal);
    if (pending !== undefined) return pending.then(() => false);
    const p = this.#create(principal, createdBy).finally(() => this.#pending.delete(principal));
    this.#pending.set(principal, p);
    return p;
  }

  /** Every recorded principal. */
  async list(): Promise<PrincipalRecord[]> {
    const entries = await this.#store.scan(NS, { prefix: PREFIX });
    return entries.map((e) => decodeJson<PrincipalRecord>(e.value)!);
  }

  async #create(principal: PrincipalId, createdBy: string): Promise<boolean> {
    const key = PREFIX + principal;
    const record: PrincipalRecord = {
      id: principal,
      created_at: this.#clock.now(),
      created_by: createdBy,
    };
    const created = await this.#store.atomic([
      { op: "check", ns: NS, key, value: null },
      { op: "set", ns: NS, key, value: encodeJson(record) },
    ]);
    await this.#home.ensurePrincipal(principal);
    this.#known.add(principal);
    return created;
  }
}
