/**
 * Capability introspection: a capsule asks what its own manifest allows. Reads only the
 * calling capsule's manifest (through its compiled gate) and, for `fs_*` targets, the session
 * VFS to canonicalize the path the way a real call would. Needs no capability; records nothing
 * (introspection is not a decision). Fails with `INVALID_ARGUMENT` for a malformed request.
 *
 * @module
 */
import { IDENTITY_LEVELS, type IdentityLevel } from "../kernel/capsule/mod.ts";
import { manifestAcl } from "../kernel/capsule/mod.ts";
import { ManifestSecurityGate } from "./gate.ts";
import {
  defineHostFunction,
  type GateRequirement,
  type HostCallContext,
  type HostFunctionRow,
} from "./host_function.ts";
import { HostCallError, HostStatus } from "./status.ts";

const TARGETED = ["fs_read", "fs_write", "net", "net_bind", "host_process", "publish", "subscribe"];
const FLAGS = ["kv", "http", "approval", "uplink", "allow_persistent", "allow_prompt_injection"];

/** Every capability name `check_capsule_capability` accepts. */
export const CAPABILITY_NAMES: readonly string[] = [...TARGETED, "identity", ...FLAGS];

function invalid(message: string): HostCallError {
  return new HostCallError(HostStatus.INVALID_ARGUMENT, message, { field: "request" });
}

/** Parses `{"capability", "target"?, "level"?}` into a requirement. */
function requirement(raw: unknown): GateRequirement {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw invalid(`Field "request" must be a JSON object: {"capability": "…", "target": "…"}`);
  }
  const r = raw as Record<string, unknown>;
  const capability = r.capability;
  if (typeof capability !== "string" || !CAPABILITY_NAMES.includes(capability)) {
    throw invalid(
      `Field "request.capability" is ${JSON.stringify(capability ?? null)}: expected one of ${
        CAPABILITY_NAMES.join(", ")
      }`,
    );
  }
  if (TARGETED.includes(capability)) {
    if (typeof r.target !== "string" || r.target === "") {
      throw invalid(`Field "request.target" is required for ${capability}: a non-empty string`);
    }
    return { capability, target: r.target } as GateRequirement;
  }
  if (capability === "identity") {
    const level = r.level ?? "resolve";
    if (!(IDENTITY_LEVELS as readonly unknown[]).includes(level)) {
      throw invalid(
        `Field "request.level" is ${JSON.stringify(level)}: expected ${IDENTITY_LEVELS.join(", ")}`,
      );
    }
    return { capability: "identity", level: level as IdentityLevel };
  }
  return { capability } as GateRequirement;
}

/** Canonicalizes an fs target as a real call would; null when the VFS refuses the path. */
async function canonical(req: GateRequirement, call: HostCallContext): Promise<
  GateRequirement | string
> {
  if (req.capability !== "fs_read" && req.capability !== "fs_write") return req;
  try {
    const vfs = await call.services.vfs();
    const routed = await vfs.router.route(req.target);
    return { capability: req.capability, target: routed.uri };
  } catch (err) {
    return `The path is refused: ${(err as Error).message}`;
  }
}

/**
 * `check_capsule_capability(request: JSON {"capability", "target"?, "level"?})` →
 * JSON `{"allowed": true}` or `{"allowed": false, "reason": "…"}`.
 */
export const checkCapsuleCapability = defineHostFunction<GateRequirement>({
  name: "check_capsule_capability",
  subsystem: "security",
  doc: "Whether the capsule's manifest allows a capability (and target)",
  capabilities: [],
  parse: (req) => {
    const raw = req.json("request");
    req.end();
    return requirement(raw);
  },
  gate: () => null,
  run: async (req, call) => {
    const resolved = await canonical(req, call);
    if (typeof resolved === "string") return JSON.stringify({ allowed: false, reason: resolved });
    const denial = ManifestSecurityGate.for(call.manifest).check(resolved);
    return JSON.stringify(
      denial === null ? { allowed: true } : { allowed: false, reason: denial.message },
    );
  },
});

/** `enumerate_capabilities()` → JSON of the capsule's declared capabilities and ACL. */
export const enumerateCapabilities = defineHostFunction<void>({
  name: "enumerate_capabilities",
  subsystem: "security",
  doc: "The capsule's declared capabilities, canonical fs patterns and bus ACL",
  capabilities: [],
  parse: (req) => req.end(),
  gate: () => null,
  run: (_args, call) => {
    const caps = call.manifest.capabilities;
    const gate = ManifestSecurityGate.for(call.manifest);
    const acl = manifestAcl(call.manifest);
    const fs = (list: typeof gate.fsRead) =>
      list.map((p) => (p.path === "" ? `${p.scheme}://` : `${p.scheme}://${p.path}`));
    return Promise.resolve(JSON.stringify({
      capsule: call.capsule,
      fs_read: fs(gate.fsRead),
      fs_write: fs(gate.fsWrite),
      net: caps.net,
      net_bind: caps.net_bind,
      host_process: caps.host_process,
      allow_persistent: caps.allow_persistent,
      kv: caps.kv,
      identity: caps.identity ?? null,
      http: caps.http,
      uplink: caps.uplink,
      approval: caps.approval,
      allow_prompt_injection: caps.allow_prompt_injection,
      publish: acl.publish,
      subscribe: acl.subscribe,
    }));
  },
});

/** The `security` rows, in table order. */
export const SECURITY_FUNCTIONS: readonly HostFunctionRow[] = [
  checkCapsuleCapability,
  enumerateCapabilities,
];
