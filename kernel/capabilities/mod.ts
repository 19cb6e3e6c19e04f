/**
 * Capabilities: glob patterns over resources, ed25519-signed capability tokens (their fields,
 * canonical signed bytes, JSON form, minting and verification) and the per-principal token
 * store whose cached lookup is the security pipeline's token layer. Deciding when to mint or
 * consult a token belongs to `security/`; recording why belongs to `audit/`; keys to `crypto/`.
 * See `docs/capabilities.md`.
 *
 * @module
 */
export { compileGlob, escapeGlob, Glob, GLOB_LIMITS, globCacheStats, matchGlob } from "./glob.ts";
export {
  type CapabilityToken,
  checkTokenTime,
  type MintFields,
  type MintOptions,
  mintToken,
  type Permission,
  PERMISSIONS,
  TOKEN_LIMITS,
  TOKEN_SCOPES,
  TOKEN_VERSION,
  type TokenRequest,
  type TokenScope,
  type UnsignedToken,
  validateToken,
  type VerifyOptions,
  verifyToken,
} from "./token.ts";
export { CAPABILITY_TAG, encodeTokenBody } from "./token_encoding.ts";
export { MAX_TOKEN_JSON_LENGTH, parseToken, serializeToken } from "./token_json.ts";
export { type Revocation, TokenStore, type TokenStoreOptions } from "./token_store.ts";
export { CapabilityCode, CapabilityError, type CapabilityErrorData } from "./errors.ts";
