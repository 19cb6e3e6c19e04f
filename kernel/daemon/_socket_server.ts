/**
 * The accept loop of `run/system.sock`: one {@link ClientConnection} per accepted socket, up to
 * a maximum (past it, a `TOO_MANY_CONNECTIONS` error frame and close), and the closing of all
 * of them at shutdown.
 *
 * @module
 */
import type { DaemonLog } from "./_daemon_log.ts";
import { ClientConnection, type ConnectionHost } from "./_connection.ts";
import { encodeFrame } from "./frame_codec.ts";
import { WireCode } from "./protocol.ts";

/** How long shutdown waits for connections to finish after their `bye`. */
const DRAIN_TIMEOUT_MS = 2_000;

/** Serves the socket. */
export class SocketServer {
  readonly #listener: Deno.Listener;
  readonly #host: ConnectionHost;
  readonly #log: DaemonLog;
  readonly #max: number;
  readonly #connections = new Map<ClientConnection, Promise<void>>();
  #accepting: Promise<void> | undefined;
  #stopped = false;
  #seq = 0;

  /** Serves `listener` with `host`, at most `maxConnections` at once. */
  constructor(
    listener: Deno.Listener,
    host: ConnectionHost,
    options: { log: DaemonLog; maxConnections: number },
  ) {
    this.#listener = listener;
    this.#host = host;
    this.#log = options.log;
    this.#max = options.maxConnections;
  }

  /** Open connections, authenticated or not. */
  get size(): number {
    return this.#connections.size;
  }

  /** Starts accepting. */
  start(): void {
    this.#accepting = this.#acceptLoop();
  }

  /** Stops accepting (closing the listener removes the socket file). Idempotent. */
  async stopAccepting(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    await this.#accepting;
  }

  /** Says `bye` to every connection and waits (bounded) for them to end. */
  async closeAll(reason: string): Promise<void> {
    await this.stopAccepting();
    const runs = [...this.#connections.values()];
    await Promise.all([...this.#connections.keys()].map((c) => c.bye(reason)));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(runs),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, DRAIN_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
  }

  async #acceptLoop(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (!this.#stopped) {
          this.#log.error("Accept failed; the socket is closed", { error: String(err) });
        }
        return;
      }
      if (this.#stopped) {
        conn.close();
        return;
      }
      if (this.#connections.size >= this.#max) {
        void refuse(conn, this.#max);
        this.#log.warn("Refused a connection: too many", { limit: this.#max });
        continue;
      }
      const c = new ClientConnection(conn, `c-${++this.#seq}`, this.#host);
      const run = c.run().catch((err) => {
        this.#log.error("Connection failed", { connection: c.id, error: String(err) });
      }).finally(() => this.#connections.delete(c));
      this.#connections.set(c, run);
    }
  }
}

async function refuse(conn: Deno.Conn, limit: number): Promise<void> {
  try {
    await conn.write(encodeFrame({
      type: "error",
      code: WireCode.TOO_MANY_CONNECTIONS,
      message: `The daemon serves at most ${limit} connections`,
      data: { limit },
    }));
  } catch {
    // The peer left.
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}
