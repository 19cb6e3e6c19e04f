/**
 * The typed `Distro.toml`: what {@link parseDistro} returns. Field names are the TOML keys, as
 * `docs/distros.md` documents them.
 *
 * ```ts
 * import { parseDistro } from "./parse_distro.ts";
 *
 * const d = parseDistro(
 *   `[distro]
 * name = "mini"
 * version = "0.1.0"
 *
 * [variables]
 * api_key = { description = "Provider API key", secret = true, required = true }
 *
 * [[group]]
 * name = "anthropic"
 * description = "Claude models"
 * default = true
 *
 * [[capsule]]
 * name = "provider-anthropic"
 * source = "capsules/provider-anthropic"
 * version = "^0.1"
 * group = "anthropic"
 * env = { API_KEY = "{{ api_key }}" }
 * `,
 *   { file: "mini/Distro.toml" },
 * );
 * if (d.group[0].capsules[0] !== "provider-anthropic") throw new Error("group membership");
 * ```
 *
 * @module
 */

/** Distro names: `[a-z0-9][a-z0-9-]{0,63}` (a directory name under `distros/`). */
export const DISTRO_NAME_RE: RegExp = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** Variable names: `[A-Za-z_][A-Za-z0-9_]{0,63}`. */
export const VARIABLE_NAME_RE: RegExp = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** The `schema_version` this parser reads. */
export const DISTRO_SCHEMA_VERSION = 1;

/** `[distro]`: the distro's identity. */
export interface DistroSection {
  /** Machine name, `[a-z0-9][a-z0-9-]{0,63}`. */
  readonly name: string;
  /** Semantic version `MAJOR.MINOR.PATCH`. */
  readonly version: string;
  /** One line on what it is for. */
  readonly description?: string;
  /** Directory (relative to the `Distro.toml`'s) that relative capsule sources resolve against; default `.`. */
  readonly source_root: string;
  /** Version range of Astrid the distro needs, e.g. `">=0.1"`. */
  readonly astrid_version?: string;
  /** Home page URL. */
  readonly homepage?: string;
  /** SPDX license expression. */
  readonly license?: string;
  /** Authors. */
  readonly authors: readonly string[];
}

/** One `[variables]` entry: a value asked once at init and used in `{{ name }}` templates. */
export interface VariableDef {
  /** The variable name (the key). */
  readonly name: string;
  /** The prompt shown at init. */
  readonly description?: string;
  /** Asked with hidden input; never has a default. */
  readonly secret: boolean;
  /** Used when no value is given. */
  readonly default?: string;
  /** Init does not finish without a value. */
  readonly required: boolean;
}

/** One `[[group]]`: a provider group offered in the init multi-select. */
export interface DistroGroup {
  /** The group name (what `--group` takes). */
  readonly name: string;
  /** One line shown beside it. */
  readonly description?: string;
  /** Its capsules: those listed here and those whose `group` names it, in `[[capsule]]` order. */
  readonly capsules: readonly string[];
  /** Selected when the operator does not choose (non-interactive, or the pre-checked items). */
  readonly default: boolean;
}

/** One `[[capsule]]`: a capsule of the distro. */
export interface DistroCapsule {
  /** The capsule's `[package] name`. */
  readonly name: string;
  /** A local path (a capsule directory or a `.capsule`), or a remote `@org/name` (recorded, not fetched offline). */
  readonly source: string;
  /** The version range the installed capsule must satisfy (`0.1.0` is exact, `^0.1` a range). */
  readonly version: string;
  /** The group it belongs to; capsules in no group are always installed. */
  readonly group?: string;
  /** `[env]` values for the capsule; may hold `{{ variable }}` templates. */
  readonly env: Readonly<Record<string, string>>;
}

/** `[invites]`: how a multi-user deployment admits new principals (read by the gateway). */
export interface InvitesSection {
  /** Groups allowed to issue invites; empty disables registration. */
  readonly issuers: readonly string[];
  /** The group new principals join (required when `issuers` is not empty). */
  readonly default_group?: string;
  /** Default invite lifetime: `30s`, `15m`, `24h`, `7d`. */
  readonly default_expires?: string;
  /** Most principals, or absent for no limit. */
  readonly max_principals?: number;
}

/** `[branding]`: how frontends present the distro. */
export interface BrandingSection {
  /** Display name (e.g. `Astralis`). */
  readonly display_name?: string;
  /** One line under the name. */
  readonly tagline?: string;
  /** An icon: a `data:` URL or a path relative to the `Distro.toml`. */
  readonly icon?: string;
  /** Primary colour `#RRGGBB`. */
  readonly primary_color?: string;
  /** Accent colour `#RRGGBB`. */
  readonly accent_color?: string;
}

/** A parsed, validated `Distro.toml`. */
export interface DistroManifest {
  /** The file it was read from (as given to the parser). */
  readonly file: string;
  /** `schema_version` (1). */
  readonly schema_version: number;
  /** `[distro]`. */
  readonly distro: DistroSection;
  /** `[variables]`, in file order. */
  readonly variables: readonly VariableDef[];
  /** `[[group]]`, in file order, each with its full membership. */
  readonly group: readonly DistroGroup[];
  /** `[[capsule]]`, in file order. */
  readonly capsule: readonly DistroCapsule[];
  /** `[invites]`, when present. */
  readonly invites?: InvitesSection;
  /** `[branding]`, when present. */
  readonly branding?: BrandingSection;
}
