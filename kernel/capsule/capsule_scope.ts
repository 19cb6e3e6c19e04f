/**
 * Where a loaded capsule came from and whose messages it serves.
 *
 * | scope | installed in | serves | bus source name (key) |
 * | --- | --- | --- | --- |
 * | `system` | `home/default/.local/capsules/` (the operator's) | every principal, except one that installed its own capsule of the same name | `<name>` |
 * | `principal` | `home/{p}/.local/capsules/` | principal `p` only | `<name>@<p>` |
 * | `workspace` | `<workspace>/.astrid/capsules/` (trusted ones only) | messages stamped with that `workspace_id`, of any principal without its own capsule of the name | `<name>#<workspace-id>` |
 *
 * The key is unique across scopes, so each loaded copy has its own ACL; the capsule's KV
 * namespace stays `{principal}:capsule:{name}` whatever the scope. System and workspace
 * capsules act as `default` (the operator, who installed or trusted them) when nothing else
 * names a principal (run loops, cron).
 *
 * @module
 */
import type { BusMessage } from "../events/mod.ts";
import { DEFAULT_PRINCIPAL, type PrincipalId } from "../identity/mod.ts";
import { messageScope } from "./capsule_dispatch.ts";

/** The kinds of scope, most trusted first. */
export type ScopeKind = "system" | "principal" | "workspace";

/** A scope of loaded capsules. */
export interface CapsuleScopeRef {
  /** Its kind. */
  readonly kind: ScopeKind;
  /** The owning principal: `default` for `system` and `workspace`. */
  readonly principal: PrincipalId;
  /** The workspace id, for `workspace`. */
  readonly workspaceId?: string;
  /** The workspace root (absolute), for `workspace`. */
  readonly workspaceRoot?: string;
}

/** The system scope: the operator's capsules. */
export const SYSTEM_SCOPE: CapsuleScopeRef = Object.freeze({
  kind: "system",
  principal: DEFAULT_PRINCIPAL,
});

/** A stable id of `scope`: `system`, `principal:<p>`, `workspace:<id>`. */
export function scopeId(scope: CapsuleScopeRef): string {
  switch (scope.kind) {
    case "system":
      return "system";
    case "principal":
      return `principal:${scope.principal}`;
    case "workspace":
      return `workspace:${scope.workspaceId}`;
  }
}

/** The key (bus source name) of capsule `name` loaded in `scope`. */
export function capsuleKey(name: string, scope: CapsuleScopeRef): string {
  switch (scope.kind) {
    case "system":
      return name;
    case "principal":
      return `${name}@${scope.principal}`;
    case "workspace":
      return `${name}#${scope.workspaceId}`;
  }
}

/** True when `scope` is visible to `principal` (listings, commands, static content). */
export function scopeVisibleTo(scope: CapsuleScopeRef, principal: string): boolean {
  return scope.kind !== "principal" || scope.principal === principal;
}

/**
 * True when a capsule of `scope` handles `msg`: a system capsule unless the message's
 * principal has its own capsule of that name (`shadowed`), a principal capsule for its
 * principal, a workspace capsule for messages of its workspace (unless `shadowed`).
 */
export function scopeServes(
  scope: CapsuleScopeRef,
  msg: BusMessage,
  shadowed: (principal: string) => boolean,
): boolean {
  switch (scope.kind) {
    case "system":
      return !shadowed(msg.principal);
    case "principal":
      return msg.principal === scope.principal;
    case "workspace":
      return messageScope(msg).workspaceId === scope.workspaceId && !shadowed(msg.principal);
  }
}
