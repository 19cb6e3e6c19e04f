/**
 * The budget layer: per-action, per-session and per-workspace spending limits in US dollars,
 * enforced by reservations.
 *
 * Lifecycle: {@link Budget.reserve} holds an amount against both the session's and the
 * workspace's budget (while an approval is pending too) or refuses it; the holder then calls
 * {@link Reservation.commit} with the actual cost (the rest is refunded) or
 * {@link Reservation.release} to refund everything (denial, timeout, error). An `AbortSignal`
 * passed to `reserve` releases the reservation when it aborts before commit.
 *
 * Amounts are kept as integers of nano-dollars, so a thousand small reservations add up
 * exactly. The check and the hold happen in one synchronous step after the workspace's spend
 * is loaded, so concurrent reservations never overspend. Session spend lives in memory;
 * workspace spend is persisted per (principal, workspace) in `{principal}:kernel:budget`,
 * key `workspace/<id>` → `{"spent_nano_usd": n}`, by compare-and-set (group-committed), so it
 * survives restarts and is shared by the workspace's sessions. A commit resolves when the
 * charge is durable. An actual cost above the reservation is still charged (the money is
 * spent); later reservations then fail.
 *
 * @module
 */
import type { BudgetConfig, ModelPrice } from "../config/mod.ts";
import { kernelNamespace, type Store } from "../storage/mod.ts";
import { SecurityCode, SecurityError } from "./errors.ts";

/** Whose budgets a reservation draws on. */
export interface BudgetScope {
  /** The acting principal. */
  principal: string;
  /** The session. */
  session: string;
  /** The workspace id. */
  workspace: string;
}

/** What {@link Budget.reserve} is asked to hold. */
export interface ReserveRequest {
  /** The estimate to hold, USD. */
  usd: number;
  /** The limits in force (the workspace's merged `[budget]`). */
  limits: BudgetConfig;
  /** Releases the reservation when it aborts before `commit`. */
  signal?: AbortSignal;
}

/** An amount held against a session and a workspace budget until settled. */
export interface Reservation {
  /** A process-unique id, for logs. */
  readonly id: string;
  /** The amount held, USD. */
  readonly amountUsd: number;
  /** True once committed or released. */
  readonly settled: boolean;
  /** Charges `actualUsd` and refunds the rest; resolves when the charge is durable. */
  commit(actualUsd: number): Promise<void>;
  /** Refunds the whole amount. A no-op when already released; throws after a commit. */
  release(): void;
}

/** Spent and held amounts of one scope, USD. */
export interface BudgetUsage {
  /** Charged to the session. */
  sessionSpentUsd: number;
  /** Held for the session by unsettled reservations. */
  sessionHeldUsd: number;
  /** Charged to the workspace (all its sessions, this principal). */
  workspaceSpentUsd: number;
  /** Held for the workspace by unsettled reservations of this process. */
  workspaceHeldUsd: number;
}

interface Ledger {
  spent: number;
  held: number;
}

interface WorkspaceLedger extends Ledger {
  ns: string;
  key: string;
  unpersisted: number;
  waiters: { resolve(): void; reject(err: unknown): void }[];
  flushing: Promise<void> | null;
}

const NANO = 1e9;
const SUBSYSTEM = "budget";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** USD → nano-dollars. */
function nano(usd: number): number {
  return Math.round(usd * NANO);
}

/** Nano-dollars → USD. */
function usd(n: number): number {
  return n / NANO;
}

function checkAmount(field: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 1e6) {
    throw new SecurityError(
      SecurityCode.BUDGET_BAD_AMOUNT,
      `Invalid ${field} "${value}": use a number of US dollars from 0 to 1000000`,
      { data: { field, amountUsd: Number(value) } },
    );
  }
}

/**
 * The cost in USD of `inputTokens` and `outputTokens` at `price` (USD per million tokens),
 * rounded up to the nano-dollar.
 */
export function costUsd(price: ModelPrice, inputTokens: number, outputTokens: number): number {
  const n = inputTokens * price.input_per_mtok * 1000 + outputTokens * price.output_per_mtok * 1000;
  return Math.max(0, Math.ceil(n - 1e-6)) / NANO;
}

/**
 * The reservation for one model request (DESIGN §6): the prompt at 4 characters a token,
 * rounded up, plus `maxTokens` of output, at `price`.
 */
