/**
 * The policy layer: hard blocks that nothing overrides — no token, allowance, approval answer,
 * mode or `--yes`. It runs first and sees only canonical values (see `sensitive_action.ts`).
 *
 * Rules, in the order they are checked (the `rule` string an audit entry names):
 * - `path_traversal`: a `..` segment in a file path. A canonical path never has one, so one is
 *   a resolution bug or an attack; it is rejected, never normalized.
 * - `path_not_canonical`: a relative path, `.` or empty segments, a trailing `/`, a NUL byte.
 * - `denied_paths:<pattern>`: the path or one of its ancestors matches the pattern. A pattern
 *   that does not start with `/` or `**` matches at any depth (`secrets/**` is read with a
 *   leading `**` segment added), which is stricter than workspace-relative. A pattern that
 *   does not compile denies every path (fail closed).
 * - `allowed_paths`: the list is non-empty and neither the path nor an ancestor matches it
 *   (patterns read as above; one that does not compile is ignored, which only tightens).
 * - `privilege_escalation:<name>`: `sudo`, `su`, `doas`, `pkexec` or `run0` appears as a word
 *   anywhere in any argument of a spawned command (`bash -c "x && sudo y"`, `env sudo`,
 *   `/usr/bin/sudo`, `$(sudo …)`), compared by basename, case-insensitively, after quotes and
 *   backslashes are removed. Built in: config cannot remove it.
 * - `denied_commands:<name>`: a configured command name appears as such a word.
 * - `argv_invalid`: an argument holds a NUL byte.
 * - `host_invalid`: the host cannot be canonicalized.
 * - `denied_hosts:<entry>`: the canonical host is the entry or a subdomain of it (`*.x` and
 *   `x` both cover `a.x`); entries are canonicalized the same way (numeric IPv4 forms too).
 *
 * Words are a string-level backstop, not a shell parser: `grep su notes.txt` is refused (a
 * false positive costs a reworded command), while a command assembled at run time
 * (`x=su; "$x"do`) is the namespace sandbox's to stop (DESIGN §6a).
 *
 * @module
 */
import { compileGlob, type Glob } from "../capabilities/mod.ts";
import type { PolicyConfig } from "../config/mod.ts";
import { type ActionInfo, canonicalHost, type SensitiveAction } from "./sensitive_action.ts";

/** Commands that raise privileges: blocked in every spawned command whatever the config says. */
export const PRIVILEGE_COMMANDS: readonly string[] = ["sudo", "su", "doas", "pkexec", "run0"];

/** Why the policy blocked an action. */
export interface PolicyBlock {
  /** The rule, e.g. `denied_paths:/etc/shadow` (see the module doc). */
  readonly rule: string;
  /** A sentence for the audit entry and the model. */
  readonly reason: string;
}

interface PathRule {
  pattern: string;
  glob: Glob | null;
}

interface HostRule {
  entry: string;
  host: string;
}

