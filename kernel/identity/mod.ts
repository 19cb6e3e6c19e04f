/**
 * Identity: principal ids now; the identity store (links between outside users and
 * principals) arrives with the daemon.
 *
 * @module
 */
export { DEFAULT_PRINCIPAL, isPrincipalId, principalId, type PrincipalId } from "./principal.ts";
