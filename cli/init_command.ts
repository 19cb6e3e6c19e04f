/**
 * `astrid init [--distro NAME|PATH] [--group G]… [--var K=V]… [--principal P] [--update]
 * [--yes]`: installs a distro — `distros/<NAME>/Distro.toml` of this program (default
 * `astralis`) or a `Distro.toml` path — for a principal: the provider groups offered as a
 * multi-select (non-interactive: `--group`, else the groups marked `default`), its variables
 * asked (secrets hidden) or taken from `--var`, every selected capsule installed with a
 * progress line, and `etc/Distro.lock` written. Re-running is idempotent; an installed capsule
 * that differs from the lock is reported (and reinstalled only when confirmed or `--yes`).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import {
  type CapsuleManifest,
  type EnvValues,
  missingEnv,
  parseEnvText,
  readCapsuleEnv,
} from "../kernel/capsule/mod.ts";
import {
  type DistroCapsuleOutcome,
  DistroCode,
  DistroError,
  type DistroPlan,
  type DistroQuestion,
  findDistro,
  installDistro,
  loadDistro,
  planDistro,
  resolveVariables,
  templateVariables,
} from "../kernel/distro/mod.ts";
import { systemClock } from "../kernel/mod.ts";
import { parseVerbArgs } from "./args.ts";
import { buildInPlace } from "./capsule_install.ts";
import { isInteractive, type Prompter, TerminalPrompter } from "./capsule_prompt.ts";
import { type CapsuleTarget, openTarget, reloadDaemon } from "./capsule_scope.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

/** The distro `astrid init` installs when `--distro` is not given. */
export const DEFAULT_DISTRO = "astralis";

/** `distros/` of this program. */
export const DISTROS_DIR: string = fileURLToPath(new URL("../distros/", import.meta.url));

const USAGE = `Usage: astrid init [options]
  Install a distro's capsules for a principal and pin them in etc/Distro.lock

Options:
  --distro NAME|PATH  A distro under distros/ (default: ${DEFAULT_DISTRO}) or a Distro.toml path
  --group G           Select provider group G (repeatable; default: the distro's default groups)
  --var KEY=VALUE     Set a distro variable (repeatable)
  --principal P       Install for principal P (default: default)
  --update            Accept capsules whose source changed since Distro.lock
  -y, --yes           Replace conflicting capsules and repair lock mismatches without asking`;

function parseVars(flags: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const flag of flags) {
    const eq = flag.indexOf("=");
    if (eq <= 0) throw new UsageError("init", `Invalid --var "${flag}": write --var KEY=VALUE`);
    out[flag.slice(0, eq)] = flag.slice(eq + 1);
  }
  return out;
}

function outcomeWord(o: DistroCapsuleOutcome): string {
  switch (o.status) {
    case "installed":
      return "ok";
    case "updated":
      return o.previousVersion === o.version
        ? `updated (a new build of ${o.version})`
        : `updated (${o.previousVersion ?? "?"} → ${o.version})`;
    case "unchanged":
      return "unchanged";
    case "mismatch":
      return `LOCK MISMATCH: ${o.detail}`;
    case "failed":
      return `FAILED: ${o.detail}`;
  }
}

