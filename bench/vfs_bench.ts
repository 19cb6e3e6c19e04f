/**
 * VFS throughput: overlay (and host) reads and writes of 4 KiB and 64 KiB files three
 * directories deep, each group beside the direct `Deno.readFile`/`Deno.writeFile` of the same
 * bytes measured in the same run.
 *
 * Goal (issue 4): overlay read/write throughput ≥ 60% of direct, i.e. an overlay call costs at
 * most 1.67× the direct call (deno bench prints "x slower than" the baseline: ≤ 1.67×).
 *
 * Run: `deno bench -A bench/vfs_bench.ts`
 *
 * @module
 */
import { join } from "node:path";
import { HostVfs, OverlayVfs, resolveVfsPath } from "../kernel/vfs/mod.ts";

const base = await Deno.makeTempDir({ prefix: "vfs_bench_" });
const ws = join(base, "workspace");
const direct = join(base, "direct");
await Deno.mkdir(join(ws, "src/data"), { recursive: true });
await Deno.mkdir(join(direct, "src/data"), { recursive: true });
globalThis.addEventListener("unload", () => Deno.removeSync(base, { recursive: true }));

const SIZES = [["4 KiB", 4096], ["64 KiB", 65536]] as const;
const overlay = await OverlayVfs.open(ws, join(base, "session"));
const host = await HostVfs.open(direct);

for (const [label, size] of SIZES) {
  const bytes = crypto.getRandomValues(new Uint8Array(size));
  const name = `src/data/f${size}.bin`;
  await Deno.writeFile(join(ws, name), bytes); // in the workspace: read through the lower layer
  await Deno.writeFile(join(direct, name), bytes);
  await overlay.writeFile(`src/data/up${size}.bin`, bytes); // in the upper layer
  await overlay.writeFile(`src/data/w${size}.bin`, bytes);

  Deno.bench(`read ${label}: Deno.readFile (direct)`, {
    group: `read ${label}`,
    baseline: true,
  }, async () => {
    await Deno.readFile(join(direct, name));
  });
  Deno.bench(`read ${label}: OverlayVfs, workspace file (goal ≥ 60% of direct)`, {
    group: `read ${label}`,
  }, async () => {
    await overlay.readFile(name);
  });
  Deno.bench(`read ${label}: OverlayVfs, upper file (goal ≥ 60% of direct)`, {
    group: `read ${label}`,
  }, async () => {
    await overlay.readFile(`src/data/up${size}.bin`);
  });
  Deno.bench(`read ${label}: HostVfs`, { group: `read ${label}` }, async () => {
    await host.readFile(name);
  });

  Deno.bench(`write ${label}: Deno.writeFile (direct)`, {
    group: `write ${label}`,
    baseline: true,
  }, async () => {
    await Deno.writeFile(join(direct, `src/data/w${size}.bin`), bytes);
  });
  Deno.bench(`write ${label}: OverlayVfs (goal ≥ 60% of direct)`, {
    group: `write ${label}`,
  }, async () => {
    await overlay.writeFile(`src/data/w${size}.bin`, bytes);
  });
  Deno.bench(`write ${label}: HostVfs`, { group: `write ${label}` }, async () => {
    await host.writeFile(`src/data/h${size}.bin`, bytes);
  });
}

// A first write of a new file: two layers looked up, nothing cached yet for the name.
const small = new Uint8Array(4096);
let n = 0;
let m = 0;
Deno.bench("new file 4 KiB: Deno.writeFile (direct)", {
  group: "new file 4 KiB",
  baseline: true,
}, async () => {
  await Deno.writeFile(join(direct, `src/data/n${n++}.bin`), small);
});
Deno.bench(
  "new file 4 KiB: OverlayVfs (created in upper/)",
  { group: "new file 4 KiB" },
  async () => {
    await overlay.writeFile(`src/data/n${m++}.bin`, small);
  },
);

// The choke point itself, against the one lstat it cannot avoid.
const deep = join(direct, "src/data/f4096.bin");
Deno.bench("resolve 3 components: Deno.lstatSync (one lstat)", {
  group: "resolve",
  baseline: true,
}, () => {
  Deno.lstatSync(deep);
});
Deno.bench("resolve 3 components: resolveVfsPath", { group: "resolve" }, () => {
  resolveVfsPath("workspace://src/data/f4096.bin", { root: direct, scheme: "workspace" });
});
Deno.bench(
  "resolve 3 components: OverlayVfs.resolve (two layers)",
  { group: "resolve" },
  async () => {
    await overlay.resolve("src/data/f4096.bin");
  },
);
