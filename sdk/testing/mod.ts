/**
 * Testing capsules against the real kernel: {@link testCapsule} builds a capsule, installs it
 * into a temporary `ASTRID_HOME` and boots the daemon in-process, then calls its tools and
 * publishes on its bus. `astrid capsule test` maps the specifier `astrid/testing` here.
 *
 * @module
 */
export {
  type CallOptions,
  CapsuleHarness,
  messageJson,
  testBuildCacheDir,
  testCapsule,
  type TestCapsuleOptions,
  type ToolCallResult,
} from "./capsule_harness.ts";
