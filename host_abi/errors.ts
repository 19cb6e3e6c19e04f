/**
 * Errors of the host ABI raised to the kernel (not to guests: a guest sees a
 * `HostCallError` status, `status.ts`). They come from compiling a manifest's capabilities at
 * load and from building the table.
 *
 * @module
 */
import { AstridError } from "../kernel/errors.ts";

/** Codes raised by `host_abi/` to the kernel. */
export const HostAbiCode = {
  /** A `[capabilities]` entry cannot be compiled (a bad glob, a malformed VFS path or host); `data.capsule`, `data.field`, `data.value`. */
  HOST_ABI_BAD_CAPABILITY: "HOST_ABI_BAD_CAPABILITY",
  /** The table lists a function twice, or a row is malformed; `data.name`. */
  HOST_ABI_BAD_TABLE: "HOST_ABI_BAD_TABLE",
} as const;

/** A code of {@link HostAbiCode}. */
export type HostAbiCode = typeof HostAbiCode[keyof typeof HostAbiCode];

/** Structured detail of a {@link HostAbiError}. */
export interface HostAbiErrorData {
  /** The capsule concerned. */
  capsule?: string;
  /** The `[capabilities]` field concerned, e.g. `fs_read`. */
  field?: string;
  /** The offending value. */
  value?: string;
  /** The host function concerned. */
  name?: string;
}

/** Raised by the host ABI to the kernel. */
export class HostAbiError extends AstridError<HostAbiCode, HostAbiErrorData> {}
