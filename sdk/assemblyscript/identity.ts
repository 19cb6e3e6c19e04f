/**
 * Outside identities linked to principals (a Discord user acting as principal `alice`).
 * Needs `[capabilities] identity = "resolve" | "link" | "admin"`; acting on another principal
 * (and creating users) is `admin` and always asks a human. Errors: `DENIED`, `NOT_FOUND`,
 * `CONFLICT`, `TIMEOUT`, `UNAVAILABLE`.
 */
import {
  identity_create_user, identity_link, identity_list_links, identity_resolve, identity_unlink,
} from "./internal/abi";
import { Request } from "./internal/request";
import { Reply } from "./internal/reply";
import { arrayItems, ObjectScan, quote } from "./internal/scan";
import { Result } from "./result";

/** A link: an outside user acts as a principal. */
export class IdentityLink {
  /** The outside platform (`discord`). */
  platform: string = "";
  /** The platform's id of the user. */
  platformUserId: string = "";
  /** The principal the user acts as. */
  principal: string = "";
  /** When it was linked, ms since the epoch. */
  linkedAt: f64 = 0;
  /** Who linked it (`capsule:…`, `operator`). */
  linkedBy: string = "";

  /** Reads a link's JSON. */
  static parse(text: string): IdentityLink {
    const o = new ObjectScan(text);
    const l = new IdentityLink();
    const platform = o.str("platform");
    if (platform !== null) l.platform = platform;
    const user = o.str("platform_user_id");
    if (user !== null) l.platformUserId = user;
    const principal = o.str("principal");
    if (principal !== null) l.principal = principal;
    l.linkedAt = o.num("linked_at");
    const by = o.str("linked_by");
    if (by !== null) l.linkedBy = by;
    return l;
  }
}

/** A principal's record. */
export class PrincipalRecord {
  /** The principal id. */
  id: string = "";
  /** When it was created, ms since the epoch. */
  createdAt: f64 = 0;
  /** How it was created. */
  createdBy: string = "";
  /** A name to show, if any. */
  displayName: string | null = null;
}

function two(a: string, b: string): Request {
  return Request.reset().str(a).str(b);
}

/** The principal `platformUserId` on `platform` acts as (`NOT_FOUND` when not linked). */
export function resolve(platform: string, platformUserId: string): Result<IdentityLink> {
  const req = two(platform, platformUserId);
  const reply = Reply.of(identity_resolve(req.ptr, req.len));
  if (!reply.ok) return reply.fail<IdentityLink>("identity.resolve");
  return Result.ok<IdentityLink>(IdentityLink.parse(reply.text()));
}

/** Links an outside user to `principal` (empty: the calling principal); true when new. */
export function link(platform: string, platformUserId: string, principal: string = ""): Result<bool> {
  const req = two(platform, platformUserId).str(principal);
  const reply = Reply.of(identity_link(req.ptr, req.len));
  if (!reply.ok) return reply.fail<bool>("identity.link");
  return Result.ok<bool>(new ObjectScan(reply.text()).bool("created"));
}

/** Removes an outside user's link; answers the link removed. */
export function unlink(platform: string, platformUserId: string): Result<IdentityLink> {
  const req = two(platform, platformUserId);
  const reply = Reply.of(identity_unlink(req.ptr, req.len));
  if (!reply.ok) return reply.fail<IdentityLink>("identity.unlink");
  return Result.ok<IdentityLink>(IdentityLink.parse(reply.text()));
}

/** Creates a principal (`admin`; always asked of a human). */
export function createUser(id: string = "", displayName: string = ""): Result<PrincipalRecord> {
  let json = "{";
  if (id.length > 0) json += '"id":' + quote(id);
  if (displayName.length > 0) json += (id.length > 0 ? "," : "") + '"display_name":' + quote(displayName);
  json += "}";
  const req = Request.reset().str(json);
  const reply = Reply.of(identity_create_user(req.ptr, req.len));
  if (!reply.ok) return reply.fail<PrincipalRecord>("identity.createUser");
  const o = new ObjectScan(reply.text());
  const r = new PrincipalRecord();
  const rid = o.str("id");
  if (rid !== null) r.id = rid;
  r.createdAt = o.num("created_at");
  const by = o.str("created_by");
  if (by !== null) r.createdBy = by;
  r.displayName = o.str("display_name");
  return Result.ok<PrincipalRecord>(r);
}

/** The links of `principal` (empty: the caller; `"*"`: everyone, `admin`). */
export function listLinks(principal: string = ""): Result<IdentityLink[]> {
  const req = Request.reset().str(principal);
  const reply = Reply.of(identity_list_links(req.ptr, req.len));
  if (!reply.ok) return reply.fail<IdentityLink[]>("identity.listLinks");
  return Result.ok<IdentityLink[]>(arrayItems(reply.text()).map<IdentityLink>((s) => IdentityLink.parse(s)));
}
