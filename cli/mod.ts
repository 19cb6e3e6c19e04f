/**
 * The terminal frontend: parses `astrid …` command lines and runs the verbs. Owns
 * presentation only; every privileged action goes through `kernel/`.
 *
 * @module
 */
export { helpText, runCli, type VerbRun } from "./run_cli.ts";
export { type CliIo, processIo } from "./io.ts";
export { CliCode, UsageError } from "./errors.ts";
