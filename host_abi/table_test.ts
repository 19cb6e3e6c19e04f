import assert from "node:assert/strict";
import { IN_WORKER_FUNCTIONS } from "../kernel/capsule/engine/wasm/mod.ts";
import { defineHostFunction, SUBSYSTEMS } from "./host_function.ts";
import {
  buildTable,
  HOST_FUNCTION_NAMES,
  HOST_FUNCTIONS_BY_SUBSYSTEM,
  HOST_TABLE,
  hostFunction,
  hostFunctionSpecs,
  PENDING_FUNCTIONS,
} from "./table.ts";

const DOC = new URL("../docs/host_abi.md", import.meta.url);

Deno.test("HOST_FUNCTION_NAMES lists the 51 functions of DESIGN §4 once each", () => {
  assert.equal(HOST_FUNCTION_NAMES.length, 51);
  assert.equal(new Set(HOST_FUNCTION_NAMES).size, 51);
  assert.deepEqual(Object.keys(HOST_FUNCTIONS_BY_SUBSYSTEM), [...SUBSYSTEMS]);
  for (const name of HOST_FUNCTION_NAMES) assert.match(name, /^[a-z][a-z0-9_]{0,63}$/);
});

Deno.test("HOST_TABLE holds each landed row once, in table order, under its subsystem", () => {
  const names = HOST_TABLE.map((r) => r.name);
  assert.equal(new Set(names).size, names.length);
  assert.deepEqual(names, HOST_FUNCTION_NAMES.filter((n) => names.includes(n)));
  for (const row of HOST_TABLE) {
    assert.ok(HOST_FUNCTIONS_BY_SUBSYSTEM[row.subsystem].includes(row.name), row.name);
    assert.equal(hostFunction(row.name), row);
    assert.ok(row.doc.length > 0 && !row.doc.endsWith("."), `${row.name}: one line, no period`);
  }
  assert.deepEqual(
    [...PENDING_FUNCTIONS, ...names].sort(),
    [...HOST_FUNCTION_NAMES].sort(),
  );
});

Deno.test("hostFunctionSpecs() gives the engine all 51 names; only clock, log, random in worker", () => {
  const specs = hostFunctionSpecs();
  assert.deepEqual(specs.map((s) => s.name), [...HOST_FUNCTION_NAMES]);
  assert.deepEqual(
    specs.filter((s) => s.inWorker).map((s) => s.name).sort(),
    [...IN_WORKER_FUNCTIONS].sort(),
  );
});

Deno.test("buildTable() refuses a duplicate row and a row outside its subsystem", () => {
  const row = defineHostFunction<void>({
    name: "kv_get",
    subsystem: "kv",
    doc: "x",
    capabilities: [],
    parse: () => {},
    gate: () => null,
    run: () => Promise.resolve(),
  });
  assert.throws(() => buildTable([row, row]), /Host function "kv_get" is listed twice/);
  assert.throws(
    () => buildTable([{ ...row, subsystem: "fs" }]),
    /Host function "kv_get" is not in subsystem "fs" of the table/,
  );
});

// Every one of the 51 functions of DESIGN §4 has a row: none answers UNSUPPORTED.
Deno.test("HOST_TABLE implements every function of the host ABI (none pending)", () => {
  assert.deepEqual(PENDING_FUNCTIONS, [], `not landed yet: ${PENDING_FUNCTIONS.join(", ")}`);
});

Deno.test("docs/host_abi.md lists every table function with its subsystem", async () => {
  const text = await Deno.readTextFile(DOC);
  const start = text.indexOf("<!-- functions:start -->");
  const end = text.indexOf("<!-- functions:end -->");
  assert.ok(start >= 0 && end > start, "docs/host_abi.md has the functions markers");
  const rows: [string, string][] = [];
  for (const line of text.slice(start, end).split("\n")) {
    const m = /^\|\s*`([a-z0-9_]+)`\s*\|\s*`([a-z]+)`\s*\|/.exec(line);
    if (m !== null) rows.push([m[1], m[2]]);
  }
  const expected = Object.entries(HOST_FUNCTIONS_BY_SUBSYSTEM).flatMap(([sub, names]) =>
    names.map((n) => [n, sub] as [string, string])
  );
  assert.deepEqual(rows, expected);
});

Deno.test("docs/host_abi.md has a reference section for every landed row", async () => {
  const text = await Deno.readTextFile(DOC);
  const missing = HOST_TABLE.filter((r) => !text.includes(`#### \`${r.name}\`\n`)).map((r) =>
    r.name
  );
  assert.deepEqual(missing, [], `add a "#### \`name\`" section for: ${missing.join(", ")}`);
});
