/**
 * Semantic versions and version ranges, as `[package] version`, `[exports]` and `[imports]` use
 * them. A small matcher of our own, with npm's semantics:
 *
 * | range | means |
 * | --- | --- |
 * | `1.2.3`, `=1.2.3` | exactly 1.2.3 |
 * | `^1.2.3` | `>=1.2.3 <2.0.0` (`^0.2.3`: `<0.3.0`; `^0.0.3`: `<0.0.4`) |
 * | `~1.2.3` | `>=1.2.3 <1.3.0` |
 * | `>=1.2`, `>1`, `<2.0.0`, `<=1.4` | comparisons; a partial version fills with zeros (`<=1.4` is `<1.5.0`) |
 * | `*`, `x`, `1.x`, `1.2.*`, `1`, `1.2` | x-ranges: any version, `1.x.x`, `1.2.x` |
 * | `>=1.2 <2`, `>=1.2, <2` | both must hold (space or comma) |
 * | `^1 \|\| ^2` | either |
 *
 * A prerelease (`1.3.0-beta.1`) satisfies a range only when a comparator of the same
 * `MAJOR.MINOR.PATCH` names a prerelease too, so `^1.2.0` never selects a beta.
 *
 * @module
 */
import { AstridError, CommonCode } from "../errors.ts";

/** A parsed semantic version `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`. */
export interface SemVer {
  /** Major version. */
  readonly major: number;
  /** Minor version. */
  readonly minor: number;
  /** Patch version. */
  readonly patch: number;
  /** Dot-separated prerelease identifiers; numbers where numeric. Empty for a release. */
  readonly prerelease: readonly (string | number)[];
  /** Build metadata identifiers (ignored by comparison). */
  readonly build: readonly string[];
}

const NUM = "0|[1-9]\\d*";
const IDENT = "[0-9A-Za-z-]+";
const VERSION_RE = new RegExp(
  `^(${NUM})\\.(${NUM})\\.(${NUM})(?:-(${IDENT}(?:\\.${IDENT})*))?(?:\\+(${IDENT}(?:\\.${IDENT})*))?$`,
);
const PARTIAL_RE = new RegExp(
  `^(${NUM}|[xX*])(?:\\.(${NUM}|[xX*])(?:\\.(${NUM}|[xX*])(?:-(${IDENT}(?:\\.${IDENT})*))?(?:\\+(${IDENT}(?:\\.${IDENT})*))?)?)?$`,
);
const MAX_PART = Number.MAX_SAFE_INTEGER;

function prereleaseIds(text: string | undefined): (string | number)[] {
  if (text === undefined) return [];
  return text.split(".").map((id) => (/^\d+$/.test(id) ? Number(id) : id));
}

function prereleaseProblem(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const bad = text.split(".").find((id) => /^0\d+$/.test(id));
  return bad ? `numeric prerelease identifier "${bad}" has a leading zero` : undefined;
}

/** Parses a full `MAJOR.MINOR.PATCH` version, or returns `undefined`. */
export function parseVersion(text: string): SemVer | undefined {
  if (typeof text !== "string") return undefined;
  const m = VERSION_RE.exec(text.trim());
  if (!m || prereleaseProblem(m[4]) !== undefined) return undefined;
  const [major, minor, patch] = [m[1], m[2], m[3]].map(Number);
  if (major > MAX_PART || minor > MAX_PART || patch > MAX_PART) return undefined;
  return {
    major,
    minor,
    patch,
    prerelease: prereleaseIds(m[4]),
    build: m[5] ? m[5].split(".") : [],
  };
}

/** True when `text` is a full semantic version. */
export function isVersion(text: string): boolean {
  return parseVersion(text) !== undefined;
}

/** Formats `v` as `MAJOR.MINOR.PATCH[-PRE][+BUILD]`. */
export function formatVersion(v: SemVer): string {
  return `${v.major}.${v.minor}.${v.patch}` +
    (v.prerelease.length ? `-${v.prerelease.join(".")}` : "") +
    (v.build.length ? `+${v.build.join(".")}` : "");
}

