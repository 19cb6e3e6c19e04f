/**
 * The audit log: append-only, per-principal, hash-chained and signed.
 *
 * Appends are group-committed: every append issued while a commit is in flight joins the next
 * one, so a burst of decisions costs one transaction (one fsync) and the chain hashes are
 * computed in order while the signatures are made together. `append()` resolves only after
 * its entry is durable, so an action can wait on its audit row before it takes effect.
 *
 * Storage, per principal `p` in namespace `p:kernel:audit`: `e/<seq, 16 digits>` → record,
 * `head` → the signed chain head (seq and hash of the last entry), written in the same
 * transaction as the entries so truncating the tail is detectable. `system:audit` lists the
 * principals that have a chain.
 *
 * @example
 * ```ts
 * import { AuditLog } from "./mod.ts";
 * import { KeyPair } from "../crypto/mod.ts";
 * import { MemoryStore } from "../storage/mod.ts";
 * const key = await KeyPair.generate();
 * const log = new AuditLog(new MemoryStore(), { signer: key });
 * await log.append({
 *   principal: "default", action: "fs.write", resource: "fs:/work/repo/a.txt",
 *   decision: "allowed", reason: "covered by token", layer: "token", decider: "token",
 * });
 * const report = await log.verify("default", key.publicKey);
 * if (!report.ok) throw new Error(report.broken!.message);
 * ```
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import { blake3, type Signer } from "../crypto/mod.ts";
import {
  kernelNamespace,
  type SyncTx,
  systemNamespace,
  type TransactionalStore,
} from "../storage/mod.ts";
import {
  type AuditEntry,
  type AuditInput,
  decodeRecord,
  encodeBody,
  GENESIS_HASH,
  joinRecord,
  normalizeInput,
  toEntry,
} from "./entry.ts";
import { decodeHead, encodeHead, type Head } from "./head.ts";
import { AuditCode, AuditError } from "./errors.ts";
import { verifyChain, type VerifyReport } from "./verify.ts";

/** Options of {@link AuditLog}. */
export interface AuditLogOptions {
  /** The runtime key that signs every entry and head. */
  signer: Signer;
  /** Where timestamps come from (default: the system clock). */
  clock?: Clock;
}

/** Options of {@link AuditLog.list}. */
export interface ListOptions {
  /** Only entries at or after this time (ms since the epoch). */
  since?: number;
  /** At most this many entries, the newest ones (default 100). */
  limit?: number;
}

interface Pending {
  input: Required<AuditInput>;
  resolve: (entry: AuditEntry) => void;
  reject: (err: unknown) => void;
}

const PRINCIPALS_NS = systemNamespace("audit");
const ENTRY_PREFIX = "e/";

/** The key of entry `seq` in a principal's audit namespace. */
export function entryKey(seq: number): string {
  return ENTRY_PREFIX + String(seq).padStart(16, "0");
}

/** The namespace of a principal's audit chain. */
export function auditNamespace(principal: string): string {
  return kernelNamespace(principal, "audit");
}

/** The most entries one transaction holds (a larger burst takes several). */
const MAX_BATCH = 1024;
/** How many rounds of appends that arrived during signing may join a batch. */
const JOIN_ROUNDS = 1;

/** Append-only, per-principal, signed and hash-chained audit log. */
export class AuditLog {
  #store: TransactionalStore;
  #signer: Signer;
  #clock: Clock;
  #heads = new Map<string, Head>();
  #queue: Pending[] = [];
  #flushing: Promise<void> | null = null;
  #closed = false;

  /** Opens the log over `store`, signing with `options.signer`. */
  constructor(store: TransactionalStore, options: AuditLogOptions) {
    this.#store = store;
    this.#signer = options.signer;
    this.#clock = options.clock ?? systemClock;
  }

