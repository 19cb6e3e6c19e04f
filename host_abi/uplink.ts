/**
 * The `uplink` host functions and the kernel's uplink registry. An uplink is a capsule that
 * bridges an outside frontend (a chat app, a socket) to the bus: it registers each frontend it
 * serves (`uplink_register`, one per `[[uplink]]` of its manifest), then injects user turns
 * (`uplink_send`) as `user.v1.prompt` for the principal the identity store links to the
 * outside user. The kernel — {@link UplinkRegistry} — resolves that principal and stamps it;
 * the uplink never names one, and a `principal` field in its payload is dropped.
 *
 * Reads: the manifest's `[[uplink]]` entries, the identity store's links. Writes: the registry,
 * a `user.v1.prompt` message. Fails with `DENIED` (no `uplink` capability, `user.v1.prompt`
 * not in `[publish]`), `NOT_FOUND` (undeclared or unregistered uplink, an outside user linked
 * to no principal), `CONFLICT` (another capsule registered that name), `INVALID_ARGUMENT`.
 *
 * @module
 */
import type { Clock } from "../kernel/clock.ts";
import type {
  JsonValue,
  PayloadInput,
  PublishOptions,
  PublishResult,
} from "../kernel/events/mod.ts";
import type { IdentityLink, OutsideIdentity, PrincipalId } from "../kernel/identity/mod.ts";
import {
  defineHostFunction,
  type HostCallContext,
  type HostFunctionRow,
  serviceKey,
} from "./host_function.ts";
import { hostErrorFromBus, jsonBody, optionalObject, parseJsonField } from "./ipc.ts";
import { HostCallError, HostStatus } from "./status.ts";

/** The topic an uplink's user turns are published on. */
export const USER_PROMPT_TOPIC = "user.v1.prompt";
/** What a guest-chosen session suffix must match (it is prefixed `uplink.<name>.`). */
export const UPLINK_SESSION_RE: RegExp = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,54}$/;
const NAME_RE = /^[a-z0-9][a-z0-9-]{0,63}$/;
const PLATFORM_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** A registered uplink. */
export interface UplinkRegistration {
  /**
   * The capsule serving it, by its bus source name (the capsule's key, under which the bus
   * holds its ACL: the name, or `name@principal…` for a per-principal install).
   */
  readonly capsule: string;
  /** Its name (an `[[uplink]]` name of that capsule). */
  readonly name: string;
  /** The outside platform, e.g. `discord`. */
  readonly platform: string;
  /** `human` or `bridge`. */
  readonly profile: string;
  /** When it was registered, ms since the epoch. */
  readonly registered_at: number;
}

/** One user turn an uplink injects. */
export interface UplinkTurn {
  /** The capsule sending it, by its bus source name (as registered). */
  readonly capsule: string;
  /** The registered uplink it comes through. */
  readonly uplink: string;
  /** The outside user's id on the uplink's platform. */
  readonly platformUserId: string;
  /** The prompt payload (a JSON object; `session`, `uplink` and `principal` are set by the kernel). */
  readonly payload: Readonly<Record<string, JsonValue>>;
  /** A session suffix ({@link UPLINK_SESSION_RE}); default one derived from the outside user. */
  readonly session?: string;
  /** Correlation id of the turn. */
  readonly requestId?: string;
}

/** What {@link UplinkService.send} did. */
export interface UplinkSendResult {
  /** The published message's id. */
  readonly id: string;
  /** The principal the turn was stamped with (from the identity store). */
  readonly principal: string;
  /** The session the turn belongs to (`uplink.<name>.<suffix>`). */
  readonly session: string;
  /** `delivered` or `final` (an interceptor answered). */
  readonly outcome: "delivered" | "final";
}

/** The kernel's uplink service, as the `uplink_*` host functions use it. */
export interface UplinkService {
  /** Registers (or re-registers) an uplink of `reg.capsule`; throws `CONFLICT` when another capsule holds the name. */
  register(reg: Omit<UplinkRegistration, "registered_at">): UplinkRegistration;
  /** Injects one user turn for the principal linked to the outside user. */
  send(turn: UplinkTurn): Promise<UplinkSendResult>;
}

/** The key the registry provides the {@link UplinkService} under. */
export const UPLINK_SERVICE = serviceKey<UplinkService>("uplinks");

/** What the registry needs of the bus: a kernel-side publish with a chosen context. */
export interface UplinkBus {
  /** Publishes `data` on `topic` with `options.ctx`. */
  publish(topic: string, data: PayloadInput, options: PublishOptions): Promise<PublishResult>;
}

/** What the registry needs of the identity store. */
export interface UplinkIdentity {
  /** The link of `outside`, or null. */
  resolve(outside: OutsideIdentity): Promise<IdentityLink | null>;
}

