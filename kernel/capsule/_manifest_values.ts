/**
 * Folder-private: checks of single manifest values (VFS paths, `host:port`, program names,
 * packaged file paths, cron schedules, hashes). Each returns `undefined` when the value is
 * good, else a {@link Problem}: what is wrong and how to fix it.
 *
 * @module
 */

/** What is wrong with a value and how to fix it. */
export interface Problem {
  /** What is wrong, the bad value quoted. */
  readonly problem: string;
  /** How to fix it. */
  readonly fix: string;
}

const q = JSON.stringify;

/** `blake3:` followed by 64 lowercase hex digits. */
export const HASH_RE: RegExp = /^blake3:[0-9a-f]{64}$/;
/** Names of wasm exports a manifest may bind (identifiers every guest language can write). */
export const HANDLER_RE: RegExp = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Names of commands, skills, cron jobs: lowercase, digits, `_`, `-`. */
export const SLUG_RE: RegExp = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** `[env]` variable names. */
export const ENV_NAME_RE: RegExp = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** `[imports]`/`[exports]` namespaces. */
export const NAMESPACE_RE: RegExp = /^[a-z][a-z0-9-]{0,31}$/;
/** `[imports]`/`[exports]` interface names outside the typed prefixes. */
export const INTERFACE_RE: RegExp = /^[a-z][a-z0-9_-]{0,63}$/;

/** Checks a `blake3:<hex>` hash. */
export function hashProblem(value: string): Problem | undefined {
  if (HASH_RE.test(value)) return undefined;
  if (/^[0-9a-fA-F]{64}$/.test(value)) {
    return {
      problem: `${q(value)} lacks its algorithm`,
      fix: `write "blake3:${value.toLowerCase()}"`,
    };
  }
  return {
    problem: `${q(value)} is not a BLAKE3 content address`,
    fix: `write "blake3:" and 64 lowercase hex digits (astrid build prints it)`,
  };
}

const VFS_RE = /^(workspace|home|global):\/\/(.*)$/;

/** Checks an `fs_read`/`fs_write` entry: `"*"` or a `workspace://`, `home://`, `global://` path. */
export function vfsPathProblem(value: string): Problem | undefined {
  if (value === "*") return undefined;
  const m = VFS_RE.exec(value);
  if (!m) {
    const scheme = /^([a-z]+):\/\//.exec(value)?.[1];
    const fix = value.startsWith("/") || value.startsWith("~")
      ? `use a VFS scheme instead of a host path, e.g. "global://${value.replace(/^[~/]+/, "")}"`
      : `use "workspace://…", "home://…", "global://…" or "*" (the workspace root)`;
    return {
      problem: scheme
        ? `${q(value)} uses the unknown scheme "${scheme}://"`
        : `${q(value)} is not a VFS path`,
      fix,
    };
  }
  const rest = m[2];
  if (rest.split("/").some((seg) => seg === "..")) {
    return { problem: `${q(value)} contains ".."`, fix: "name the directory itself, without .." };
  }
  if (/[\\\0]/.test(rest)) {
    return {
      problem: `${q(value)} contains a backslash or NUL`,
      fix: "use / between path segments",
    };
  }
  return undefined;
}

const LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Checks a `net` entry `host:port` (`*` and `*.suffix` hosts, `*` ports allowed). */
export function netEntryProblem(value: string): Problem | undefined {
  const example = `e.g. "api.example.com:443", "*.example.com:443" or "localhost:*"`;
  if (/^[a-z]+:\/\//i.test(value)) {
    const host = value.replace(/^[a-z]+:\/\//i, "").split("/")[0];
    const port = value.toLowerCase().startsWith("http:") ? 80 : 443;
    return {
      problem: `${q(value)} is a URL`,
      fix: `write host:port, e.g. "${host.includes(":") ? host : `${host}:${port}`}"`,
    };
  }
  let host: string;
  let port: string;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(.*)$/.exec(value);
  if (v6) {
    host = v6[1];
    port = v6[2];
  } else {
    const i = value.lastIndexOf(":");
    if (i < 0) {
      return {
        problem: `${q(value)} has no port`,
        fix: `add one, e.g. "${value}:443", or "${value}:*" for any`,
      };
    }
    host = value.slice(0, i);
    port = value.slice(i + 1);
    if (host === "") return { problem: `${q(value)} has no host`, fix: example };
    if (host !== "*") {
      const name = host.startsWith("*.") ? host.slice(2) : host;
      const labels = name.toLowerCase().split(".");
      if (!IPV4_RE.test(name) && !labels.every((l) => LABEL_RE.test(l))) {
        const fix = host.includes("*")
          ? `"*" may only be a whole leading label ("*.example.com") or the whole host`
          : example;
        return { problem: `${q(value)} has an invalid host "${host}"`, fix };
      }
    }
  }
  if (port !== "*") {
    const n = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
    if (!(n >= 1 && n <= 65535)) {
      return {
        problem: `${q(value)} has an invalid port "${port}"`,
        fix: `use 1 to 65535, or "*" for any port`,
      };
    }
  }
  return undefined;
}

/** Checks a `net_bind` entry: `unix:<name>` (a `*` may stand for any characters). */
export function netBindProblem(value: string): Problem | undefined {
  if (/^unix:[A-Za-z0-9._*-]{1,100}$/.test(value) && !value.includes("..")) return undefined;
  return {
    problem: `${q(value)} is not a unix socket name`,
    fix: `write "unix:<name>" with a-z, A-Z, 0-9, ".", "_", "-", or "unix:*" for any`,
  };
}

/** Checks a program name of `host_process` or an `[[mcp_server]]` command. */
export function programProblem(value: string): Problem | undefined {
  if (/^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/.test(value)) return undefined;
  if (value.includes("/")) {
    const base = value.split("/").filter((s) => s !== "").pop() ?? "";
    return {
      problem: `${q(value)} is a path`,
      fix: `give the program name (${q(base)}); it is looked up on PATH inside the sandbox`,
    };
  }
  return {
    problem: `${q(value)} is not a program name`,
    fix: `use letters, digits, ".", "_", "+" and "-", e.g. "git"`,
  };
}

/** Checks a relative file path inside the capsule (posix, no `..`, no leading `/`). */
export function relativePathProblem(value: string): Problem | undefined {
  if (value === "" || value.startsWith("/") || /^[A-Za-z]:/.test(value)) {
    return {
      problem: `${q(value)} is not a relative path`,
      fix: "give a path relative to Capsule.toml",
    };
  }
  if (value.includes("\\") || value.includes("\0")) {
    return {
      problem: `${q(value)} contains a backslash or NUL`,
      fix: "use / between path segments",
    };
  }
  const segs = value.split("/");
  if (segs.some((s) => s === "..")) {
    return { problem: `${q(value)} leaves the capsule directory`, fix: "remove the .. segments" };
  }
  if (segs.some((s) => s === "" || s === ".")) {
    return {
      problem: `${q(value)} has an empty or "." segment`,
      fix: `write it as ${q(segs.filter((s) => s !== "" && s !== ".").join("/"))}`,
    };
  }
  return undefined;
}

/** Checks a file packed into the archive: relative and under `static/`. */
export function staticPathProblem(value: string): Problem | undefined {
  const rel = relativePathProblem(value);
  if (rel) return rel;
  if (!value.startsWith("static/")) {
    return {
      problem: `${q(value)} is outside static/`,
      fix:
        `move it under static/ (only static/… is packed into a .capsule), e.g. "static/${value}"`,
    };
  }
  return undefined;
}

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const CRON_FIELDS = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: MONTHS, base: 1 },
  { name: "day of week", min: 0, max: 7, names: DAYS, base: 0 },
] as const;
/** Cron macros accepted in place of five fields. */
export const CRON_MACROS: readonly string[] = [
  "@yearly",
  "@annually",
  "@monthly",
  "@weekly",
  "@daily",
  "@midnight",
  "@hourly",
];

/** Checks a five-field cron expression (UTC) or a macro such as `@hourly`. */
export function cronProblem(value: string): Problem | undefined {
  const fix =
    `use five fields "minute hour day-of-month month day-of-week", e.g. "*/15 * * * *", or one of ${
      CRON_MACROS.join(", ")
    }`;
  const text = value.trim();
  if (text.startsWith("@")) {
    return CRON_MACROS.includes(text) ? undefined : { problem: `unknown macro ${q(text)}`, fix };
  }
  const fields = text.split(/\s+/);
  if (fields.length !== 5) {
    return { problem: `${q(value)} has ${fields.length} fields, expected 5`, fix };
  }
  for (let f = 0; f < 5; f++) {
    const spec = CRON_FIELDS[f];
    const num = (s: string): number => {
      if (/^\d{1,2}$/.test(s)) return Number(s);
      const names = "names" in spec ? spec.names as readonly string[] : undefined;
      const i = names?.indexOf(s.toLowerCase()) ?? -1;
      return i >= 0 ? i + ("base" in spec ? spec.base : 0) : NaN;
    };
    for (const item of fields[f].split(",")) {
      const m = /^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d{1,2}))?$/.exec(item);
      const bad = (why: string) => ({
        problem: `${q(value)}: ${spec.name} ${q(item)} ${why}`,
        fix,
      });
      if (!m) return bad("is malformed");
      if (m[2] !== undefined && Number(m[2]) < 1) return bad("has a step below 1");
      if (m[1] === "*") continue;
      const [a, b] = m[1].split("-").map(num);
      if (Number.isNaN(a) || (b !== undefined && Number.isNaN(b))) return bad("is not a number");
      for (const n of b === undefined ? [a] : [a, b]) {
        if (n < spec.min || n > spec.max) return bad(`is outside ${spec.min}-${spec.max}`);
      }
      if (b !== undefined && b < a) return bad("is a descending range");
    }
  }
  return undefined;
}

/** The fix for an invalid export name, with a corrected guess. */
export function handlerFix(handler: string): string {
  const guess = handler.replace(/[^A-Za-z0-9_]/g, "_").replace(/^(\d)/, "_$1").slice(0, 128);
  return `an export name is a letter or "_" then letters, digits and "_" (at most 128), e.g. ${
    q(guess)
  }`;
}
