/**
 * What capsule authors use: the AssemblyScript guest SDK (`sdk/assemblyscript/`, compiled into
 * capsules as the package `@astrid/sdk`, never imported by Deno code), the capsule compiler and
 * scaffolder behind `astrid build` and `astrid capsule new` (`sdk/build/`), and the test kernel
 * behind `astrid capsule test` (`sdk/testing/`, imported on its own: it boots the daemon).
 * `docs/capsule_authoring.md` is the guide.
 *
 * @module
 */
export {
  buildCapsule,
  BuildError,
  type BuildOptions,
  type BuildResult,
  type EntryPoint,
  scaffoldCapsule,
  TEMPLATE_NAMES,
} from "./build/mod.ts";