export function estimateGenerateUsd(
  price: ModelPrice,
  request: { promptChars: number; maxTokens: number },
): number {
  return costUsd(price, Math.ceil(request.promptChars / 4), request.maxTokens);
}

/** Session and workspace budgets with reservations; see the module doc. */
export class Budget {
  readonly #store: Store;
  readonly #sessions = new Map<string, Ledger>();
  readonly #workspaces = new Map<string, WorkspaceLedger>();
  readonly #loading = new Map<string, Promise<WorkspaceLedger>>();
  #next = 0;

  /** Keeps workspace spend in `store`. */
  constructor(store: Store) {
    this.#store = store;
  }

  /**
   * Holds `request.usd` against the session and the workspace budget of `scope`. Throws
   * `BUDGET_PER_ACTION_EXCEEDED`, `BUDGET_SESSION_EXHAUSTED` or `BUDGET_WORKSPACE_EXHAUSTED`
   * (nothing held), `BUDGET_BAD_AMOUNT`, or the signal's reason when it already aborted.
   */
  async reserve(scope: BudgetScope, request: ReserveRequest): Promise<Reservation> {
    const ws = await this.#ledger(scope, request);
    // No await between the check and the hold: check-and-hold is one atomic step.
    const { session, amount } = this.#fit(scope, ws, request);
    session.held += amount;
    ws.held += amount;
    return this.#reservation(session, ws, amount, request.signal);
  }

  /** Throws as {@link Budget.reserve} would, without holding anything. */
  async check(scope: BudgetScope, request: ReserveRequest): Promise<void> {
    this.#fit(scope, await this.#ledger(scope, request), request);
  }