/** Options of {@link UplinkRegistry}. */
export interface UplinkRegistryOptions {
  /** Resolves outside users to principals. */
  identity: UplinkIdentity;
  /** Stamps `registered_at`. */
  clock: Clock;
}

/**
 * The kernel's registry of uplinks: who serves which frontend, and the one place a user turn
 * from outside gets its principal. Publishes with source `{ kind: "uplink", name: <capsule> }`,
 * so the bus checks the capsule's `[publish]` list as for any capsule.
 */
export class UplinkRegistry implements UplinkService {
  readonly #bus: UplinkBus;
  readonly #identity: UplinkIdentity;
  readonly #clock: Clock;
  readonly #uplinks = new Map<string, UplinkRegistration>();

  /** Creates an empty registry publishing on `bus`. */
  constructor(bus: UplinkBus, options: UplinkRegistryOptions) {
    this.#bus = bus;
    this.#identity = options.identity;
    this.#clock = options.clock;
  }

  /** Registers `reg`; the same capsule registering again replaces its entry. */
  register(reg: Omit<UplinkRegistration, "registered_at">): UplinkRegistration {
    const held = this.#uplinks.get(reg.name);
    if (held !== undefined && held.capsule !== reg.capsule) {
      throw new HostCallError(
        HostStatus.CONFLICT,
        `Uplink "${reg.name}" is already registered by capsule "${held.capsule}"`,
      );
    }
    const entry: UplinkRegistration = { ...reg, registered_at: this.#clock.now() };
    this.#uplinks.set(reg.name, entry);
    return entry;
  }

  /** The registration of uplink `name`, or undefined. */
  get(name: string): UplinkRegistration | undefined {
    return this.#uplinks.get(name);
  }

  /** Every registration, by name. */
  list(): UplinkRegistration[] {
    return [...this.#uplinks.values()].sort((a, b) => a.name < b.name ? -1 : 1);
  }

  /** Forgets every uplink of `capsule` (it unloaded); returns how many. */
  unregisterCapsule(capsule: string): number {
    let n = 0;
    for (const [name, reg] of this.#uplinks) {
      if (reg.capsule === capsule) {
        this.#uplinks.delete(name);
        n++;
      }
    }
    return n;
  }

  /**
   * Publishes `turn` as `user.v1.prompt` for the principal linked to the outside user. Throws
   * `NOT_FOUND` for an unregistered uplink or an unlinked user, `DENIED` when the capsule's
   * `[publish]` list does not cover the topic or an interceptor denies it.
   */
  async send(turn: UplinkTurn): Promise<UplinkSendResult> {
    const reg = this.#uplinks.get(turn.uplink);
    if (reg === undefined || reg.capsule !== turn.capsule) {
      throw new HostCallError(
        HostStatus.NOT_FOUND,
        `Uplink "${turn.uplink}" is not registered by capsule "${turn.capsule}": call uplink_register first`,
      );
    }
    const outside = { platform: reg.platform, platform_user_id: turn.platformUserId };
    let link: IdentityLink | null;
    try {
      link = await this.#identity.resolve(outside);
    } catch (err) {
      throw new HostCallError(HostStatus.INVALID_ARGUMENT, (err as Error).message, {
        field: "platform_user_id",
        cause: err,
      });
    }
    if (link === null) {
      throw new HostCallError(
        HostStatus.NOT_FOUND,
        `Outside user "${reg.platform}:${
          cut(turn.platformUserId)
        }" is not linked to a principal: ` +
          `link it first (identity_link, or ask an operator)`,
      );
    }
    const session = `uplink.${reg.name}.${turn.session ?? await defaultSuffix(outside)}`;
    const { principal: _dropped, ...rest } = turn.payload;
    const payload: Record<string, JsonValue> = {
      ...rest,
      session,
      uplink: { name: reg.name, platform: reg.platform, platform_user_id: turn.platformUserId },
    };
    let result: PublishResult;
    try {
      result = await this.#bus.publish(USER_PROMPT_TOPIC, payload, {
        ctx: {
          principal: link.principal as PrincipalId,
          source: { kind: "uplink", name: reg.capsule },
        },
        request_id: turn.requestId,
      });
    } catch (err) {
      throw hostErrorFromBus(err);
    }
    if (result.outcome === "denied") {
      throw new HostCallError(
        HostStatus.DENIED,
        `User turn was denied by "${result.by}": ${result.reason}`,
      );
    }
    return { id: result.message.id, principal: link.principal, session, outcome: result.outcome };
  }
}

function cut(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}

