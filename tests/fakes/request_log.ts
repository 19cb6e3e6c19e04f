/**
 * What a fake server received: every request (method, path, headers with secrets redacted,
 * body, the turn that answered, the status sent) and counters per path, for assertions.
 *
 * @module
 */

/** Headers whose values are replaced by {@link REDACTED} before recording. */
export const SECRET_HEADERS: readonly string[] = [
  "authorization",
  "x-api-key",
  "api-key",
  "cookie",
  "proxy-authorization",
];

/** The value recorded in place of a secret header. */
export const REDACTED = "[redacted]";

/** One request as the fake received it. */
export interface RecordedRequest {
  /** 0-based arrival order among all requests to this server. */
  readonly seq: number;
  /** HTTP method. */
  readonly method: string;
  /** URL path, without the query. */
  readonly path: string;
  /** The query string with its `?`, or `""`. */
  readonly query: string;
  /** Lower-case header names; secret values replaced by {@link REDACTED}. */
  readonly headers: Readonly<Record<string, string>>;
  /** The JSON body parsed, the raw text when it is not JSON, or null when empty. */
  readonly body: unknown;
  /** Index of the script turn that answered (-1 fallback, -2 no match); absent for non-chat paths. */
  turn?: number;
  /** The label of that turn, if it has one. */
  turnName?: string;
  /** The HTTP status sent. */
  status?: number;
}

/** An append-only log of requests with per-path counters. */
export class RequestLog {
  #entries: RecordedRequest[] = [];
  #counts = new Map<string, number>();

  /** Records a request and returns the entry (its status and turn are filled in later). */
  record(
    init: { method: string; url: URL; headers: Headers; body: unknown },
  ): RecordedRequest {
    const headers: Record<string, string> = {};
    init.headers.forEach((value, name) => {
      headers[name] = SECRET_HEADERS.includes(name) ? REDACTED : value;
    });
    const entry: RecordedRequest = {
      seq: this.#entries.length,
      method: init.method,
      path: init.url.pathname,
      query: init.url.search,
      headers,
      body: init.body,
    };
    this.#entries.push(entry);
    this.#counts.set(entry.path, (this.#counts.get(entry.path) ?? 0) + 1);
    return entry;
  }

  /** Every request so far, in arrival order. */
  get entries(): readonly RecordedRequest[] {
    return this.#entries;
  }

  /** How many requests reached `path`. */
  count(path: string): number {
    return this.#counts.get(path) ?? 0;
  }

  /** Requests per path. */
  counts(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }

  /** Forgets every request and counter. */
  clear(): void {
    this.#entries = [];
    this.#counts.clear();
  }
}