/** Orders two versions by semver precedence (build metadata ignored): -1, 0 or 1. */
export function compareVersions(a: SemVer, b: SemVer): -1 | 0 | 1 {
  for (const k of ["major", "minor", "patch"] as const) {
    if (a[k] !== b[k]) return a[k] < b[k] ? -1 : 1;
  }
  const pa = a.prerelease;
  const pb = b.prerelease;
  if (pa.length === 0 || pb.length === 0) {
    if (pa.length === pb.length) return 0;
    return pa.length === 0 ? 1 : -1;
  }
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    if (i >= pa.length) return -1;
    if (i >= pb.length) return 1;
    const x = pa[i];
    const y = pb[i];
    if (x === y) continue;
    if (typeof x === "number" && typeof y === "number") return x < y ? -1 : 1;
    if (typeof x === "number") return -1;
    if (typeof y === "number") return 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

type Op = "<" | "<=" | ">" | ">=" | "=";

interface Comparator {
  readonly op: Op;
  readonly version: SemVer;
  /** True when the author wrote a prerelease on this comparator. */
  readonly pre: boolean;
}

const v = (major: number, minor: number, patch: number, prerelease: (string | number)[] = []) => ({
  major,
  minor,
  patch,
  prerelease,
  build: [],
});
/** The lowest version of a release line: excludes prereleases of `major.minor.patch`. */
const floor = (major: number, minor: number, patch: number) => v(major, minor, patch, [0]);

/** A parsed version range; see the module doc for the syntax. */
export class VersionRange {
  /** The range as written. */
  readonly source: string;
  readonly #sets: readonly (readonly Comparator[])[];

  private constructor(source: string, sets: Comparator[][]) {
    this.source = source;
    this.#sets = sets;
  }

  /** Parses `text`, or throws `INVALID_ARGUMENT` naming the range and the rule it breaks. */
  static parse(text: string): VersionRange {
    const result = parseRange(text);
    if (typeof result === "string") {
      throw new AstridError(
        CommonCode.INVALID_ARGUMENT,
        `Invalid version range "${text}": ${result}`,
        { data: { field: "version" } },
      );
    }
    return new VersionRange(text, result);
  }

  /** Returns why `text` is not a valid range, or `undefined` when it is. */
  static problem(text: string): string | undefined {
    const result = parseRange(text);
    return typeof result === "string" ? result : undefined;
  }

  /** True when `version` (parsed or text) lies in the range; an invalid version never does. */
  satisfiedBy(version: SemVer | string): boolean {
    const ver = typeof version === "string" ? parseVersion(version) : version;
    if (ver === undefined) return false;
    return this.#sets.some((set) => satisfiesSet(ver, set));
  }

  /** The range as written. */
  toString(): string {
    return this.source;
  }
}

/** True when the version `version` lies in the range `range`; false when either is invalid. */
export function satisfies(version: string, range: string): boolean {
  const parsed = parseRange(range);
  const ver = parseVersion(version);
  if (typeof parsed === "string" || ver === undefined) return false;
  return parsed.some((set) => satisfiesSet(ver, set));
}

function satisfiesSet(ver: SemVer, set: readonly Comparator[]): boolean {
  for (const c of set) {
    const cmp = compareVersions(ver, c.version);
    const ok = c.op === "="
      ? cmp === 0
      : c.op === ">"
      ? cmp > 0
      : c.op === ">="
      ? cmp >= 0
      : c.op === "<"
      ? cmp < 0
      : cmp <= 0;
    if (!ok) return false;
  }
  if (ver.prerelease.length === 0) return true;
  return set.some((c) =>
    c.pre && c.version.major === ver.major && c.version.minor === ver.minor &&
    c.version.patch === ver.patch
  );
}

function parseRange(text: string): Comparator[][] | string {
  if (typeof text !== "string") return "a version range must be a string";
  if (text.length > 256) return `${text.length} characters, the limit is 256`;
  const sets: Comparator[][] = [];
  for (const alt of text.split("||")) {
    const tokens = alt.trim().replace(/(>=|<=|>|<|=|\^|~)\s+/g, "$1").split(/[\s,]+/).filter(
      (t) => t !== "",
    );
    if (tokens.length === 0) {
      return text.trim() === "" ? `empty range: use "*" for any version` : `empty alternative`;
    }
    const set: Comparator[] = [];
    for (const token of tokens) {
      const parsed = parseComparator(token);
      if (typeof parsed === "string") return parsed;
      set.push(...parsed);
    }
    sets.push(set);
  }
  return sets;
}

function parseComparator(token: string): Comparator[] | string {
  const m = /^(>=|<=|>|<|=|\^|~)?(.*)$/.exec(token) as RegExpExecArray;
  const op = m[1] ?? "";
  const body = m[2];
  if (body === "-") return `hyphen ranges are not supported: use ">=A <=B"`;
  const p = PARTIAL_RE.exec(body);
  if (!p) {
    return `"${token}" is not a version comparator: use forms like "1.2.3", "^1.2", "~1.2.3", ">=1.0 <2", "1.x" or "*"`;
  }
  const pre = prereleaseProblem(p[4]);
  if (pre) return pre;
  const wild = (s: string | undefined) => s === undefined || /^[xX*]$/.test(s);
  const parts = [p[1], p[2], p[3]];
  const firstWild = parts.findIndex(wild);
  if (firstWild >= 0 && parts.slice(firstWild).some((s) => !wild(s))) {
    return `"${token}": a number cannot follow a wildcard`;
  }
  const [M, mi, pa] = parts.map((s) => (wild(s) ? -1 : Number(s)));
  if ([M, mi, pa].some((n) => n > MAX_PART)) return `"${token}": a version part is too large`;
  const prerelease = prereleaseIds(p[4]);
  const hasPre = prerelease.length > 0;
  const full = pa >= 0;
  const exact = v(M, mi, pa, prerelease);
  const c = (o: Op, ver: SemVer, preFlag = false): Comparator => ({
    op: o,
    version: ver,
    pre: preFlag,
  });
  if (M < 0) {
    // `*`, `x`, `>=*`: any release; `<*` and `>*` match nothing.
    return op === "<" || op === ">" ? [c("<", floor(0, 0, 0))] : [];
  }
  switch (op) {
    case "":
    case "=":
      if (full) return [c("=", exact, hasPre)];
      if (mi < 0) return [c(">=", floor(M, 0, 0)), c("<", floor(M + 1, 0, 0))];
      return [c(">=", floor(M, mi, 0)), c("<", floor(M, mi + 1, 0))];
    case "^": {
      const lo = full ? c(">=", exact, hasPre) : c(">=", floor(M, Math.max(mi, 0), 0));
      if (M > 0 || mi < 0) return [lo, c("<", floor(M + 1, 0, 0))];
      if (mi > 0 || pa < 0) return [lo, c("<", floor(0, mi + 1, 0))];
      return [lo, c("<", floor(0, 0, pa + 1))];
    }
    case "~": {
      const lo = full ? c(">=", exact, hasPre) : c(">=", floor(M, Math.max(mi, 0), 0));
      return mi < 0 ? [lo, c("<", floor(M + 1, 0, 0))] : [lo, c("<", floor(M, mi + 1, 0))];
    }
    case ">=":
      return [full ? c(">=", exact, hasPre) : c(">=", floor(M, Math.max(mi, 0), 0))];
    case ">":
      if (full) return [c(">", exact, hasPre)];
      return mi < 0 ? [c(">=", floor(M + 1, 0, 0))] : [c(">=", floor(M, mi + 1, 0))];
    case "<":
      return [full ? c("<", exact, hasPre) : c("<", floor(M, Math.max(mi, 0), 0))];
    case "<=":
      if (full) return [c("<=", exact, hasPre)];
      return mi < 0 ? [c("<", floor(M + 1, 0, 0))] : [c("<", floor(M, mi + 1, 0))];
  }
  return `"${token}" is not a version comparator`;
}
