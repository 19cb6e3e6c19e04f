import assert from "node:assert/strict";
import { serverEnv, visibleRoots } from "./launcher.ts";

Deno.test("serverEnv() keeps only the inherited variables, then the spec's", () => {
  const source = new Map([
    ["PATH", "/bin"],
    ["HOME", "/home/me"],
    ["AWS_SECRET_ACCESS_KEY", "x"],
    ["SHELL", "() { evil; }"],
  ]);
  assert.deepEqual(serverEnv({ A: "1", HOME: "/srv" }, source), {
    PATH: "/bin",
    HOME: "/srv",
    A: "1",
  });
});

Deno.test("visibleRoots() shows a server's own files, not the system directories", () => {
  assert.deepEqual(
    visibleRoots([
      { path: "/work/app/node_modules/.deno/x/node_modules/@s/pkg/dist/index.js", kind: "script" },
      { path: "/usr/bin/node", kind: "program" },
      { path: "/home/me/.nvm/versions/node/v20/bin/node", kind: "program" },
      { path: "/srv/mcp/server.py", kind: "script" },
      { path: "/home/me/.astrid/home/default/.local/capsules/files", kind: "dir" },
    ]),
    [
      "/work/app/node_modules",
      "/home/me/.nvm/versions/node/v20",
      "/srv/mcp",
      "/home/me/.astrid/home/default/.local/capsules/files",
    ],
  );
});
