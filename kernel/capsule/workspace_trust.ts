/**
 * Which workspace capsules the operator has trusted.
 *
 * A repository can carry `.astrid/capsules/` records of its own — a manifest of its author's
 * choosing naming any binary in `bin/` — so a workspace capsule is **untrusted**: the registry
 * loads it only when the operator has trusted exactly that capsule in exactly that workspace,
 * pinned to the BLAKE3 of its manifest text and its `wasm_hash`. A changed manifest or binary
 * is untrusted again (reported, not loaded) until trusted anew.
 *
 * {@link StoreWorkspaceTrust} keeps the decisions in the store (namespace
 * `system:capsule_trust`, key `<workspace-id>/<name>`); {@link NO_WORKSPACE_TRUST} trusts
 * nothing (the registry's default).
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";
import { blake3Hex } from "../crypto/mod.ts";
import { decodeJson, encodeJson, type Store, systemNamespace } from "../storage/mod.ts";
import type { InstallRecord } from "./install_record.ts";

/** What a trust decision pins. */
export interface TrustSubject {
  /** The workspace id (`.astrid/workspace-id`). */
  readonly workspaceId: string;
  /** The capsule name. */
  readonly name: string;
  /** `blake3:<hex>` of the manifest text. */
  readonly manifestHash: string;
  /** The record's pinned `wasm_hash` (`null` without `[wasm]`). */
  readonly wasmHash: string | null;
}

/** A recorded trust decision. */
export interface TrustRecord extends TrustSubject {
  /** When it was trusted, ms since the epoch. */
  readonly trustedAt: number;
  /** Who decided (`operator`, `approval:<id>`). */
  readonly by: string;
}

/** Decides whether a workspace capsule may load. */
export interface WorkspaceTrust {
  /** True when the operator trusted exactly this subject. */
  isTrusted(subject: TrustSubject): Promise<boolean>;
}

/** Trusts nothing: workspace capsules are reported and never loaded. */
export const NO_WORKSPACE_TRUST: WorkspaceTrust = Object.freeze({
  isTrusted: () => Promise.resolve(false),
});

/** The subject of `record` installed in workspace `workspaceId`. */
export function trustSubject(workspaceId: string, record: InstallRecord): TrustSubject {
  return {
    workspaceId,
    name: record.manifest.package.name,
    manifestHash: `blake3:${blake3Hex(new TextEncoder().encode(record.manifestText))}`,
    wasmHash: record.meta.wasm_hash,
  };
}

/** The store namespace of trust decisions. */
export const TRUST_NAMESPACE = "system:capsule_trust";

interface Stored {
  manifest_hash: string;
  wasm_hash: string | null;
  trusted_at: number;
  by: string;
}

/** Trust decisions kept in the store; see the module doc. */
export class StoreWorkspaceTrust implements WorkspaceTrust {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #ns = systemNamespace("capsule_trust"); // TRUST_NAMESPACE

  /** Decisions in `store`, stamped by `clock`. */
  constructor(store: Store, options: { clock?: Clock } = {}) {
    this.#store = store;
    this.#clock = options.clock ?? systemClock;
  }

  /** Records that the operator trusts `subject` (replacing an earlier decision). */
  async trust(subject: TrustSubject, options: { by?: string } = {}): Promise<TrustRecord> {
    const value: Stored = {
      manifest_hash: subject.manifestHash,
      wasm_hash: subject.wasmHash,
      trusted_at: this.#clock.now(),
      by: options.by ?? "operator",
    };
    await this.#store.set(this.#ns, key(subject.workspaceId, subject.name), encodeJson(value));
    return { ...subject, trustedAt: value.trusted_at, by: value.by };
  }

  /** Forgets the decision on capsule `name` in `workspaceId`; false when there was none. */
  revoke(workspaceId: string, name: string): Promise<boolean> {
    return this.#store.delete(this.#ns, key(workspaceId, name));
  }

  /** The decisions of `workspaceId` (or all), by key. */
  async list(workspaceId?: string): Promise<TrustRecord[]> {
    const entries = await this.#store.scan(this.#ns, {
      prefix: workspaceId === undefined ? "" : `${workspaceId}/`,
    });
    return entries.map((e) => {
      const v = decodeJson(e.value) as unknown as Stored;
      const slash = e.key.indexOf("/");
      return {
        workspaceId: e.key.slice(0, slash),
        name: e.key.slice(slash + 1),
        manifestHash: v.manifest_hash,
        wasmHash: v.wasm_hash,
        trustedAt: v.trusted_at,
        by: v.by,
      };
    });
  }

  /** True when a decision pins exactly this manifest and binary. */
  async isTrusted(subject: TrustSubject): Promise<boolean> {
    const raw = await this.#store.get(this.#ns, key(subject.workspaceId, subject.name));
    if (raw === null) return false;
    const v = decodeJson(raw) as unknown as Stored;
    return v.manifest_hash === subject.manifestHash && v.wasm_hash === subject.wasmHash;
  }
}

function key(workspaceId: string, name: string): string {
  return `${workspaceId}/${name}`;
}
