/**
 * An {@link ApprovalBroker} inside the daemon's process: frontends attach to a (principal,
 * session) with a handle, receive its requests through a callback and answer through the
 * handle, so a frontend can only answer its own session's requests. The first answer wins;
 * every interactive frontend of the session is told when a request settles, whoever answered.
 * A request asked while no interactive frontend is attached waits (the interceptor's timeout
 * bounds it) and is shown to the first one that attaches.
 *
 * @example
 * ```ts
 * import { InProcessApprovalBroker } from "./in_process_approval_broker.ts";
 * const broker = new InProcessApprovalBroker();
 * const tui = broker.attach("default", "s1", {
 *   interactive: true,
 *   onRequest: (request) => tui.respond(request.id, { answer: "allow_once" }),
 * });
 * ```
 *
 * @module
 */
import type {
  ApprovalBroker,
  ApprovalReach,
  ApprovalRequest,
  ApprovalResponse,
  AskOptions,
} from "./approval.ts";
import { SecurityCode, SecurityError } from "./errors.ts";

/** How a frontend attaches. */
export interface FrontendOptions {
  /** A name for audit details (default: `frontend-<n>`). */
  id?: string;
  /** True when it can ask a human (a terminal or chat UI); false for headless `-p`. */
  interactive: boolean;
  /** True when it runs with `--yes`: the operator's standing Allow Once for that run. */
  assumeYes?: boolean;
  /**
   * Called with each request of its session while attached (interactive frontends only);
   * requests already pending at `attach` arrive in a microtask, once the handle exists.
   */
  onRequest?(request: ApprovalRequest): void;
  /** Called when a request shown to it settles: the winning response, or null when withdrawn. */
  onSettled?(requestId: string, response: ApprovalResponse | null): void;
}

/** An attached frontend. */
export interface FrontendHandle {
  /** Its id. */
  readonly id: string;
  /**
   * Answers request `requestId` of its own session. Throws `APPROVAL_UNKNOWN` when no such
   * request is pending there, `APPROVAL_ANSWER_INVALID` when the answer was not offered.
   */
  respond(requestId: string, response: ApprovalResponse): void;
  /** Detaches; pending requests stay for other or later frontends. */
  detach(): void;
}

/** Options of {@link InProcessApprovalBroker}. */
export interface InProcessApprovalBrokerOptions {
  /** Called when the last frontend of a (principal, session) detaches (end its allowances). */
  onSessionIdle?(principal: string, session: string): void;
}

interface Frontend {
  id: string;
  options: FrontendOptions;
}

interface Pending {
  request: ApprovalRequest;
  resolve(response: ApprovalResponse): void;
  shownTo: Set<Frontend>;
}

/** Approvals between the kernel and frontends in the same process. */
export class InProcessApprovalBroker implements ApprovalBroker {
  readonly #sessions = new Map<string, Set<Frontend>>();
  readonly #pending = new Map<string, Pending>();
  readonly #onSessionIdle: InProcessApprovalBrokerOptions["onSessionIdle"];
  #next = 0;

  /** Creates an empty broker. */
  constructor(options: InProcessApprovalBrokerOptions = {}) {
    this.#onSessionIdle = options.onSessionIdle;
  }

  /** Attaches a frontend to (principal, session) and shows it the session's pending requests. */
  attach(principal: string, session: string, options: FrontendOptions): FrontendHandle {
    const key = principal + "\0" + session;
    const frontend: Frontend = { id: options.id ?? `frontend-${++this.#next}`, options };
    let set = this.#sessions.get(key);
    if (set === undefined) {
      set = new Set();
      this.#sessions.set(key, set);
    }
    set.add(frontend);
    let attached = true;
    if (options.interactive) {
      // After attach() returns, so the callback can already use its handle.
      queueMicrotask(() => {
        if (!attached) return;
        for (const p of this.#pending.values()) {
          if (p.request.principal === principal && p.request.session === session) {
            this.#show(p, frontend);
          }
        }
      });
    }
    return {
      id: frontend.id,
      respond: (requestId, response) => {
        const p = this.#pending.get(requestId);
        if (
          !attached || p === undefined || p.request.principal !== principal ||
          p.request.session !== session
        ) {
          throw new SecurityError(
            SecurityCode.APPROVAL_UNKNOWN,
            `Cannot answer approval "${requestId}": no such request is pending for this session`,
            { data: { requestId } },
          );
        }
        if (!p.request.answers.includes(response.answer)) {
          throw new SecurityError(
            SecurityCode.APPROVAL_ANSWER_INVALID,
            `Cannot answer approval "${requestId}" with "${response.answer}": offered ${
              p.request.answers.join(", ")
            }`,
            { data: { requestId, answer: String(response.answer) } },
          );
        }
        this.#settle(requestId, { ...response, frontend: frontend.id });
      },
      detach: () => {
        if (!attached) return;
        attached = false;
        set.delete(frontend);
        if (set.size === 0) {
          this.#sessions.delete(key);
          this.#onSessionIdle?.(principal, session);
        }
      },
    };
  }

  /** Who is attached to (principal, session). */
  reach(principal: string, session: string): ApprovalReach {
    const set = this.#sessions.get(principal + "\0" + session);
    let interactive = 0;
    let assumeYes = false;
    for (const f of set ?? []) {
      if (f.options.interactive) interactive++;
      if (f.options.assumeYes === true) assumeYes = true;
    }
    return { interactive, attached: set?.size ?? 0, assumeYes };
  }

  /** Shows `request` to the session's interactive frontends; resolves with the first answer. */
  ask(request: ApprovalRequest, options: AskOptions): Promise<ApprovalResponse> {
    const signal = options.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        if (this.#settle(request.id, null)) reject(signal.reason);
      };
      const pending: Pending = {
        request,
        resolve: (response) => {
          signal.removeEventListener("abort", onAbort);
          resolve(response);
        },
        shownTo: new Set(),
      };
      this.#pending.set(request.id, pending);
      signal.addEventListener("abort", onAbort, { once: true });
      for (const f of this.#sessions.get(request.principal + "\0" + request.session) ?? []) {
        if (f.options.interactive) this.#show(pending, f);
      }
    });
  }

  /** Requests waiting for an answer, optionally of one principal (and session). */
  pending(principal?: string, session?: string): ApprovalRequest[] {
    return [...this.#pending.values()].map((p) => p.request).filter((r) =>
      (principal === undefined || r.principal === principal) &&
      (session === undefined || r.session === session)
    );
  }

  #show(p: Pending, f: Frontend): void {
    if (p.shownTo.has(f)) return;
    p.shownTo.add(f);
    try {
      f.options.onRequest?.(p.request);
    } catch {
      // A frontend's callback failing must not break the kernel; the request stays pending.
    }
  }

  /** Ends request `id` with `response` (null: withdrawn); false when it was not pending. */
  #settle(id: string, response: ApprovalResponse | null): boolean {
    const p = this.#pending.get(id);
    if (p === undefined) return false;
    this.#pending.delete(id);
    if (response !== null) p.resolve(response);
    for (const f of p.shownTo) {
      try {
        f.options.onSettled?.(id, response);
      } catch {
        // ignored, as in #show
      }
    }
    return true;
  }
}
