/**
 * The `identity_*` host functions: who an outside user is (`identity_resolve`), linking and
 * unlinking outside identities (`platform` + `platform_user_id`) to principals, creating
 * principals, and listing links — over the kernel's identity store ({@link IDENTITY_SERVICE}).
 *
 * Levels (`[capabilities] identity`, `admin` > `link` > `resolve`):
 *
 * | function                | needs                                                                  |
 * | ----------------------- | ---------------------------------------------------------------------- |
 * | `identity_resolve`      | `resolve`                                                              |
 * | `identity_list_links`   | `resolve` for the calling principal's links; `admin` for another's/all |
 * | `identity_link`         | `link` to link to the calling principal; `admin` for another principal |
 * | `identity_unlink`       | `link` when linked to the calling principal; `admin` otherwise         |
 * | `identity_create_user`  | `admin`                                                                |
 *
 * An `admin`-level call is a widening action: after the manifest gate it goes through the
 * security pipeline as `identity.admin` (`services.security.authorize`), which always asks a
 * human (only Allow Once or Deny; never a mode, a token or `--yes`) and audits the answer.
 *
 * Reads and writes: the identity store (namespace `system:identity`). Fails with `DENIED`
 * (level missing, or the human denied), `NOT_FOUND` (not linked, unknown principal),
 * `CONFLICT` (linked to another principal, id taken), `INVALID_ARGUMENT`, `TIMEOUT` (no answer
 * in time), `UNAVAILABLE` (no identity store in this kernel).
 *
 * @module
 */
import { AstridError } from "../kernel/errors.ts";
import {
  checkOutside,
  type CreateUserOptions,
  type IdentityLink,
  isPrincipalId,
  type LinkOptions,
  type LinkResult,
  type ListLinksOptions,
  type OutsideIdentity,
  type PrincipalRecord,
  type UnlinkOptions,
} from "../kernel/identity/mod.ts";
import type { RequestReader } from "./encoding.ts";
import {
  actionBase,
  authorizeOrThrow,
  defineHostFunction,
  type GateSpec,
  type HostCallContext,
  type HostFunctionRow,
  serviceKey,
} from "./host_function.ts";
import { jsonBody, optionalObject } from "./ipc.ts";
import { HostCallError, HostStatus } from "./status.ts";

/** The most links `identity_list_links` answers. */
export const MAX_LIST_LINKS = 1000;

/** What the identity functions need of the identity store (structurally `IdentityStore`). */
export interface HostIdentityStore {
  /** The link of `outside`, or null. */
  resolve(outside: OutsideIdentity): Promise<IdentityLink | null>;
  /** Links `outside` to `principal`. */
  link(outside: OutsideIdentity, principal: string, options: LinkOptions): Promise<LinkResult>;
  /** Removes the link of `outside`. */
  unlink(outside: OutsideIdentity, options?: UnlinkOptions): Promise<IdentityLink>;
  /** Creates a principal. */
  createUser(options: CreateUserOptions): Promise<PrincipalRecord>;
  /** Lists links. */
  listLinks(options?: ListLinksOptions): Promise<IdentityLink[]>;
  /** The record of a principal, or null. */
  principal(id: string): Promise<PrincipalRecord | null>;
}

/** The key the registry provides the identity store under. */
export const IDENTITY_SERVICE = serviceKey<HostIdentityStore>("identity store");

const IDENTITY_STATUS: Readonly<Record<string, number>> = {
  IDENTITY_INVALID: HostStatus.INVALID_ARGUMENT,
  INVALID_ARGUMENT: HostStatus.INVALID_ARGUMENT,
  IDENTITY_PRINCIPAL_NOT_FOUND: HostStatus.NOT_FOUND,
  IDENTITY_LINK_NOT_FOUND: HostStatus.NOT_FOUND,
  IDENTITY_PRINCIPAL_EXISTS: HostStatus.CONFLICT,
  IDENTITY_LINK_CONFLICT: HostStatus.CONFLICT,
  IDENTITY_CONTENDED: HostStatus.UNAVAILABLE,
};

/** Runs `fn` on the identity store, turning its errors into the guest's statuses. */
async function viaStore<T>(call: HostCallContext, fn: (s: HostIdentityStore) => Promise<T>) {
  const store = call.services.get(IDENTITY_SERVICE);
  try {
    return await fn(store);
  } catch (err) {
    if (!(err instanceof AstridError)) throw err;
    const status = IDENTITY_STATUS[err.code];
    if (status === undefined) throw err;
    throw new HostCallError(status as HostStatus, err.message, { cause: err });
  }
}