  /** Validates the amount and loads the workspace ledger (the only await of a reservation). */
  #ledger(scope: BudgetScope, request: ReserveRequest): Promise<WorkspaceLedger> {
    try {
      checkAmount("amount", request.usd);
      request.signal?.throwIfAborted();
    } catch (err) {
      return Promise.reject(err);
    }
    const wsKey = scope.principal + "\0" + scope.workspace;
    const ws = this.#workspaces.get(wsKey);
    return ws !== undefined ? Promise.resolve(ws) : this.#loadWorkspace(wsKey, scope);
  }

  /** Throws unless `request` fits every limit now; synchronous. */
  #fit(
    scope: BudgetScope,
    ws: WorkspaceLedger,
    request: ReserveRequest,
  ): { session: Ledger; amount: number } {
    request.signal?.throwIfAborted();
    const amount = nano(request.usd);
    const limits = request.limits;
    if (amount > nano(limits.per_action_usd)) {
      throw new SecurityError(
        SecurityCode.BUDGET_PER_ACTION_EXCEEDED,
        `Budget refuses $${request.usd}: above the per-action limit $${limits.per_action_usd} (budget.per_action_usd)`,
        { data: { amountUsd: request.usd, limitUsd: limits.per_action_usd } },
      );
    }
    const sessionKey = scope.principal + "\0" + scope.session;
    let session = this.#sessions.get(sessionKey);
    if (session === undefined) {
      session = { spent: 0, held: 0 };
      this.#sessions.set(sessionKey, session);
    }
    exhausted(session, amount, limits.session_usd, "session", request.usd);
    exhausted(ws, amount, limits.workspace_usd, "workspace", request.usd);
    return { session, amount };
  }

  /** What `scope` has spent and holds now. */
  async usage(scope: BudgetScope): Promise<BudgetUsage> {
    const wsKey = scope.principal + "\0" + scope.workspace;
    const ws = this.#workspaces.get(wsKey) ?? await this.#loadWorkspace(wsKey, scope);
    const session = this.#sessions.get(scope.principal + "\0" + scope.session);
    return {
      sessionSpentUsd: usd(session?.spent ?? 0),
      sessionHeldUsd: usd(session?.held ?? 0),
      workspaceSpentUsd: usd(ws.spent),
      workspaceHeldUsd: usd(ws.held),
    };
  }

  #reservation(
    session: Ledger,
    ws: WorkspaceLedger,
    amount: number,
    signal: AbortSignal | undefined,
  ): Reservation {
    const id = `r${++this.#next}`;
    let state: "held" | "committed" | "released" = "held";
    const settle = (): void => {
      session.held -= amount;
      ws.held -= amount;
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = (): void => {
      if (state !== "held") return;
      state = "released";
      settle();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const settled = (what: string): SecurityError =>
      new SecurityError(
        SecurityCode.RESERVATION_SETTLED,
        `Cannot ${what} reservation "${id}": it was already ${state}`,
        { data: { reservationId: id } },
      );
    return {
      id,
      amountUsd: usd(amount),
      get settled() {
        return state !== "held";
      },
      commit: (actualUsd: number): Promise<void> => {
        if (state !== "held") return Promise.reject(settled("commit"));
        try {
          checkAmount("actual cost", actualUsd);
        } catch (err) {
          return Promise.reject(err);
        }
        state = "committed";
        settle();
        const actual = nano(actualUsd);
        session.spent += actual;
        ws.spent += actual;
        if (actual === 0) return Promise.resolve();
        ws.unpersisted += actual;
        return new Promise<void>((resolve, reject) => {
          ws.waiters.push({ resolve, reject });
          if (ws.flushing === null) ws.flushing = this.#flush(ws);
        });
      },
      release: (): void => {
        if (state === "released") return;
        if (state === "committed") throw settled("release");
        state = "released";
        settle();
      },
    };
  }

  #loadWorkspace(wsKey: string, scope: BudgetScope): Promise<WorkspaceLedger> {
    let loading = this.#loading.get(wsKey);
    if (loading === undefined) {
      const ns = kernelNamespace(scope.principal, SUBSYSTEM);
      const key = "workspace/" + scope.workspace;
      loading = this.#store.get(ns, key).then((bytes) => {
        const ledger: WorkspaceLedger = {
          ns,
          key,
          spent: readSpent(bytes),
          held: 0,
          unpersisted: 0,
          waiters: [],
          flushing: null,
        };
        this.#workspaces.set(wsKey, ledger);
        return ledger;
      }).finally(() => this.#loading.delete(wsKey));
      this.#loading.set(wsKey, loading);
    }
    return loading;
  }

  /** Persists accumulated charges by compare-and-set; one store transaction per batch. */
  async #flush(ws: WorkspaceLedger): Promise<void> {
    try {
      await Promise.resolve();
      while (ws.waiters.length > 0) {
        const batch = ws.waiters;
        ws.waiters = [];
        const delta = ws.unpersisted;
        ws.unpersisted = 0;
        try {
          for (let attempt = 0;; attempt++) {
            const current = await this.#store.get(ws.ns, ws.key);
            const next = readSpent(current) + delta;
            const ok = await this.#store.atomic([
              { op: "check", ns: ws.ns, key: ws.key, value: current },
              { op: "set", ns: ws.ns, key: ws.key, value: writeSpent(next) },
            ]);
            if (ok) {
              // Another writer may have charged the workspace too: never fall below the store.
              ws.spent = Math.max(ws.spent, next + ws.unpersisted);
              break;
            }
            if (attempt >= 100) throw new Error("Workspace budget record keeps changing");
          }
          for (const w of batch) w.resolve();
        } catch (err) {
          ws.unpersisted += delta; // still charged in memory; persisted by the next flush
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      ws.flushing = null;
    }
  }
}

function exhausted(
  ledger: Ledger,
  amount: number,
  limitUsd: number,
  which: "session" | "workspace",
  amountUsd: number,
): void {
  if (ledger.spent + ledger.held + amount <= nano(limitUsd)) return;
  const used = usd(ledger.spent + ledger.held);
  throw new SecurityError(
    which === "session"
      ? SecurityCode.BUDGET_SESSION_EXHAUSTED
      : SecurityCode.BUDGET_WORKSPACE_EXHAUSTED,
    `Budget refuses $${amountUsd}: the ${which} has $${used} spent or held of $${limitUsd} (budget.${which}_usd)`,
    { data: { amountUsd, limitUsd, usedUsd: used } },
  );
}

function readSpent(bytes: Uint8Array | null): number {
  if (bytes === null) return 0;
  try {
    const v = JSON.parse(decoder.decode(bytes)).spent_nano_usd;
    if (Number.isSafeInteger(v) && v >= 0) return v;
  } catch {
    // fall through
  }
  // An unreadable record must not reset the spend to zero: treat it as exhausted.
  return Number.MAX_SAFE_INTEGER / 2;
}

function writeSpent(n: number): Uint8Array {
  return encoder.encode(JSON.stringify({ spent_nano_usd: n }));
}
