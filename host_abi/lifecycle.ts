/**
 * The `lifecycle` host functions — `elicit`, `has_secret`, `signal_ready`, `get_caller`,
 * `get_config` — and the kernel parts behind them: {@link BusElicitor} (asks the user of the
 * calling session over the bus) and {@link EnvFileConfig} (a capsule's `[env]` values for a
 * principal, from `home/{principal}/.config/env/<capsule>.env.json`, over the operator's values
 * for a capsule the operator installed for everyone).
 *
 * `[env]` values: `capsule install` asks each field and writes the answers, mode 0600, to
 * `home/{principal}/.config/env/<capsule>.env.json` as one JSON object `{ "NAME": value }`
 * (a string; a list of strings for `array`). `home://.config` is reserved in the VFS, so no
 * capsule reads that file itself. Values are layered per field: the acting principal's own
 * file, then — for a capsule the operator installed for every principal (system scope) — the
 * operator's file `home/default/.config/env/<capsule>.env.json`, then the manifest default
 * ({@link envFileLayers}); principal- and workspace-scope capsules read only the acting
 * principal's file.
 * A `secret` field's value reaches only the capsule that declares it (its own `get_config`);
 * `has_secret` answers only whether it is set, and `get_config("")` (all fields) leaves
 * secrets out. A name the calling capsule does not declare is `NOT_FOUND`, so a capsule can
 * never name another capsule's field.
 *
 * Fails with `NOT_FOUND` (undeclared field), `UNAVAILABLE` (no interactive frontend for
 * `elicit`, no registry for `signal_ready`), `TIMEOUT`, `CANCELLED` (the invocation ended or
 * the user declined), `INVALID_ARGUMENT`.
 *
 * @module
 */
import { join } from "node:path";
import type { EnvField } from "../kernel/capsule/mod.ts";
import type {
  BusMessage,
  JsonValue,
  PayloadInput,
  PublishOptions,
  PublishResult,
  RoutedSubscription,
  SubscribeOptions,
} from "../kernel/events/mod.ts";
import { DEFAULT_PRINCIPAL, type PrincipalId } from "../kernel/identity/mod.ts";
import {
  type CapsuleConfigView,
  defineHostFunction,
  type HostCallContext,
  type HostFunctionRow,
  serviceKey,
} from "./host_function.ts";
import { callDeadline, hostErrorFromBus, jsonBody, u32Body } from "./ipc.ts";
import { HostCallError, HostStatus } from "./status.ts";

/** The topic prefix of elicitation requests: `astrid.v1.elicit.<id>`. */
export const ELICIT_TOPIC_PREFIX = "astrid.v1.elicit";
/** The topic prefix of answers: `astrid.v1.elicit.response.<id>`. */
export const ELICIT_RESPONSE_PREFIX = "astrid.v1.elicit.response";
/** `elicit` waits this long when the request names no `timeout_ms`. */
export const DEFAULT_ELICIT_TIMEOUT_MS = 5 * 60_000;
/** The longest `elicit` wait. */
export const MAX_ELICIT_TIMEOUT_MS = 30 * 60_000;
/** The longest elicitation message, characters. */
export const MAX_ELICIT_MESSAGE_CHARS = 4096;
/** The most choices of a `select` elicitation. */
export const MAX_ELICIT_OPTIONS = 64;

/** Kinds of elicitation: free text, hidden text, one of `options`, yes/no. */
export const ELICIT_TYPES = ["text", "secret", "select", "confirm"] as const;
/** One of {@link ELICIT_TYPES}. */
export type ElicitType = typeof ELICIT_TYPES[number];

/** What a capsule asks the user. */
export interface ElicitQuestion {
  /** The prompt shown. */
  readonly message: string;
  /** The kind of answer. */
  readonly type: ElicitType;
  /** The choices of a `select`. */
  readonly options?: readonly string[];
  /** A default answer the frontend may prefill. */
  readonly default?: string;
}

/** The user's answer: a string (`text`, `secret`, `select`) or a boolean (`confirm`). */
export type ElicitValue = string | boolean;