/** Asks the security pipeline (a human) for an `identity.admin` operation. */
async function authorizeAdmin(
  call: HostCallContext,
  operation: string,
  target: string,
): Promise<void> {
  await authorizeOrThrow(call, {
    kind: "identity.admin",
    ...actionBase(call),
    operation,
    target,
  });
}

/** Reads and checks `platform`, `platform_user_id`; malformed is `INVALID_ARGUMENT`. */
function readOutside(req: RequestReader): OutsideIdentity {
  const outside = {
    platform: req.string("platform"),
    platform_user_id: req.string("platform_user_id"),
  };
  try {
    return checkOutside(outside);
  } catch (err) {
    throw new HostCallError(HostStatus.INVALID_ARGUMENT, (err as Error).message, { cause: err });
  }
}

/** Checks a principal id named in a request. */
function checkPrincipal(id: string, field: string): string {
  if (isPrincipalId(id)) return id;
  throw new HostCallError(
    HostStatus.INVALID_ARGUMENT,
    `Invalid principal id "${
      id.slice(0, 64)
    }": use 1 to 63 characters of a-z, 0-9, "_" or "-", starting with a letter or digit`,
    { field },
  );
}

/** Throws `NOT_FOUND` unless `principal` is recorded (checked before a human is asked). */
async function requirePrincipal(call: HostCallContext, principal: string): Promise<void> {
  if (await viaStore(call, (s) => s.principal(principal)) !== null) return;
  throw new HostCallError(
    HostStatus.NOT_FOUND,
    `Principal "${principal}" does not exist: create it first (identity_create_user)`,
  );
}

const label = (o: OutsideIdentity) => `${o.platform}:${o.platform_user_id}`;

/** `identity_resolve(platform, platform_user_id)`: the link (JSON); `NOT_FOUND` when none. */
export const identityResolve: HostFunctionRow = defineHostFunction<OutsideIdentity>({
  name: "identity_resolve",
  subsystem: "identity",
  doc: "Finds the principal an outside user (platform + user id) is linked to",
  capabilities: ["identity"],
  parse(req) {
    const outside = readOutside(req);
    req.end();
    return outside;
  },
  gate: () => ({ capability: "identity", level: "resolve" }),
  async run(outside, call) {
    const link = await viaStore(call, (s) => s.resolve(outside));
    if (link === null) {
      throw new HostCallError(
        HostStatus.NOT_FOUND,
        `Outside user "${label(outside).slice(0, 80)}" is not linked to a principal`,
      );
    }
    return jsonBody(link);
  },
});

/** Arguments of `identity_link`. */
export interface LinkArgs {
  /** The outside identity. */
  readonly outside: OutsideIdentity;
  /** The principal to link to (the caller's when the field is empty). */
  readonly principal: string;
  /** True when it is not the calling principal (an admin operation). */
  readonly admin: boolean;
}

/**
 * `identity_link(platform, platform_user_id, principal)`: links the outside user to
 * `principal` (empty: the calling principal); answers `{ link, created }` (JSON).
 */
export const identityLink: HostFunctionRow = defineHostFunction<LinkArgs>({
  name: "identity_link",
  subsystem: "identity",
  doc: "Links an outside user to the calling principal (link) or to another one (admin, asked)",
  capabilities: ["identity"],
  parse(req, call) {
    const outside = readOutside(req);
    const named = req.string("principal");
    req.end();
    const principal = named === "" ? call.principal : checkPrincipal(named, "principal");
    return { outside, principal, admin: principal !== call.principal };
  },
  gate: (args) => ({ capability: "identity", level: args.admin ? "admin" : "link" }),
  async run(args, call) {
    if (args.admin) {
      await requirePrincipal(call, args.principal);
      await authorizeAdmin(call, "link", `${label(args.outside)} as ${args.principal}`);
    }
    const result = await viaStore(
      call,
      (s) => s.link(args.outside, args.principal, { linkedBy: `capsule:${call.capsule}` }),
    );
    return jsonBody(result);
  },
});

/** Arguments of `identity_unlink`. */
export interface UnlinkArgs {
  /** The outside identity. */
  readonly outside: OutsideIdentity;
  /** Its current principal, read when the request was parsed (null: not linked). */
  readonly owner: string | null;
}

/**
 * `identity_unlink(platform, platform_user_id)`: removes the outside user's link; answers the
 * removed link (JSON).
 */
