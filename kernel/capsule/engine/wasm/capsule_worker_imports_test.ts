import assert from "node:assert/strict";

/** The worker script: code that runs beside guest code, with no permissions. */
const WORKER = new URL("./capsule_worker.ts", import.meta.url);
const ROOT = new URL("../../../../", import.meta.url);

/** Folders and schemes the worker must never reach, with why. */
const FORBIDDEN: [RegExp, string][] = [
  [/^node:/, "node: built-ins (fs, net, child_process…) are host powers"],
  [/^npm:|^jsr:|^https?:/, "packages: the worker imports only reviewed local files"],
  [/\/kernel\/storage\//, "the store"],
  [/\/kernel\/crypto\//, "keys and signing"],
  [/\/kernel\/audit\//, "the audit log"],
  [/\/kernel\/security\//, "the security pipeline"],
  [/\/kernel\/home\//, "$ASTRID_HOME"],
  [/\/kernel\/daemon\//, "the daemon"],
  [/\/kernel\/vfs\//, "the VFS"],
  [/\/kernel\/capabilities\//, "capability tokens"],
];

const SPECIFIER = [
  /(?:^|[\s;}])(?:import|export)\s[^'"]*?\sfrom\s*["']([^"']+)["']/g,
  /(?:^|[\s;])import\s*["']([^"']+)["']/g,
  /import\(\s*["']([^"']+)["']\s*\)/g,
];

/** Every module the worker script reaches through static (and literal dynamic) imports. */
async function importGraph(root: URL): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  const pending = [root.href];
  while (pending.length > 0) {
    const href = pending.pop()!;
    if (graph.has(href)) continue;
    if (!href.startsWith("file:")) {
      graph.set(href, []);
      continue;
    }
    const source = await Deno.readTextFile(new URL(href));
    const deps: string[] = [];
    for (const re of SPECIFIER) {
      for (const m of source.matchAll(re)) {
        const spec = m[1];
        deps.push(spec.startsWith(".") || spec.startsWith("/") ? new URL(spec, href).href : spec);
      }
    }
    graph.set(href, deps);
    pending.push(...deps);
  }
  return graph;
}

Deno.test("capsule_worker.ts never imports storage, keys, audit, security, home or node:", async (t) => {
  const graph = await importGraph(WORKER);

  await t.step("the walk found the worker's own modules", () => {
    const names = [...graph.keys()].map((h) => h.replace(ROOT.href, ""));
    assert.ok(names.includes("kernel/capsule/engine/wasm/host_channel.ts"), names.join(", "));
    assert.ok(names.includes("host_abi/encoding.ts"), names.join(", "));
  });

  await t.step("no module in the graph is forbidden", () => {
    for (const [href, deps] of graph) {
      for (const [re, why] of FORBIDDEN) {
        assert.ok(!re.test(href), `the worker reaches ${href} (${why})`);
      }
      for (const dep of deps) {
        assert.ok(
          dep.startsWith("file:"),
          `${href} imports "${dep}": the worker imports only local files`,
        );
      }
    }
  });

  await t.step("deno info agrees with the walk", async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", WORKER.pathname],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.ok(out.success);
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: { specifier: string }[];
    };
    assert.deepEqual(info.modules.map((m) => m.specifier).sort(), [...graph.keys()].sort());
  });
});

Deno.test("importGraph() sees static, re-export and dynamic imports (the wall test can fail)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/a.ts`,
      'import { x } from "./b.ts";\nexport * from "node:fs";\nawait import("npm:left-pad");\n',
    );
    const storage = new URL("kernel/storage/mod.ts", ROOT).href;
    await Deno.writeTextFile(`${dir}/b.ts`, `import "${storage}";\nexport const x = 1;\n`);
    const graph = await importGraph(new URL(`file://${dir}/a.ts`));
    const all = [...graph.keys()];
    assert.ok(all.includes("node:fs"), all.join(", "));
    assert.ok(all.includes("npm:left-pad"), all.join(", "));
    assert.ok(all.some((h) => /\/kernel\/storage\/mod\.ts$/.test(h)), all.join(", "));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
