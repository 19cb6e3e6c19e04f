/**
 * Derives a tool's input JSON Schema from the AssemblyScript class its `@tool` function takes
 * (what `tool.v1.request.describe` answers and `astrid build` writes into the manifest's
 * `[[tool]] input_schema`): one property per instance field, typed from the field's type;
 * required unless it has an initializer, is nullable or is marked `@optional`; described by
 * its doc comment; renamed by `@alias("…")`; left out with `@omit`.
 *
 * @module
 */
import type { JsonObject } from "../../kernel/capsule/mod.ts";
import {
  type AsClass,
  type AsDecorator,
  type AsField,
  type AsIdentifier,
  type AsLiteral,
  type AsNode,
  type AsSource,
  type AsTypeNode,
  CommonFlags,
  docCommentAt,
  LiteralKind,
  NodeKind,
  textOf,
  typeNameOf,
} from "./_as_ast.ts";

/** Classes and enums by name, as the schema deriver looks them up. */
export interface TypeScope {
  /** The class named `name` (the one in `near` first), or undefined. */
  classNamed(name: string, near: AsSource): AsClass | undefined;
  /** True when `name` is an enum. */
  isEnum(name: string): boolean;
}

/** Builds a {@link TypeScope} over `sources`. */
export function typeScope(sources: readonly AsSource[]): TypeScope {
  const classes = new Map<string, { decl: AsClass; source: AsSource }[]>();
  const enums = new Set<string>();
  const visit = (nodes: readonly AsNode[], source: AsSource) => {
    for (const node of nodes) {
      if (node.kind === NodeKind.ClassDeclaration) {
        const decl = node as AsClass;
        const list = classes.get(decl.name.text) ?? [];
        list.push({ decl, source });
        classes.set(decl.name.text, list);
      } else if (node.kind === NodeKind.EnumDeclaration) {
        enums.add((node as AsClass).name.text);
      }
    }
  };
  for (const s of sources) visit(s.statements, s);
  return {
    classNamed(name, near) {
      const short = name.includes(".") ? name.slice(name.lastIndexOf(".") + 1) : name;
      const list = classes.get(short);
      if (!list) return undefined;
      return (list.find((c) => c.source === near) ?? list[0]).decl;
    },
    isEnum: (name) => enums.has(name.includes(".") ? name.slice(name.lastIndexOf(".") + 1) : name),
  };
}

const INTEGER = new Set(["i8", "i16", "i32", "i64", "isize"]);
const UNSIGNED = new Set(["u8", "u16", "u32", "u64", "usize"]);
const NUMBER = new Set(["f32", "f64", "number"]);
const ARRAYS = new Set(["Array", "StaticArray", "Set"]);

function decoratorNamed(decorators: AsDecorator[] | null, name: string): AsDecorator | undefined {
  return decorators?.find((d) =>
    d.name.kind === NodeKind.Identifier && (d.name as AsIdentifier).text === name
  );
}

function literalValue(node: AsNode | null): string | number | boolean | undefined {
  if (node === null) return undefined;
  if (node.kind === NodeKind.Literal) {
    const lit = node as AsLiteral;
    if (lit.literalKind === LiteralKind.String) return String(lit.value);
    if (lit.literalKind === LiteralKind.Integer || lit.literalKind === LiteralKind.Float) {
      const n = Number(textOf(node).replaceAll("_", ""));
      return Number.isFinite(n) ? n : undefined;
    }
    return undefined;
  }
  const text = textOf(node).trim();
  if (text === "true") return true;
  if (text === "false") return false;
  if (/^-\s*[0-9][0-9_.eE+-]*$/.test(text)) {
    const n = Number(text.replaceAll(/[\s_]/g, ""));
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** The JSON Schema of one AssemblyScript type (`seen` guards against recursive classes). */
export function typeSchema(
  type: AsTypeNode,
  scope: TypeScope,
  near: AsSource,
  seen: Set<AsClass> = new Set(),
): JsonObject {
  if (type.kind !== NodeKind.NamedType) return {};
  const name = typeNameOf(type);
  const args = type.typeArguments ?? [];
  if (name === "string" || name === "String") return { type: "string" };
  if (name === "bool" || name === "boolean") return { type: "boolean" };
  if (INTEGER.has(name)) return { type: "integer" };
  if (UNSIGNED.has(name)) return { type: "integer", minimum: 0 };
  if (NUMBER.has(name)) return { type: "number" };
  if (ARRAYS.has(name) && args.length === 1) {
    return { type: "array", items: typeSchema(args[0], scope, near, seen) };
  }
  if (name === "Map" && args.length === 2) {
    return { type: "object", additionalProperties: typeSchema(args[1], scope, near, seen) };
  }
  if (name === "JSON.Obj") return { type: "object" };
  if (name === "JSON.Arr") return { type: "array" };
  if (name.startsWith("JSON.")) return {};
  if (scope.isEnum(name)) return { type: "integer" };
  const decl = scope.classNamed(name, near);
  if (decl === undefined) return {};
  return classSchema(decl, scope, seen);
}

/** The object schema of a class: its instance fields (and its base class's). */
export function classSchema(
  decl: AsClass,
  scope: TypeScope,
  seen: Set<AsClass> = new Set(),
): JsonObject {
  if (seen.has(decl)) return { type: "object" };
  seen.add(decl);
  const source = decl.range.source;
  const properties: Record<string, JsonObject> = {};
  const required: string[] = [];
  if (decl.extendsType) {
    const base = scope.classNamed(typeNameOf(decl.extendsType), source);
    if (base) {
      const inherited = classSchema(base, scope, seen);
      Object.assign(properties, inherited.properties ?? {});
      required.push(...((inherited.required as string[] | undefined) ?? []));
    }
  }
  for (const member of decl.members) {
    if (member.kind !== NodeKind.FieldDeclaration) continue;
    const field = member as AsField;
    if (field.flags & (CommonFlags.Static | CommonFlags.Private | CommonFlags.Protected)) continue;
    if (decoratorNamed(field.decorators, "omit")) continue;
    const alias = decoratorNamed(field.decorators, "alias");
    const aliasArg = alias?.args?.[0];
    const key = aliasArg && aliasArg.kind === NodeKind.Literal
      ? String((aliasArg as AsLiteral).value)
      : field.name.text;
    const schema: Record<string, JsonObject[string]> = field.type
      ? { ...typeSchema(field.type, scope, source, seen) }
      : {};
    const description = docCommentAt(source.text, field.range.start);
    if (description !== undefined) schema.description = description;
    const dflt = literalValue(field.initializer);
    if (dflt !== undefined) schema.default = dflt;
    properties[key] = schema;
    const optional = field.initializer !== null || (field.type?.isNullable ?? false) ||
      decoratorNamed(field.decorators, "optional") !== undefined ||
      decoratorNamed(field.decorators, "omitnull") !== undefined;
    if (!optional && !required.includes(key)) required.push(key);
  }
  seen.delete(decl);
  return required.length > 0
    ? { type: "object", properties, required }
    : { type: "object", properties };
}