/** Runs `astrid init …`. */
export async function runInit(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("init", args, {
    distro: { type: "string" },
    group: { type: "string", multiple: true },
    var: { type: "string", multiple: true },
    principal: { type: "string" },
    update: { type: "boolean" },
    yes: { type: "boolean", short: "y" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (positionals.length > 0) {
    throw new UsageError("init", `Unexpected "${positionals[0]}": use --distro NAME|PATH`);
  }
  const given = parseVars(values.var ?? []);
  const target = await openTarget(values);
  const file = await findDistro(values.distro ?? DEFAULT_DISTRO, { distrosDir: DISTROS_DIR });
  const distro = await loadDistro(file);
  const prompter = isInteractive() ? new TerminalPrompter() : undefined;
  const title = distro.branding?.display_name ?? distro.distro.name;
  const tagline = distro.branding?.tagline ?? distro.distro.description;
  io.out(`${title} ${distro.distro.version}${tagline ? ` — ${tagline}` : ""}`);
  io.out(`Distro: ${file}`);

  let groups: string[] | undefined = values.group?.flatMap((g) => g.split(",")).map((g) => g.trim())
    .filter((g) => g !== "");
  if (groups === undefined && prompter && distro.group.length > 0) {
    groups = await prompter.multiSelect(
      "Choose provider groups:",
      distro.group.map((g) => ({
        name: g.name,
        checked: g.default,
        ...(g.description ? { description: g.description } : {}),
      })),
    );
  }
  const plan = planDistro(distro, groups !== undefined ? { groups } : {});
  if (distro.group.length > 0) io.out(`Groups: ${plan.groups.join(", ") || "none"}`);

  const vars = await askVariables(plan, given, {
    prompter,
    stored: await storedVariables(plan, target),
  });
  const confirm = async (q: DistroQuestion): Promise<boolean> => {
    if (!values.yes && !prompter) return false; // the progress line reports it
    if (q.kind === "export-conflict") {
      const list = q.conflicts.map((c) => `${c.id} (${c.capsule})`).join(", ");
      const others = [...new Set(q.conflicts.map((c) => c.capsule))].join(", ");
      io.err(`${q.capsule} exports what installed capsules already export: ${list}`);
      if (values.yes) {
        io.err(`Replacing ${others} (--yes)`);
        return true;
      }
      return await prompter!.confirm(`Replace ${others}?`);
    }
    io.err(
      `Lock mismatch: ${q.capsule} is installed as ${
        q.installed ?? "no module"
      } but Distro.lock pins ${q.locked ?? "no module"}`,
    );
    if (values.yes) {
      io.err(`Reinstalling the locked ${q.capsule} (--yes)`);
      return true;
    }
    return await prompter!.confirm(`Reinstall the locked ${q.capsule}?`);
  };
  const report = await installDistro(plan, {
    home: target.home,
    principal: target.principal,
    clock: systemClock,
    variables: vars,
    update: values.update === true,
    confirm,
    resolveEnv: (manifest, env) => askEnv(manifest, env, { prompter }),
    build: (dir) => buildInPlace(dir, io),
    onProgress: (p) => {
      if (p.phase !== "done" || p.outcome === undefined) return;
      const o = p.outcome;
      const line = `[${p.index}/${p.total}] installing ${p.name}${
        o.version ? ` ${o.version}` : ""
      } … ${outcomeWord(o)}`;
      if (o.status === "failed" || o.status === "mismatch") io.err(line);
      else io.out(line);
    },
  });

  for (const name of report.leftover) {
    io.out(
      `note: ${name} was part of this distro's last install but not of this selection; it stays installed (astrid capsule remove ${name})`,
    );
  }
  const changed = report.outcomes.some((o) => o.status === "installed" || o.status === "updated");
  if (report.ok) {
    io.out(
      report.lockWritten
        ? `Wrote ${report.lockPath} (${report.lock?.capsule.length ?? 0} capsules pinned)`
        : `${report.lockPath} is up to date`,
    );
  } else {
    const bad = report.outcomes.filter((o) => o.status === "failed").length;
    const mism = report.outcomes.filter((o) => o.status === "mismatch").length;
    const why = [
      bad ? `${bad} capsule${bad === 1 ? "" : "s"} failed` : "",
      mism
        ? `${mism} lock mismatch${
          mism === 1 ? "" : "es"
        } left as installed (rerun with --yes to reinstall the locked versions)`
        : "",
    ].filter((s) => s !== "").join("; ");
    io.err(`error: ${report.lockPath} not written: ${why}`);
  }
  if (changed) await reloadDaemon(target.home, io);
  return report.ok ? 0 : 1;
}

/**
 * Variables whose every use already has a stored `[env]` value for the principal (an earlier
 * init): a re-run neither asks for them again nor needs them as `--var`.
 */
async function storedVariables(
  plan: DistroPlan,
  target: CapsuleTarget,
): Promise<Set<string>> {
  const out = new Set<string>();
  for (const v of plan.variables) {
    let all = true;
    for (const c of plan.capsules) {
      const keys = Object.entries(c.env).filter(([, t]) => templateVariables(t).includes(v.name));
      if (keys.length === 0) continue;
      const stored = await readCapsuleEnv(target.home, {
        principal: target.principal,
        capsule: c.name,
      });
      if (keys.some(([k]) => !Object.hasOwn(stored, k))) all = false;
    }
    if (all) out.add(v.name);
  }
  return out;
}

async function askVariables(
  plan: DistroPlan,
  given: Record<string, string>,
  options: { prompter: Prompter | undefined; stored: ReadonlySet<string> },
): Promise<Record<string, string>> {
  const { prompter, stored } = options;
  const answers: Record<string, string> = { ...given };
  if (prompter) {
    for (const v of plan.variables) {
      if (Object.hasOwn(answers, v.name) || stored.has(v.name)) continue;
      const answer = await prompter.text(`${v.name}${v.description ? ` (${v.description})` : ""}`, {
        ...(v.default !== undefined ? { default: v.default } : {}),
        secret: v.secret,
        required: v.required,
      });
      if (answer !== "") answers[v.name] = answer;
    }
  }
  const { values, missing: unset } = resolveVariables(plan, answers);
  const missing = unset.filter((v) => !stored.has(v.name));
  if (missing.length > 0) {
    throw new DistroError(
      DistroCode.DISTRO_VARIABLE_INVALID,
      `Distro ${JSON.stringify(plan.distro.distro.name)} needs ${
        missing.map((v) => `${v.name}${v.description ? ` (${v.description})` : ""}`).join(", ")
      }: pass ${missing.map((v) => `--var ${v.name}=VALUE`).join(" ")}${
        prompter ? "" : " (no terminal to ask on)"
      }`,
      { data: { name: missing[0].name, known: plan.variables.map((v) => v.name) } },
    );
  }
  return values;
}

async function askEnv(
  manifest: CapsuleManifest,
  env: EnvValues,
  options: { prompter: Prompter | undefined },
): Promise<EnvValues> {
  const prompter = options.prompter;
  const missing = missingEnv(manifest, env);
  const name = manifest.package.name;
  if (!prompter) {
    throw new DistroError(
      DistroCode.DISTRO_CAPSULE_INVALID,
      `Capsule ${JSON.stringify(name)} needs [env] ${
        missing.map((f) => f.name).join(", ")
      }, which the distro does not fill: run astrid init in a terminal, or install it first with astrid capsule install <source> ${
        missing.map((f) => `--env ${f.name}=VALUE`).join(" ")
      }`,
      { data: { name, field: "env" } },
    );
  }
  const out: Record<string, string | readonly string[]> = { ...env };
  for (const f of missing) {
    const answer = f.type === "select"
      ? await prompter.select(`${name}: ${f.name}`, f.options ?? [])
      : await prompter.text(`${name}: ${f.name}${f.description ? ` (${f.description})` : ""}`, {
        secret: f.type === "secret",
        required: true,
      });
    out[f.name] = parseEnvText(f, answer);
  }
  return out;
}