const WORD_SPLIT = /[\s;&|()<>`$={}!,]+/;
const QUOTES = /["'\\]/g;
const compiled = new WeakMap<PolicyConfig, Policy>();

/** Compiled hard blocks of one `[security.policy]`. */
export class Policy {
  readonly #denied: PathRule[];
  readonly #allowed: PathRule[];
  readonly #allowList: boolean;
  readonly #commands: Map<string, string>;
  readonly #hosts: HostRule[];
  /** Config entries that could not be compiled, with what was done about them. */
  readonly problems: readonly string[];

  /** Compiles `config`; never throws (bad entries fail closed, see {@link Policy.problems}). */
  constructor(config: PolicyConfig) {
    const problems: string[] = [];
    this.#denied = config.denied_paths.map((p) => pathRule(p, problems, "denies every path"));
    this.#allowList = config.allowed_paths.length > 0;
    this.#allowed = config.allowed_paths.map((p) => pathRule(p, problems, "is ignored"));
    this.#commands = new Map();
    for (const name of PRIVILEGE_COMMANDS) this.#commands.set(name, `privilege_escalation:${name}`);
    for (const name of config.denied_commands) {
      const key = basename(name.toLowerCase());
      if (key !== "" && !this.#commands.has(key)) {
        this.#commands.set(key, `denied_commands:${name}`);
      }
    }
    this.#hosts = config.denied_hosts.map((entry) => {
      const bare = entry.startsWith("*.") ? entry.slice(2) : entry;
      const host = canonicalHost(bare) ?? bare.toLowerCase();
      return { entry, host };
    });
    this.problems = problems;
  }

  /** The compiled policy of `config`, cached per config object. */
  static for(config: PolicyConfig): Policy {
    let policy = compiled.get(config);
    if (policy === undefined) {
      policy = new Policy(config);
      compiled.set(config, policy);
    }
    return policy;
  }

  /** The first hard block `action` hits, or null when the policy lets it through. */
  check(action: SensitiveAction, info: ActionInfo): PolicyBlock | null {
    switch (action.kind) {
      case "fs.read":
      case "fs.write":
      case "fs.delete":
        return this.checkPath(action.path);
      case "process.spawn":
        return this.checkArgv(action.argv);
      case "net.request":
        return this.#checkHost(action.host, info.host ?? null);
      case "tool.execute": {
        for (const path of action.paths ?? []) {
          const block = this.checkPath(path);
          if (block !== null) return block;
        }
        return action.argv === undefined ? null : this.checkArgv(action.argv);
      }
      default:
        return null;
    }
  }

  /** The first block for the canonical absolute `path`, or null. */
  checkPath(path: string): PolicyBlock | null {
    const shape = pathShape(path);
    if (shape !== null) return shape;
    const chain = ancestry(path);
    for (const rule of this.#denied) {
      if (rule.glob === null) {
        return {
          rule: `denied_paths:${rule.pattern}`,
          reason:
            `Policy denies "${path}": denied path pattern "${rule.pattern}" does not compile, so every path is denied`,
        };
      }
      for (const p of chain) {
        if (rule.glob.match(p)) {
          return {
            rule: `denied_paths:${rule.pattern}`,
            reason: `Policy denies "${path}": it matches denied path "${rule.pattern}"${
              p === path ? "" : ` (through "${p}")`
            }`,
          };
        }
      }
    }
    if (this.#allowList) {
      const ok = this.#allowed.some((r) => r.glob !== null && chain.some((p) => r.glob!.match(p)));
      if (!ok) {
        return {
          rule: "allowed_paths",
          reason: `Policy denies "${path}": it is outside security.policy.allowed_paths`,
        };
      }
    }
    return null;
  }

  /** The first block for a command line `argv`, or null. */
  checkArgv(argv: readonly string[]): PolicyBlock | null {
    for (const arg of argv) {
      if (arg.includes("\0")) {
        return {
          rule: "argv_invalid",
          reason: "Policy denies the command: an argument holds a NUL byte",
        };
      }
      const words = arg.replace(QUOTES, "").split(WORD_SPLIT);
      for (const word of words) {
        if (word === "") continue;
        const rule = this.#commands.get(basename(word.toLowerCase()));
        if (rule !== undefined) {
          return {
            rule,
            reason: `Policy denies the command: "${basename(word)}" is ${
              rule.startsWith("privilege") ? "a privilege escalation" : "a denied command"
            } (found in argument ${quote(arg)})`,
          };
        }
      }
    }
    return null;
  }

  #checkHost(raw: string, host: string | null): PolicyBlock | null {
    if (host === null) {
      return {
        rule: "host_invalid",
        reason: `Policy denies host ${quote(raw)}: it is not a valid host`,
      };
    }
    for (const rule of this.#hosts) {
      if (host === rule.host || host.endsWith("." + rule.host)) {
        return {
          rule: `denied_hosts:${rule.entry}`,
          reason: `Policy denies host "${host}": it matches denied host "${rule.entry}"`,
        };
      }
    }
    return null;
  }
}

function pathRule(pattern: string, problems: string[], consequence: string): PathRule {
  let p = pattern.length > 1 && pattern.endsWith("/") ? pattern.slice(0, -1) : pattern;
  if (!p.startsWith("/") && !p.startsWith("**")) p = "**/" + p;
  try {
    return { pattern, glob: compileGlob(p) };
  } catch (err) {
    problems.push(`Path pattern "${pattern}" ${consequence}: ${(err as Error).message}`);
    return { pattern, glob: null };
  }
}

/** The block for a path that is not absolute and canonical, or null. */
function pathShape(path: string): PolicyBlock | null {
  if (path.includes("\0")) {
    return {
      rule: "path_not_canonical",
      reason: `Policy denies ${quote(path)}: it holds a NUL byte`,
    };
  }
  const segments = path.split("/");
  if (segments.includes("..")) {
    return {
      rule: "path_traversal",
      reason: `Policy denies ${quote(path)}: a ".." segment is path traversal`,
    };
  }
  if (!path.startsWith("/")) {
    return {
      rule: "path_not_canonical",
      reason: `Policy denies ${quote(path)}: not an absolute path (the VFS must resolve it)`,
    };
  }
  if (path !== "/") {
    for (let i = 1; i < segments.length; i++) {
      if (segments[i] === "" || segments[i] === ".") {
        return {
          rule: "path_not_canonical",
          reason: `Policy denies ${
            quote(path)
          }: not canonical (empty or "." segment, or a trailing "/")`,
        };
      }
    }
  }
  return null;
}

/** `path` and each of its ancestors except `/`, deepest first. */
function ancestry(path: string): string[] {
  const out = [path];
  let end = path.lastIndexOf("/");
  while (end > 0) {
    out.push(path.slice(0, end));
    end = path.lastIndexOf("/", end - 1);
  }
  return out;
}

function basename(word: string): string {
  const i = word.lastIndexOf("/");
  return i < 0 ? word : word.slice(i + 1);
}

function quote(value: string): string {
  return `"${value.length > 64 ? value.slice(0, 64) + "…" : value}"`;
}
