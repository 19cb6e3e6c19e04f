/**
 * `astrid capsule trust NAME [--yes]` and `astrid capsule untrust NAME`: the operator's decision
 * on a workspace capsule (`<workspace>/.astrid/capsules/<name>/`). A repository can carry
 * capsules of its author's choosing, so the daemon loads one only once the operator trusted
 * exactly that manifest and binary in exactly that workspace (`docs/capsule_runtime.md`).
 *
 * `trust` shows what would be trusted (name, version, engines, capabilities, the manifest's
 * BLAKE3 and the pinned wasm hash), asks in a terminal unless `--yes`, and refuses (exit 2)
 * with neither; then it asks the daemon (started when none runs) for `TrustCapsule` on the
 * connection's workspace with the hashes it showed, so a record changed in between is refused.
 * The daemon audits it (`capsule.trust`) and loads the workspace's capsules again. `untrust`
 * sends `UntrustCapsule`: audited (`capsule.untrust`), the capsule unloads.
 *
 * @module
 */
import {
  CapsuleCode,
  CapsuleError,
  type DiscoveredCapsule,
  trustSubject,
} from "../kernel/capsule/mod.ts";
import type { DaemonClient } from "../kernel/daemon/mod.ts";
import { AstridError, CommonCode } from "../kernel/mod.ts";
import { parseVerbArgs } from "./args.ts";
import { capabilityItems, capsuleEngines, workspaceTrustStates } from "./capsule_list.ts";
import { isInteractive, type Prompter, TerminalPrompter } from "./capsule_prompt.ts";
import { openTarget, visibleCapsules } from "./capsule_scope.ts";
import { ensureDaemon } from "./ensure_daemon.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

/** Usage of `astrid capsule trust`. */
export const TRUST_USAGE = `Usage: astrid capsule trust NAME [--yes]
  Trust the workspace capsule NAME (.astrid/capsules/NAME of this workspace) as it is now,
  pinned to its manifest and wasm hashes, so the daemon loads it; a changed manifest or binary
  is untrusted again. Shows the capsule and asks first; --yes skips the question (needed
  without a terminal)`;

/** Usage of `astrid capsule untrust`. */
export const UNTRUST_USAGE = `Usage: astrid capsule untrust NAME
  Withdraw the trust in the workspace capsule NAME of this workspace; the daemon unloads it`;

/** What `TrustCapsule` and `UntrustCapsule` answer (`kernel/daemon/protocol.ts`). */
interface TrustReply {
  readonly workspace_id: string;
  readonly name: string;
  readonly revoked?: boolean;
  readonly trusted?: { readonly manifest_hash: string; readonly wasm_hash: string | null };
  readonly capsule?: { readonly version: string; readonly trust: string; readonly state?: string };
  readonly reload?: { readonly loaded: readonly string[]; readonly failed: readonly Failure[] };
}

interface Failure {
  readonly name: string;
  readonly error: string;
}

/** Options of {@link runCapsuleTrust} beyond the command line (tests pass a prompter). */
export interface TrustOptions {
  /** Asks the operator; default a terminal prompter when stdin is a terminal, else none. */
  readonly prompter?: Prompter;
}