/** Where and for whom to ask. */
export interface ElicitScope {
  /** The principal whose frontends are asked (the invocation's). */
  readonly principal: string;
  /** The session whose frontends are asked. */
  readonly session: string;
  /** The capsule asking (shown to the user). */
  readonly capsule: string;
  /** Aborting withdraws the question (timeout, the invocation ended). */
  readonly signal: AbortSignal;
  /** When the question expires, ms since the epoch (shown to the user). */
  readonly expiresAt: number;
}

/** The kernel's elicitation service, as `elicit` uses it. */
export interface ElicitationService {
  /**
   * Asks `question` of the interactive frontends of `scope`'s (principal, session) and
   * resolves with the first valid answer. Throws `UNAVAILABLE` when none is attached,
   * `CANCELLED` when the user declined, the signal's reason when it aborts.
   */
  elicit(question: ElicitQuestion, scope: ElicitScope): Promise<ElicitValue>;
}

/** The key the registry provides the {@link ElicitationService} under. */
export const ELICITATION_SERVICE = serviceKey<ElicitationService>("elicitation");

/** What {@link BusElicitor} needs of the bus (structurally `EventBus`). */
export interface ElicitBus {
  /** Publishes as the kernel. */
  publish(topic: string, data: PayloadInput, options: PublishOptions): Promise<PublishResult>;
  /** Subscribes as the kernel. */
  subscribe(pattern: string, options?: SubscribeOptions): RoutedSubscription;
}

/** Who can answer for a session (structurally `ApprovalBroker.reach`). */
export type ElicitReach = (principal: string, session: string) => { interactive: number };

/** Options of {@link BusElicitor}. */
export interface BusElicitorOptions {
  /** How many interactive frontends are attached to a (principal, session). */
  reach: ElicitReach;
  /** Stamps `requested_at`. */
  now?: () => number;
}

const ELICIT_SOURCE = { kind: "kernel", name: "elicit" } as const;

/**
 * Elicitation over the bus. For each question it subscribes (scoped to the principal) to
 * `astrid.v1.elicit.response.<id>`, publishes the question on `astrid.v1.elicit.<id>` for the
 * principal with the session in the payload (so only that session's frontends show it), and
 * takes the first answer of that principal whose `session` (when present) is the same and
 * whose value fits the question; anything else is ignored. When the question ends without an
 * answer it publishes `{ "cancelled": true, "reason": … }` on the response topic so every
 * frontend closes its prompt.
 *
 * Payloads: question `{ id, capsule, session, message, type, options?, default?,
 * requested_at, expires_at }`; answer `{ value }` or `{ cancelled: true, reason? }`.
 */
export class BusElicitor implements ElicitationService {
  readonly #bus: ElicitBus;
  readonly #reach: ElicitReach;
  readonly #now: () => number;

  /** Creates an elicitor publishing on `bus`. */
  constructor(bus: ElicitBus, options: BusElicitorOptions) {
    this.#bus = bus;
    this.#reach = options.reach;
    this.#now = options.now ?? Date.now;
  }

  /** See {@link ElicitationService.elicit}. */
  async elicit(question: ElicitQuestion, scope: ElicitScope): Promise<ElicitValue> {
    if (this.#reach(scope.principal, scope.session).interactive === 0) {
      throw new HostCallError(
        HostStatus.UNAVAILABLE,
        `Cannot ask the user: no interactive frontend is attached to session "${scope.session}"`,
      );
    }
    scope.signal.throwIfAborted();
    const id = randomId();
    const principal = scope.principal as PrincipalId;
    const responseTopic = `${ELICIT_RESPONSE_PREFIX}.${id}`;
    const ctx = { principal, source: ELICIT_SOURCE };
    const sub = this.#bus.subscribe(responseTopic, { principal });
    let answered = false;
    try {
      await this.#bus.publish(`${ELICIT_TOPIC_PREFIX}.${id}`, {
        id,
        capsule: scope.capsule,
        session: scope.session,
        message: question.message,
        type: question.type,
        ...(question.options === undefined ? {} : { options: [...question.options] }),
        ...(question.default === undefined ? {} : { default: question.default }),
        requested_at: this.#now(),
        expires_at: scope.expiresAt,
      }, { ctx });
      for (;;) {
        const msg = await sub.recv({ signal: scope.signal });
        const answer = readAnswer(msg, question, scope.session);
        if (answer === undefined) continue;
        answered = true;
        if (answer.cancelled) {
          throw new HostCallError(
            HostStatus.CANCELLED,
            `The user declined to answer${answer.reason ? `: ${answer.reason}` : ""}`,
          );
        }
        return answer.value;
      }
    } finally {
      sub.close();
      if (!answered) {
        const reason = scope.signal.aborted ? "withdrawn" : "failed";
        this.#bus.publish(responseTopic, { cancelled: true, reason }, { ctx }).catch(() => {});
      }
    }
  }
}