export const identityUnlink: HostFunctionRow = defineHostFunction<UnlinkArgs>({
  name: "identity_unlink",
  subsystem: "identity",
  doc: "Unlinks an outside user: from the calling principal (link) or another one (admin, asked)",
  capabilities: ["identity"],
  async parse(req, call) {
    const outside = readOutside(req);
    req.end();
    const link = await viaStore(call, (s) => s.resolve(outside));
    return { outside, owner: link?.principal ?? null };
  },
  gate: (args, call): GateSpec => ({
    capability: "identity",
    level: args.owner !== null && args.owner !== call.principal ? "admin" : "link",
  }),
  async run(args, call) {
    if (args.owner === null) {
      throw new HostCallError(
        HostStatus.NOT_FOUND,
        `Outside user "${label(args.outside).slice(0, 80)}" is not linked`,
      );
    }
    if (args.owner !== call.principal) {
      await authorizeAdmin(call, "unlink", `${label(args.outside)} from ${args.owner}`);
    }
    // Unlinks only if still linked to the principal the gate decided on.
    const removed = await viaStore(call, (s) => s.unlink(args.outside, { principal: args.owner! }));
    return jsonBody(removed);
  },
});

/** Arguments of `identity_create_user`. */
export interface CreateUserArgs {
  /** The id asked for, if any. */
  readonly id?: string;
  /** A name to show. */
  readonly displayName?: string;
}

/**
 * `identity_create_user(options)`: creates a principal (`{ id?, display_name? }`); answers its
 * record (JSON). Always an admin operation, asked of a human.
 */
export const identityCreateUser: HostFunctionRow = defineHostFunction<CreateUserArgs>({
  name: "identity_create_user",
  subsystem: "identity",
  doc: "Creates a principal (admin: a human approves every time)",
  capabilities: ["identity"],
  parse(req) {
    const options = optionalObject(req, "options");
    req.end();
    const { id, display_name } = options;
    if (id !== undefined && typeof id !== "string") {
      throw new HostCallError(HostStatus.INVALID_ARGUMENT, `Option "id" must be a string`, {
        field: "options",
      });
    }
    if (display_name !== undefined && typeof display_name !== "string") {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `Option "display_name" must be a string`,
        { field: "options" },
      );
    }
    if (id !== undefined) checkPrincipal(id, "options");
    return { id: id as string | undefined, displayName: display_name as string | undefined };
  },
  gate: () => ({ capability: "identity", level: "admin" }),
  async run(args, call) {
    await authorizeAdmin(call, "create_user", args.id ?? "a new principal");
    const record = await viaStore(
      call,
      (s) =>
        s.createUser({
          id: args.id,
          displayName: args.displayName,
          createdBy: `capsule:${call.capsule}`,
        }),
    );
    return jsonBody(record);
  },
});

/** Arguments of `identity_list_links`. */
export interface ListLinksArgs {
  /** Whose links: a principal id, or `*` for everyone's. */
  readonly principal: string;
  /** True unless it is the calling principal. */
  readonly admin: boolean;
}

/**
 * `identity_list_links(principal)`: links of `principal` (empty: the caller; `*`: everyone),
 * at most {@link MAX_LIST_LINKS}, as a JSON array.
 */
export const identityListLinks: HostFunctionRow = defineHostFunction<ListLinksArgs>({
  name: "identity_list_links",
  subsystem: "identity",
  doc: "Lists the calling principal's links (resolve), or another's or everyone's (admin, asked)",
  capabilities: ["identity"],
  parse(req, call) {
    const named = req.string("principal");
    req.end();
    const principal = named === "" || named === "*"
      ? (named === "" ? call.principal : "*")
      : checkPrincipal(named, "principal");
    return { principal, admin: principal !== call.principal };
  },
  gate: (args) => ({ capability: "identity", level: args.admin ? "admin" : "resolve" }),
  async run(args, call) {
    if (args.admin) {
      await authorizeAdmin(
        call,
        "list_links",
        args.principal === "*" ? "all principals" : args.principal,
      );
    }
    const links = await viaStore(call, (s) =>
      s.listLinks({
        principal: args.principal === "*" ? undefined : args.principal,
        limit: MAX_LIST_LINKS,
      }));
    return jsonBody(links);
  },
});

/** The `identity` rows, in table order. */
export const IDENTITY_FUNCTIONS: readonly HostFunctionRow[] = [
  identityResolve,
  identityLink,
  identityUnlink,
  identityCreateUser,
  identityListLinks,
];
