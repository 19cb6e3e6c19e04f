/**
 * The dispatcher: the one `HostHandler` the WebAssembly engine calls for every kernel-routed
 * host call. For each call it
 *
 * 1. looks the function up in the table (unknown or pending → `UNSUPPORTED`);
 * 2. builds the {@link HostCallContext} with the registry's `resolveContext` (the principal
 *    comes from the invocation context, never from the guest);
 * 3. `parse`s the request, applies the `ManifestSecurityGate` to what the row's `gate`
 *    names (a denial is audited, then answered `DENIED`), and `run`s the row;
 * 4. encodes the reply: the OK body, a `HostCallError`'s status and message, or — for
 *    anything else — `INTERNAL` with a generic message while the details go to `onError`.
 *
 * No row can skip the gate: rows never call it themselves.
 *
 * @example
 * ```ts ignore
 * const engine = new WasmEngine({
 *   hostFunctions: hostFunctionSpecs(),
 *   handler: createHostHandler((call) => registry.hostContext(call)),
 * });
 * ```
 *
 * @module
 */
import type {
  HostCall,
  HostHandler,
  InvocationContext,
} from "../kernel/capsule/engine/wasm/mod.ts";
import { encodeReply, RequestReader } from "./encoding.ts";
import { HostAbiError } from "./errors.ts";
import { ManifestSecurityGate } from "./gate.ts";
import type { HostCallContext, HostFunctionRow, HostResult } from "./host_function.ts";
import { HostCallError, HostStatus } from "./status.ts";
import { HOST_TABLE } from "./table.ts";

/** Builds the context of one call (the capsule registry's job). */
export type ResolveHostContext<C extends InvocationContext> = (
  call: HostCall<C>,
  fn: string,
) => HostCallContext | Promise<HostCallContext>;

/** Receives an unexpected failure (answered `INTERNAL`) or a failed audit append. */
export type HostErrorReporter = (
  error: unknown,
  fn: string,
  call: { capsule: string; principal?: string; requestId?: string },
) => void;

/** Options of {@link createHostHandler}. */
export interface HostHandlerOptions {
  /** The rows served (default: the table, {@link HOST_TABLE}). */
  table?: readonly HostFunctionRow[];
  /** Receives unexpected errors with their details (default: `console.error`). */
  onError?: HostErrorReporter;
}

const EMPTY = new Uint8Array(0);

const defaultReporter: HostErrorReporter = (error, fn, call) =>
  console.error(`Host function "astrid.${fn}" failed for capsule "${call.capsule}":`, error);

/** Creates the engine's host handler over the table and the registry's context resolver. */
export function createHostHandler<C extends InvocationContext>(
  resolveContext: ResolveHostContext<C>,
  options: HostHandlerOptions = {},
): HostHandler<C> {
  const rows = new Map((options.table ?? HOST_TABLE).map((row) => [row.name, row]));
  const report = options.onError ?? defaultReporter;
  return async (fn, request, call) => {
    const row = rows.get(fn);
    if (row === undefined) {
      return encodeReply(
        HostStatus.UNSUPPORTED,
        `Host function "astrid.${fn}" is not supported by this kernel`,
      );
    }
    let context: HostCallContext | undefined;
    try {
      context = await resolveContext(call, fn);
      const body = await dispatch(row, request, context, (err) =>
        report(err, fn, {
          capsule: call.capsule,
          principal: context?.principal,
          requestId: context?.requestId,
        }));
      return encodeReply(HostStatus.OK, body ?? EMPTY);
    } catch (err) {
      if (err instanceof HostCallError) return encodeReply(err.status, err.message);
      if (call.signal.aborted) {
        return encodeReply(HostStatus.CANCELLED, `Host function "astrid.${fn}" was cancelled`);
      }
      report(err, fn, {
        capsule: call.capsule,
        principal: context?.principal ?? call.context.principal,
        requestId: context?.requestId ?? call.context.requestId,
      });
      return encodeReply(
        HostStatus.INTERNAL,
        `Host function "astrid.${fn}" failed unexpectedly; details are in the kernel log`,
      );
    }
  };
}

/** Parse → gate → run for one row; throws `HostCallError` for every expected failure. */
async function dispatch(
  row: HostFunctionRow,
  request: Uint8Array,
  call: HostCallContext,
  onAuditError: (error: unknown) => void,
): Promise<HostResult> {
  if (call.signal.aborted) {
    throw new HostCallError(
      HostStatus.CANCELLED,
      `Host function "astrid.${row.name}" was cancelled`,
    );
  }
  const args = await row.parse(new RequestReader(request), call);
  const spec = await row.gate(args, call);
  let gate: ManifestSecurityGate;
  try {
    gate = ManifestSecurityGate.for(call.manifest);
  } catch (err) {
    // A manifest entry the gate cannot compile grants nothing (the registry should have
    // compiled it at load and refused the capsule).
    if (err instanceof HostAbiError) throw new HostCallError(HostStatus.DENIED, err.message);
    throw err;
  }
  await gate.enforce(spec, call, { fn: row.name, onAuditError });
  return await row.run(args, call);
}