type Answer = { cancelled: true; reason?: string } | { cancelled: false; value: ElicitValue };

/** The answer `msg` carries for `question`, or undefined when it is not a valid one. */
function readAnswer(
  msg: BusMessage,
  question: ElicitQuestion,
  session: string,
): Answer | undefined {
  if (msg.payload.kind !== "json") return undefined;
  const p = msg.payload.value;
  if (typeof p !== "object" || p === null || Array.isArray(p)) return undefined;
  const body = p as { readonly [k: string]: JsonValue };
  if (body.session !== undefined && body.session !== session) return undefined;
  if (msg.source.kind === "kernel" && msg.source.name === ELICIT_SOURCE.name) return undefined;
  if (body.cancelled === true) {
    return {
      cancelled: true,
      reason: typeof body.reason === "string" ? body.reason.slice(0, 256) : undefined,
    };
  }
  const v = body.value;
  if (question.type === "confirm") {
    return typeof v === "boolean" ? { cancelled: false, value: v } : undefined;
  }
  if (typeof v !== "string") return undefined;
  if (question.type === "select" && !(question.options ?? []).includes(v)) return undefined;
  return { cancelled: false, value: v };
}

function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Arguments of `elicit`. */
export interface ElicitArgs {
  /** The question. */
  readonly question: ElicitQuestion;
  /** How long to wait, ms. */
  readonly timeoutMs: number;
}

function bad(message: string): HostCallError {
  return new HostCallError(HostStatus.INVALID_ARGUMENT, message, { field: "request" });
}

/** Checks an `elicit` request object. */
function parseQuestion(value: unknown): ElicitArgs {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw bad(`Field "request" must be a JSON object`);
  }
  const r = value as Record<string, unknown>;
  const message = r.message;
  if (
    typeof message !== "string" || message.length === 0 ||
    message.length > MAX_ELICIT_MESSAGE_CHARS
  ) {
    throw bad(`"message" must be a string of 1 to ${MAX_ELICIT_MESSAGE_CHARS} characters`);
  }
  const type = r.type ?? "text";
  if (!ELICIT_TYPES.includes(type as ElicitType)) {
    throw bad(`"type" is "${String(type).slice(0, 32)}": use ${ELICIT_TYPES.join(", ")}`);
  }
  let options: string[] | undefined;
  if (type === "select") {
    const o = r.options;
    if (
      !Array.isArray(o) || o.length === 0 || o.length > MAX_ELICIT_OPTIONS ||
      !o.every((x) => typeof x === "string" && x.length > 0 && x.length <= 256)
    ) {
      throw bad(
        `"options" of a select must be 1 to ${MAX_ELICIT_OPTIONS} strings of 1 to 256 characters`,
      );
    }
    options = o as string[];
  } else if (r.options !== undefined) {
    throw bad(`"options" is only for type "select"`);
  }
  const def = r.default;
  if (def !== undefined && (typeof def !== "string" || def.length > 4096)) {
    throw bad(`"default" must be a string of at most 4096 characters`);
  }
  if (type === "secret" && def !== undefined) throw bad(`A secret elicitation has no "default"`);
  const t = r.timeout_ms ?? DEFAULT_ELICIT_TIMEOUT_MS;
  if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 1 || t > MAX_ELICIT_TIMEOUT_MS) {
    throw bad(`"timeout_ms" is ${String(t)}: use 1 to ${MAX_ELICIT_TIMEOUT_MS}`);
  }
  return {
    question: {
      message,
      type: type as ElicitType,
      ...(options === undefined ? {} : { options }),
      ...(def === undefined ? {} : { default: def as string }),
    },
    timeoutMs: t,
  };
}

