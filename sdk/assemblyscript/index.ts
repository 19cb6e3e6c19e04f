/**
 * The Astrid guest SDK for AssemblyScript: `import { kv, log, Result } from "@astrid/sdk"`.
 *
 * Modules mirror a standard library (`fs`, `net`, `process`, `env`, `time`, `log`) plus
 * Astrid's own (`ipc`, `kv`, `http`, `hooks`, `uplink`, `identity`, `approval`,
 * `runtime`, `random`, `security`). Every call that can fail returns a {@link Result} or an
 * {@link Outcome} (AssemblyScript cannot catch exceptions). Entry points are declared with
 * decorators the capsule compiler turns into exports: `@tool`, `@command`,
 * `@interceptor("topic", priority)`, `@install`, `@upgrade`, `@run`.
 * Reference: `docs/capsule_authoring.md`.
 */
import * as approval from "./approval";
import * as env from "./env";
import * as fs from "./fs";
import * as hooks from "./hooks";
import * as http from "./http";
import * as identity from "./identity";
import * as ipc from "./ipc";
import * as kv from "./kv";
import * as log from "./log";
import * as net from "./net";
import * as process from "./process";
import * as random from "./random";
import * as runtime from "./runtime";
import * as security from "./security";
import * as time from "./time";
import * as uplink from "./uplink";

export {
  approval, env, fs, hooks, http, identity, ipc, kv, log, net, process, random, runtime, security,
  time, uplink,
};
export { Status, statusName } from "./status";
export { HostError, Outcome, Result } from "./result";
export { Intercept } from "./intercept";
export { Invocation } from "./internal/entry";
export { JSON } from "json-as";