/** Runs `astrid capsule trust NAME [--yes]`. */
export async function runCapsuleTrust(
  args: string[],
  io: CliIo,
  options: TrustOptions = {},
): Promise<number> {
  const { values, positionals } = parseVerbArgs("capsule", args, {
    yes: { type: "boolean", short: "y" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(TRUST_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("capsule", "capsule trust takes one NAME");
  const name = positionals[0];
  const target = await openTarget({});
  const record = await workspaceRecord(target, name);
  const states = await workspaceTrustStates(target, [record]);
  const state = states.get(name)!;
  const subject = trustSubject(state.workspaceId ?? "-", record);
  const m = record.manifest;
  io.out(`Workspace capsule ${name} ${m.package.version} in ${target.workspace}`);
  if (m.package.description) io.out(`  description:  ${m.package.description}`);
  io.out(`  engines:      ${capsuleEngines(m).join(", ") || "none"}`);
  io.out(`  capabilities: ${capabilityItems(m.capabilities).join(" ") || "none"}`);
  if (m.tool.length > 0) io.out(`  tools:        ${m.tool.map((t) => t.name).join(", ")}`);
  io.out(`  manifest:     ${subject.manifestHash}`);
  io.out(`  wasm:         ${subject.wasmHash ?? "none (no module)"}`);
  io.out(`  trust:        ${describeTrust(state.trust)}`);
  if (state.trust === "trusted") {
    io.out(`Capsule ${name} is already trusted in this workspace: nothing to do`);
    return 0;
  }
  if (!values.yes) {
    const prompter = options.prompter ?? (isInteractive() ? new TerminalPrompter() : undefined);
    if (prompter === undefined) {
      io.err(
        `error: Trusting workspace capsule "${name}" needs the operator's confirmation and there is no terminal to ask on: review it above, then run astrid capsule trust ${name} --yes`,
      );
      return 2;
    }
    io.err(
      `Trusting lets the daemon load ${name} for every session of this workspace, with the capabilities above.`,
    );
    if (!await prompter.confirm(`Trust ${name} ${m.package.version}?`, false)) {
      io.out(`Not trusted: nothing was changed`);
      return 1;
    }
  }
  const reply = await withWorkspace(
    target.workspace,
    "cli-capsule-trust",
    (client, id) =>
      client.call<TrustReply>("management", {
        request: "TrustCapsule",
        params: {
          name,
          workspace_id: id,
          manifest_hash: subject.manifestHash,
          wasm_hash: subject.wasmHash,
        },
      }),
  );
  io.out(`Trusted ${name} ${m.package.version} in workspace ${target.workspace}`);
  const loaded = reply.capsule?.state === "loaded";
  if (loaded) {
    io.out(`Loaded ${name}`);
  } else {
    const failure = reply.reload?.failed.find((f) => f.name === `${name}#${reply.workspace_id}`);
    io.err(
      `warning: ${name} is trusted but not loaded${
        failure !== undefined
          ? `: ${failure.error}`
          : ": an installed capsule of that name hides it (see astrid capsule list)"
      }`,
    );
  }
  return 0;
}

/** Runs `astrid capsule untrust NAME`. */
export async function runCapsuleUntrust(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("capsule", args, {
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(UNTRUST_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("capsule", "capsule untrust takes one NAME");
  const name = positionals[0];
  const target = await openTarget({});
  const reply = await withWorkspace(
    target.workspace,
    "cli-capsule-untrust",
    (client, id) =>
      client.call<TrustReply>("management", {
        request: "UntrustCapsule",
        params: { name, workspace_id: id },
      }),
  );
  if (reply.revoked !== true) {
    io.out(`Capsule ${name} was not trusted in workspace ${target.workspace}: nothing to do`);
    return 0;
  }
  io.out(
    `Untrusted ${name} in workspace ${target.workspace}${
      reply.capsule?.state === "loaded" ? "" : ": not loaded"
    }`,
  );
  return 0;
}

/** The workspace record `name`, or a `CAPSULE_NOT_INSTALLED` error saying why not. */
async function workspaceRecord(
  target: Awaited<ReturnType<typeof openTarget>>,
  name: string,
): Promise<DiscoveredCapsule> {
  const found = await visibleCapsules(target);
  const record = [...found.capsules, ...found.shadowed].find((c) =>
    c.scope === "workspace" && c.name === name
  );
  if (record !== undefined) return record;
  const broken = found.problems.find((p) => p.scope === "workspace" && p.dir.endsWith(`/${name}`));
  throw new CapsuleError(
    CapsuleCode.CAPSULE_NOT_INSTALLED,
    broken !== undefined
      ? `Workspace capsule "${name}" cannot be trusted: ${broken.error.message}`
      : `No workspace capsule "${name}" is installed in ${target.workspace}: install it with astrid capsule install DIR --workspace, or see astrid capsule list`,
    { data: { name } },
  );
}

/** Connects to the daemon with the session bound to `workspace` and runs `fn` with its id. */
async function withWorkspace<T>(
  workspace: string,
  client: string,
  fn: (client: DaemonClient, workspaceId: string) => Promise<T>,
): Promise<T> {
  const { client: c } = await ensureDaemon({ client, workspace });
  try {
    const id = c.welcome.workspace?.id;
    if (id === undefined) {
      throw new AstridError(
        CommonCode.INTERNAL,
        `The daemon did not bind workspace "${workspace}" to the session: see log/daemon.log`,
      );
    }
    return await fn(c, id);
  } finally {
    await c.close();
  }
}

function describeTrust(trust: "trusted" | "changed" | "untrusted"): string {
  switch (trust) {
    case "trusted":
      return "trusted";
    case "changed":
      return "changed since it was trusted (not loaded until trusted again)";
    case "untrusted":
      return "untrusted (not loaded)";
  }
}