  /** Appends one decision; resolves with the entry once it is durable. */
  append(input: AuditInput): Promise<AuditEntry> {
    if (this.#closed) {
      return Promise.reject(new AuditError(AuditCode.AUDIT_CLOSED, "The audit log is closed"));
    }
    let normalized: Required<AuditInput>;
    try {
      normalized = normalizeInput(input);
      auditNamespace(normalized.principal); // validates the principal
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ input: normalized, resolve, reject });
      if (this.#flushing === null) this.#flushing = this.#flushLoop();
    });
  }

  /** Resolves when every append issued so far is durable. */
  async flush(): Promise<void> {
    while (this.#flushing !== null) await this.#flushing;
  }

  /** Flushes pending appends and refuses new ones. The store stays open. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  async #flushLoop(): Promise<void> {
    try {
      // Let the appends of the current task join this batch.
      await Promise.resolve();
      while (this.#queue.length > 0) {
        const batch = this.#queue;
        this.#queue = [];
        await this.#commit(batch);
      }
    } finally {
      this.#flushing = null;
    }
  }

  async #commit(first: Pending[]): Promise<void> {
    const heads = new Map<string, Head>();
    const prepared: { pending: Pending; body: Uint8Array; hash: Uint8Array; seq: number }[] = [];
    const signatures: Uint8Array[] = [];
    const batch: Pending[] = [];
    try {
      // Appends that arrive while the first part is being signed join the same transaction (one
      // fsync for a burst): one extra round only, so an early append never waits on a stream of
      // later ones, and never past MAX_BATCH entries.
      for (let part = first, round = 0; part.length > 0; round++) {
        batch.push(...part);
        const from = prepared.length;
        const timestamp = this.#clock.now();
        for (const pending of part) {
          const principal = pending.input.principal;
          const head = heads.get(principal) ?? this.#loadHead(principal);
          const seq = head.seq + 1;
          const body = encodeBody({ ...pending.input, seq, timestamp, prevHash: head.hash });
          const hash = blake3(body);
          heads.set(principal, { principal, seq, hash });
          prepared.push({ pending, body, hash, seq });
        }
        const signed = await Promise.all(
          prepared.slice(from).map((p) => this.#signer.sign(p.hash)),
        );
        signatures.push(...signed);
        if (round >= JOIN_ROUNDS || batch.length >= MAX_BATCH) break;
        part = this.#queue.splice(0, MAX_BATCH - batch.length);
      }
      const headRecords = await Promise.all(
        [...heads.values()].map(async (h) => {
          const body = encodeHead(h);
          return { head: h, record: joinRecord(body, await this.#signer.sign(blake3(body))) };
        }),
      );
      const records = prepared.map((p, i) => joinRecord(p.body, signatures[i]));
      this.#store.transaction((tx) => {
        for (const { head } of headRecords) this.#checkHead(tx, head.principal);
        prepared.forEach((p, i) =>
          tx.set(auditNamespace(p.pending.input.principal), entryKey(p.seq), records[i])
        );
        for (const { head, record } of headRecords) {
          tx.set(auditNamespace(head.principal), "head", record);
        }
        for (const p of prepared) {
          if (p.seq === 1) tx.set(PRINCIPALS_NS, p.pending.input.principal, new Uint8Array([1]));
        }
      });
      for (const [principal, head] of heads) this.#heads.set(principal, head);
      prepared.forEach((p, i) => p.pending.resolve(toEntry(decodeRecord(records[i]), p.hash)));
    } catch (err) {
      // Nothing of this batch is durable; drop cached heads so the next batch re-reads them.
      for (const principal of heads.keys()) this.#heads.delete(principal);
      for (const p of batch) p.reject(err);
    }
  }

  /** The cached head of `principal`, read from the store on first use. */
  #loadHead(principal: string): Head {
    const cached = this.#heads.get(principal);
    if (cached !== undefined) return cached;
    const head = this.#store.transaction((tx) => readHead(tx, principal));
    this.#heads.set(principal, head);
    return head;
  }

  /** Fails the transaction when the stored head is not the one this writer chained from. */
  #checkHead(tx: SyncTx, principal: string): void {
    const expected = this.#heads.get(principal) ?? { principal, seq: 0, hash: GENESIS_HASH };
    const stored = readHead(tx, principal);
    if (stored.seq !== expected.seq) {
      throw new AuditError(
        AuditCode.AUDIT_CONFLICT,
        `Audit chain of "${principal}" moved under this writer: stored head ${stored.seq}, expected ${expected.seq}`,
        { data: { principal } },
      );
    }
  }

  /** Principals that have an audit chain, sorted. */
  async principals(): Promise<string[]> {
    return await this.#store.listKeys(PRINCIPALS_NS);
  }

  /** Entries of `principal`'s chain, oldest first, filtered by `options`. */
  async list(principal: string, options: ListOptions = {}): Promise<AuditEntry[]> {
    const limit = options.limit ?? 100;
    const ns = auditNamespace(principal);
    const head = this.#store.transaction((tx) => readHead(tx, principal));
    // Walk back from the head in pages until `limit` entries at or after `since` are found.
    const out: AuditEntry[] = [];
    let upper = head.seq;
    const page = 256;
    while (upper > 0 && out.length < limit) {
      const lower = Math.max(1, upper - page + 1);
      const rows = await this.#store.scan(ns, {
        prefix: ENTRY_PREFIX,
        after: lower > 1 ? entryKey(lower - 1) : undefined,
        limit: upper - lower + 1,
      });
      const entries = rows.map((r) => toEntry(decodeRecord(r.value)));
      for (let i = entries.length - 1; i >= 0 && out.length < limit; i--) {
        if (options.since !== undefined && entries[i].timestamp < options.since) {
          return out.reverse();
        }
        out.push(entries[i]);
      }
      upper = lower - 1;
    }
    return out.reverse();
  }

  /** Verifies `principal`'s whole chain against `publicKey`; reports the first broken link. */
  verify(principal: string, publicKey: Uint8Array): Promise<VerifyReport> {
    return verifyChain(this.#store, principal, publicKey);
  }
}

/** Reads and decodes the stored head of `principal` (seq 0 and the genesis hash when none). */
function readHead(tx: SyncTx, principal: string): Head {
  const raw = tx.get(auditNamespace(principal), "head");
  if (raw === null) return { principal, seq: 0, hash: GENESIS_HASH };
  return decodeHead(raw).head;
}
