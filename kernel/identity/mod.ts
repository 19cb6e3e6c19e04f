/**
 * Identity: principal ids, and the identity store — which principals exist (created on first
 * use or by `create_user`) and which outside identity (`platform` + `platform_user_id`, e.g.
 * `discord:12345`) acts as which principal, persisted in the store's `system:identity`
 * namespace. It leaves to others: who may link or create (the host ABI's identity levels and
 * the security pipeline's `identity.admin` approvals), and per-principal credentials (the
 * gateway). Importing it never loads a storage backend (only storage types are used).
 *
 * @module
 */
export { DEFAULT_PRINCIPAL, isPrincipalId, type PrincipalId, principalId } from "./principal.ts";
export {
  checkOutside,
  type CreateUserOptions,
  IDENTITY_NAMESPACE,
  type IdentityLink,
  IdentityStore,
  type IdentityStoreOptions,
  type LinkOptions,
  type LinkResult,
  type ListLinksOptions,
  MAX_PLATFORM_USER_ID_BYTES,
  type OutsideIdentity,
  parseOutsideIdentity,
  PLATFORM_RE,
  type PrincipalHomes,
  type PrincipalRecord,
  type UnlinkOptions,
} from "./identity_store.ts";
export { IdentityCode, IdentityError, type IdentityErrorData } from "./errors.ts";
