/**
 * What an interceptor answers (`@interceptor("topic", priority)`): let the message go on
 * (optionally rewritten), answer it here and stop the chain (Final), or refuse it (Deny).
 * A `void` interceptor always continues.
 */
import { JSON } from "json-as";

/** An interceptor's verdict. */
export class Intercept {
  /** `"continue"`, `"final"` or `"deny"`. */
  readonly action: string;
  /** JSON text: the rewritten payload (continue) or the reply (final); null for none. */
  readonly json: string | null;
  /** Why it was denied (deny). */
  readonly reason: string;

  private constructor(action: string, json: string | null, reason: string) {
    this.action = action;
    this.json = json;
    this.reason = reason;
  }

  /** Continue with the message unchanged. */
  static next(): Intercept {
    return new Intercept("continue", null, "");
  }

  /** Continue with `payload` (serialised as JSON) in place of the message's payload. */
  static rewrite<T>(payload: T): Intercept {
    return new Intercept("continue", JSON.stringify<T>(payload), "");
  }

  /** Answer the message with `reply` (serialised as JSON); later interceptors do not run. */
  static final<T>(reply: T): Intercept {
    return new Intercept("final", JSON.stringify<T>(reply), "");
  }

  /** Answer the message with no reply payload; later interceptors do not run. */
  static finalEmpty(): Intercept {
    return new Intercept("final", null, "");
  }

  /** Refuse the message with `reason` (shown to the publisher and audited). */
  static deny(reason: string): Intercept {
    return new Intercept("deny", null, reason);
  }

  /** The reply body the kernel decodes (`docs/capsule_runtime.md`). */
  toJson(): string {
    if (this.action == "deny") {
      return '{"action":"deny","reason":' + JSON.stringify<string>(this.reason) + "}";
    }
    const json = this.json;
    if (json === null) return '{"action":"' + this.action + '"}';
    const key = this.action == "final" ? "reply" : "payload";
    return '{"action":"' + this.action + '","' + key + '":' + json + "}";
  }
}