/**
 * `elicit(request)`: asks the user of the calling session a question and waits for the answer.
 * `request` is `{ message, type?, options?, default?, timeout_ms? }`; the reply is
 * `{ "value": <string or boolean> }` (JSON).
 */
export const elicit: HostFunctionRow = defineHostFunction<ElicitArgs>({
  name: "elicit",
  subsystem: "lifecycle",
  doc: "Asks the user of the calling session for input and waits (headless: UNAVAILABLE)",
  capabilities: [],
  parse(req) {
    const value = req.json("request");
    req.end();
    return parseQuestion(value);
  },
  gate: () => null,
  async run(args, call) {
    const service = call.services.get(ELICITATION_SERVICE);
    const deadline = callDeadline(call, args.timeoutMs);
    try {
      const value = await service.elicit(args.question, {
        principal: call.principal,
        session: call.session.id,
        capsule: call.capsule,
        signal: deadline.signal,
        expiresAt: call.clock.now() + args.timeoutMs,
      });
      return jsonBody({ value });
    } catch (err) {
      throw hostErrorFromBus(deadline.explain(err, "the user's answer"));
    } finally {
      deadline.clear();
    }
  },
});

/** The `[env]` field `name` the calling capsule declares; `NOT_FOUND` otherwise. */
function declaredField(call: HostCallContext, name: string): EnvField {
  const field = call.manifest.env.find((f) => f.name === name);
  if (field === undefined) {
    throw new HostCallError(
      HostStatus.NOT_FOUND,
      `Capsule "${call.capsule}" declares no [env] field "${name.slice(0, 64)}"`,
    );
  }
  return field;
}

/**
 * `has_secret(name)`: whether the capsule's `secret` field `name` has a value for the calling
 * principal — `u32le` 1 or 0; never the value.
 */
export const hasSecret: HostFunctionRow = defineHostFunction<{ name: string }>({
  name: "has_secret",
  subsystem: "lifecycle",
  doc: "Says whether one of the capsule's secret [env] fields is set (never its value)",
  capabilities: [],
  parse(req) {
    const name = req.string("name");
    req.end();
    return { name };
  },
  gate: () => null,
  async run({ name }, call) {
    const field = declaredField(call, name);
    if (field.type !== "secret") {
      throw new HostCallError(
        HostStatus.INVALID_ARGUMENT,
        `[env] field "${name}" is of type "${field.type}", not "secret": read it with get_config`,
        { field: "name" },
      );
    }
    return u32Body((await call.services.config.hasSecret(name)) ? 1 : 0);
  },
});

/** Tells the registry a capsule is ready (its run loop or uplink is up). */
export interface CapsuleReadiness {
  /** Marks `capsule` ready; called once or more. */
  ready(capsule: string): void;
}

/** The key the registry provides {@link CapsuleReadiness} under. */
export const READINESS_SERVICE = serviceKey<CapsuleReadiness>("capsule readiness");

