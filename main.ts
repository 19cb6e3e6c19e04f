/**
 * The one entry point of `astrid`: the CLI, the daemon (`astrid daemon`) and the capsule
 * compiler (`astrid build`) all start here. Each verb is loaded lazily so that a quick verb
 * pays only for what it imports.
 *
 * @module
 */
import { runCli } from "./cli/mod.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}