async function defaultSuffix(outside: OutsideIdentity): Promise<string> {
  const bytes = new TextEncoder().encode(`${outside.platform}:${outside.platform_user_id}`);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The calling capsule's bus source name (its key): what its ACL is held under. */
function busName(call: HostCallContext): string {
  return call.services.bus.ctx.source.name;
}

function uplinks(call: HostCallContext): UplinkService {
  return call.services.get(UPLINK_SERVICE);
}

/** Arguments of `uplink_register`. */
export interface RegisterArgs {
  /** The `[[uplink]]` name. */
  readonly name: string;
  /** Its platform (must match the manifest). */
  readonly platform: string;
}

/**
 * `uplink_register(name, platform)`: registers one of the capsule's `[[uplink]]` frontends;
 * answers the registration (JSON).
 */
export const uplinkRegister: HostFunctionRow = defineHostFunction<RegisterArgs>({
  name: "uplink_register",
  subsystem: "uplink",
  doc: "Registers an outside frontend this uplink capsule serves (an [[uplink]] of its manifest)",
  capabilities: ["uplink"],
  parse(req) {
    const name = req.string("name");
    const platform = req.string("platform");
    req.end();
    if (!NAME_RE.test(name)) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Invalid uplink name "${cut(name)}": use 1 to 64 characters of a-z, 0-9 and "-"`,
        { field: "name" },
      );
    }
    if (!PLATFORM_RE.test(platform)) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Invalid platform "${cut(platform)}": use 1 to 32 characters of a-z, 0-9, "_" and "-"`,
        { field: "platform" },
      );
    }
    return { name, platform };
  },
  gate: () => ({ capability: "uplink" }),
  run(args, call) {
    const declared = call.manifest.uplink.find((u) => u.name === args.name);
    if (declared === undefined) {
      return Promise.reject(
        new HostCallError(
          HostStatus.NOT_FOUND,
          `Capsule "${call.capsule}" declares no [[uplink]] named "${args.name}": add it to Capsule.toml`,
        ),
      );
    }
    if (declared.platform !== args.platform) {
      return Promise.reject(
        new HostCallError(
          HostStatus.INVALID_ARGUMENT,
          `Uplink "${args.name}" is declared with platform "${declared.platform}", not "${args.platform}"`,
          { field: "platform" },
        ),
      );
    }
    try {
      const reg = uplinks(call).register({
        capsule: busName(call),
        name: args.name,
        platform: args.platform,
        profile: declared.profile,
      });
      return Promise.resolve(jsonBody(reg));
    } catch (err) {
      return Promise.reject(err);
    }
  },
});

/** Arguments of `uplink_send`. */
export interface SendArgs {
  /** The registered uplink. */
  readonly uplink: string;
  /** The outside user's platform id. */
  readonly platformUserId: string;
  /** The prompt payload. */
  readonly payload: Readonly<Record<string, JsonValue>>;
  /** Session suffix. */
  readonly session?: string;
  /** Correlation id. */
  readonly requestId?: string;
}

/**
 * `uplink_send(uplink, platform_user_id, payload, options?)`: injects a user turn
 * (`user.v1.prompt`) for the principal linked to the outside user; answers
 * `{ id, principal, session, outcome }` (JSON).
 */
export const uplinkSend: HostFunctionRow = defineHostFunction<SendArgs>({
  name: "uplink_send",
  subsystem: "uplink",
  doc: "Injects a user turn from an outside user; the kernel stamps the linked principal",
  capabilities: ["uplink", "publish"],
  parse(req) {
    const uplink = req.string("uplink");
    const platformUserId = req.string("platform_user_id");
    const payload = parseJsonField(req.string("payload"), "payload");
    const options = optionalObject(req, "options");
    req.end();
    if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Field "payload" must be a JSON object`,
        {
          field: "payload",
        },
      );
    }
    const session = options.session;
    if (
      session !== undefined && (typeof session !== "string" || !UPLINK_SESSION_RE.test(session))
    ) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Option "session" must be 1 to 55 characters of A-Z, a-z, 0-9, "_", "." and "-"`,
        { field: "options" },
      );
    }
    const requestId = options.request_id;
    if (
      requestId !== undefined &&
      (typeof requestId !== "string" || requestId.length === 0 || requestId.length > 128)
    ) {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Option "request_id" must be a string of 1 to 128 characters`,
        { field: "options" },
      );
    }
    return {
      uplink,
      platformUserId,
      payload: payload as Readonly<Record<string, JsonValue>>,
      session: session as string | undefined,
      requestId: requestId as string | undefined,
    };
  },
  gate: () => [{ capability: "uplink" }, { capability: "publish", target: USER_PROMPT_TOPIC }],
  async run(args, call) {
    const result = await uplinks(call).send({
      capsule: busName(call),
      uplink: args.uplink,
      platformUserId: args.platformUserId,
      payload: args.payload,
      session: args.session,
      requestId: args.requestId,
    });
    return jsonBody(result);
  },
});

/** The `uplink` rows, in table order. */
export const UPLINK_FUNCTIONS: readonly HostFunctionRow[] = [uplinkRegister, uplinkSend];