/** `signal_ready()`: the capsule (a run loop, an uplink) tells the kernel it is ready. */
export const signalReady: HostFunctionRow = defineHostFunction<void>({
  name: "signal_ready",
  subsystem: "lifecycle",
  doc: "Tells the kernel this capsule (run loop, uplink) is ready",
  capabilities: [],
  parse(req) {
    req.end();
  },
  gate: () => null,
  run(_args, call) {
    try {
      call.services.get(READINESS_SERVICE).ready(call.capsule);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  },
});

/** Where an invocation came from, when the registry knows (the bus message it handles). */
export interface InvocationOrigin {
  /** The publisher of the message: `<kind>:<name>`. */
  readonly source: string;
  /** The message's topic. */
  readonly topic: string;
}

/** The key the registry provides the {@link InvocationOrigin} of a call under (optional). */
export const INVOCATION_ORIGIN = serviceKey<InvocationOrigin>("invocation origin");

/** The message that triggered the call's invocation, when the kernel provides it. */
export function invocationOrigin(call: HostCallContext): InvocationOrigin | undefined {
  try {
    return call.services.get(INVOCATION_ORIGIN);
  } catch {
    return undefined;
  }
}

/** The topic prefix of model calls: `llm.v1.request.generate.<provider>`. */
const MODEL_CALL_PREFIX = "llm.v1.request.generate.";

/**
 * The kernel's record of the model calls its budget guard allowed and has not settled yet
 * (`LlmBudget` in `kernel/security`): the evidence that an invocation serves a metered call.
 */
export interface ModelCallLedger {
  /** True while the model call `requestId` of `principal` on route `provider` is metered. */
  metered(principal: string, requestId: string, options?: { readonly provider?: string }): boolean;
}

/**
 * True when the call's invocation serves a model call the budget guard allowed and has not
 * settled (see `NetRequestAction.modelCall`): it was triggered by
 * `llm.v1.request.generate.<provider>`, carries a request id, and `calls` says that call of the
 * principal on that route is metered now. The topic alone is never enough — the router's route
 * is not metered, and an interceptor ahead of the guard runs before it decided. No `calls` (the
 * kernel gave no ledger) → false.
 */
export function servesModelCall(
  call: HostCallContext,
  calls: ModelCallLedger | undefined,
): boolean {
  const topic = invocationOrigin(call)?.topic;
  if (calls === undefined || topic === undefined || !topic.startsWith(MODEL_CALL_PREFIX)) {
    return false;
  }
  const provider = topic.slice(MODEL_CALL_PREFIX.length);
  const requestId = call.requestId;
  if (provider === "" || provider.includes(".") || requestId === undefined || requestId === "") {
    return false;
  }
  return calls.metered(call.principal, requestId, { provider }) === true;
}

/**
 * `get_caller()`: `{ principal, capsule, session, workspace, request_id?, source?, topic? }`
 * (JSON) — who the invocation acts for, as the kernel stamped it.
 */
export const getCaller: HostFunctionRow = defineHostFunction<void>({
  name: "get_caller",
  subsystem: "lifecycle",
  doc: "Answers the invocation's principal, session, workspace and source",
  capabilities: [],
  parse(req) {
    req.end();
  },
  gate: () => null,
  run(_args, call) {
    const origin = invocationOrigin(call);
    return Promise.resolve(jsonBody({
      principal: call.principal,
      capsule: call.capsule,
      session: call.session.id,
      workspace: call.session.workspaceId,
      ...(call.requestId === undefined ? {} : { request_id: call.requestId }),
      ...(origin === undefined ? {} : { source: origin.source, topic: origin.topic }),
    }));
  },
});

/** A capsule's secret values, readable only by that capsule's own `get_config`. */
export interface CapsuleSecretView {
  /** The value of secret field `name`, or undefined when unset. */
  secret(name: string): Promise<string | undefined>;
}

/** The key the registry provides the calling capsule's {@link CapsuleSecretView} under. */
export const CAPSULE_SECRETS = serviceKey<CapsuleSecretView>("capsule secrets");

/**
 * `get_config(name)`: the value of the calling capsule's `[env]` field `name` for the calling
 * principal (a JSON string, a JSON array for `array`, `null` when unset without default); with
 * `name = ""`, every non-secret field as one JSON object.
 */
export const getConfig: HostFunctionRow = defineHostFunction<{ name: string }>({
  name: "get_config",
  subsystem: "lifecycle",
  doc: "Reads the capsule's own [env] values (secrets only of the capsule that declares them)",
  capabilities: [],
  parse(req) {
    const name = req.string("name");
    req.end();
    return { name };
  },
  gate: () => null,
  async run({ name }, call) {
    if (name === "") {
      const all: Record<string, JsonValue> = {};
      for (const f of call.manifest.env) {
        if (f.type === "secret") continue;
        all[f.name] = toJson(await call.services.config.get(f.name));
      }
      return jsonBody(all);
    }
    const field = declaredField(call, name);
    if (field.type !== "secret") return jsonBody(toJson(await call.services.config.get(name)));
    const value = await call.services.get(CAPSULE_SECRETS).secret(name);
    return jsonBody(value ?? null);
  },
});

function toJson(value: string | readonly string[] | undefined): JsonValue {
  return value === undefined ? null : typeof value === "string" ? value : [...value];
}

/** The `lifecycle` rows, in table order. */
export const LIFECYCLE_FUNCTIONS: readonly HostFunctionRow[] = [
  elicit,
  hasSecret,
  signalReady,
  getCaller,
  getConfig,
];

/** The file holding `capsule`'s `[env]` values for `principal` under the home root. */
export function envFilePath(homeRoot: string, principal: string, capsule: string): string {
  return join(homeRoot, "home", principal, ".config", "env", `${capsule}.env.json`);
}

/** Whose `[env]` values a capsule reads: one capsule, acting for one principal. */
export interface EnvReader {
  /** The acting principal (the invocation's). */
  readonly principal: string;
  /** The capsule's name. */
  readonly capsule: string;
  /**
   * True when the operator installed the capsule for every principal (system scope:
   * `home/default/.local/capsules/`); then the operator's values serve principals without
   * their own.
   */
  readonly operatorInstalled: boolean;
}

/**
 * The `[env]` files `reader` sees, most specific first: the acting principal's own
 * ({@link envFilePath}), then — for an operator-installed (system-scope) capsule acting for
 * another principal — the operator's, `home/default/.config/env/<capsule>.env.json`, the file
 * the operator's install wrote. Principal- and workspace-scope capsules read only the acting
 * principal's file.
 */
export function envFileLayers(homeRoot: string, reader: EnvReader): string[] {
  const own = envFilePath(homeRoot, reader.principal, reader.capsule);
  if (!reader.operatorInstalled || reader.principal === DEFAULT_PRINCIPAL) return [own];
  return [own, envFilePath(homeRoot, DEFAULT_PRINCIPAL, reader.capsule)];
}

/**
 * A capsule's `[env]` for one principal, read from its layers ({@link envFileLayers}) on every
 * call (so an install or reconfigure is seen at once): a field takes its value from the first
 * file that holds it, else its manifest default; a secret only from the first file that
 * exists. Serves `services.config`
 * ({@link CapsuleConfigView}: non-secret values, whether a secret is set) and
 * {@link CapsuleSecretView} for the declaring capsule (secrets layer the same way, and still
 * reach only the capsule this view belongs to). A missing file means no values; a malformed one
 * is an error (never silently empty).
 */
export class EnvFileConfig implements CapsuleConfigView, CapsuleSecretView {
  readonly #paths: readonly string[];
  readonly #fields: ReadonlyMap<string, EnvField>;

  /** Reads `paths` (one file, or layers most specific first) for the manifest's `fields`. */
  constructor(paths: string | readonly string[], fields: readonly EnvField[]) {
    this.#paths = typeof paths === "string" ? [paths] : [...paths];
    this.#fields = new Map(fields.map((f) => [f.name, f]));
  }

  /** The value of non-secret field `name` (or its default); undefined for secrets and unknowns. */
  async get(name: string): Promise<string | readonly string[] | undefined> {
    const field = this.#fields.get(name);
    if (field === undefined || field.type === "secret") return undefined;
    return (await this.#value(name)) ?? field.default;
  }

  /** True when secret `name` has a non-empty value. */
  async hasSecret(name: string): Promise<boolean> {
    return (await this.secret(name)) !== undefined;
  }

  /**
   * The value of secret `name`, or undefined. A secret comes only from the most specific layer
   * that exists: once a principal keeps values of its own for the capsule, the operator's
   * secrets no longer serve it (else a principal's own `BASE_URL` would receive the operator's
   * `API_KEY`).
   */
  async secret(name: string): Promise<string | undefined> {
    if (this.#fields.get(name)?.type !== "secret") return undefined;
    for (const path of this.#paths) {
      const values = await readEnvFile(path);
      if (values === null) continue;
      const v = values[name];
      return typeof v === "string" && v !== "" ? v : undefined;
    }
    return undefined;
  }

  /** The value of `name` in the first layer that holds it. */
  async #value(name: string): Promise<string | readonly string[] | undefined> {
    for (const path of this.#paths) {
      const values = await readEnvFile(path);
      if (values !== null && Object.hasOwn(values, name)) return values[name];
    }
    return undefined;
  }
}

/** The values in the env file at `path`; null when there is none. */
async function readEnvFile(
  path: string,
): Promise<Record<string, string | readonly string[]> | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // The parser's message quotes the text, which may hold secrets: never pass it on.
    value = undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`Env file "${path}" must hold one JSON object of field values`);
  }
  const out: Record<string, string | readonly string[]> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === "string" || (Array.isArray(v) && v.every((x) => typeof x === "string"))) {
      out[k] = v;
    }
  }
  return out;
}
