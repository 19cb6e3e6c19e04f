import assert from "node:assert/strict";
import { Parser } from "assemblyscript";
import type { AsClass, AsSource } from "./_as_ast.ts";
import { classSchema, typeScope } from "./tool_schema.ts";

function parse(text: string): AsSource {
  const parser = new Parser();
  parser.parseFile(text, "assembly/index.ts", true);
  return parser.sources[0] as unknown as AsSource;
}

function schemaOf(text: string, name: string) {
  const source = parse(text);
  const scope = typeScope([source]);
  return classSchema(scope.classNamed(name, source) as AsClass, scope);
}

Deno.test("classSchema() derives a tool's input schema from its argument class", async (t) => {
  await t.step("maps AssemblyScript types to JSON Schema types", () => {
    const s = schemaOf(
      `@json class A {
        s!: string; b!: bool; i!: i32; u!: u64; f!: f64;
        list!: string[]; nums!: Array<i32>; map!: Map<string, f64>;
      }`,
      "A",
    );
    assert.deepEqual(s.properties, {
      s: { type: "string" },
      b: { type: "boolean" },
      i: { type: "integer" },
      u: { type: "integer", minimum: 0 },
      f: { type: "number" },
      list: { type: "array", items: { type: "string" } },
      nums: { type: "array", items: { type: "integer" } },
      map: { type: "object", additionalProperties: { type: "number" } },
    });
  });

  await t.step("requires a field without initializer, not nullable, not @optional", () => {
    const s = schemaOf(
      `@json class A {
        need!: string;
        withDefault: string = "x";
        maybe: string | null = null;
        @optional later!: string;
      }`,
      "A",
    );
    assert.deepEqual(s.required, ["need"]);
    assert.deepEqual((s.properties as Record<string, unknown>).withDefault, {
      type: "string",
      default: "x",
    });
  });

  await t.step("takes descriptions from doc comments, above decorators too", () => {
    const s = schemaOf(
      `@json class A {
        /** Who to greet. */
        name!: string;
        /**
         * How loud,
         * from 0 to 3.
         */
        @alias("volume")
        loudness: i32 = 1;
        // not a doc comment
        plain: bool = false;
      }`,
      "A",
    );
    const props = s.properties as Record<string, Record<string, unknown>>;
    assert.equal(props.name.description, "Who to greet.");
    assert.equal(props.volume.description, "How loud, from 0 to 3.");
    assert.equal(props.volume.default, 1);
    assert.equal(props.plain.description, undefined);
  });

  await t.step("leaves out static, private and @omit fields", () => {
    const s = schemaOf(
      `@json class A {
        static S: i32 = 1;
        private p: i32 = 0;
        @omit secret: string = "";
        shown: i32 = 0;
      }`,
      "A",
    );
    assert.deepEqual(Object.keys(s.properties as object), ["shown"]);
  });

  await t.step("nests classes, inherits base fields and stops at recursion", () => {
    const s = schemaOf(
      `@json class Base { id!: string; }
       @json class Node extends Base { child: Node | null = null; tags!: Tag[]; }
       @json class Tag { label!: string; }`,
      "Node",
    );
    const props = s.properties as Record<string, Record<string, unknown>>;
    assert.deepEqual(props.id, { type: "string" });
    assert.deepEqual(props.child, { type: "object" });
    assert.deepEqual(props.tags, {
      type: "array",
      items: { type: "object", properties: { label: { type: "string" } }, required: ["label"] },
    });
    assert.deepEqual(s.required, ["id", "tags"]);
  });

  await t.step("maps enums to integers and JSON.Value to anything", () => {
    const s = schemaOf(
      `enum Mode { A, B }
       @json class A { mode: Mode = Mode.A; any!: JSON.Value; obj!: JSON.Obj; }`,
      "A",
    );
    const props = s.properties as Record<string, Record<string, unknown>>;
    assert.deepEqual(props.mode, { type: "integer" });
    assert.deepEqual(props.any, {});
    assert.deepEqual(props.obj, { type: "object" });
  });
});
