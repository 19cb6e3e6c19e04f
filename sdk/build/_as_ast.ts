/**
 * The slice of the AssemblyScript compiler's AST the capsule compiler reads, typed
 * structurally (the compiler's own `const enum`s are not usable under `isolatedModules`, so
 * their values are repeated here from `assemblyscript/dist/assemblyscript.generated.d.ts`,
 * AssemblyScript 0.28).
 *
 * @module
 */

/** `NodeKind` values used here. */
export const NodeKind = {
  NamedType: 1,
  FunctionType: 2,
  Identifier: 7,
  Literal: 17,
  PropertyAccess: 22,
  UnaryPrefix: 29,
  ClassDeclaration: 52,
  EnumDeclaration: 53,
  FieldDeclaration: 55,
  FunctionDeclaration: 56,
  NamespaceDeclaration: 60,
} as const;

/** `SourceKind` values. */
export const SourceKind = { User: 0, UserEntry: 1, Library: 2, LibraryEntry: 3 } as const;

/** `LiteralKind` values used here. */
export const LiteralKind = { Float: 0, Integer: 1, String: 2 } as const;

/** `CommonFlags` values used here. */
export const CommonFlags = {
  Export: 2,
  Declare: 4,
  Static: 32,
  Private: 512,
  Protected: 1024,
  Get: 2048,
  Set: 4096,
} as const;

/** A source file. */
export interface AsSource {
  sourceKind: number;
  readonly normalizedPath: string;
  readonly internalPath: string;
  readonly text: string;
  statements: AsNode[];
  lineAt(pos: number): number;
  columnAt(): number;
}

/** A source range. */
export interface AsRange {
  readonly start: number;
  readonly end: number;
  readonly source: AsSource;
}

/** Any node. */
export interface AsNode {
  readonly kind: number;
  readonly range: AsRange;
}

/** An identifier. */
export interface AsIdentifier extends AsNode {
  readonly text: string;
}

/** A string, integer or float literal (`value` is a number, string or i64 object). */
export interface AsLiteral extends AsNode {
  readonly literalKind: number;
  readonly value: unknown;
}

/** `a.b`. */
export interface AsPropertyAccess extends AsNode {
  readonly expression: AsNode;
  readonly property: AsIdentifier;
}

/** A decorator `@name(args)`. */
export interface AsDecorator extends AsNode {
  readonly name: AsNode;
  readonly args: AsNode[] | null;
}

/** A part of a dotted type name. */
export interface AsTypeName extends AsNode {
  readonly identifier: AsIdentifier;
  readonly next: AsTypeName | null;
}

/** A type annotation. */
export interface AsTypeNode extends AsNode {
  readonly isNullable: boolean;
  /** Named types only. */
  readonly name?: AsTypeName;
  /** Named types only. */
  readonly typeArguments?: AsTypeNode[] | null;
}

/** A function parameter. */
export interface AsParameter extends AsNode {
  readonly name: AsIdentifier;
  readonly type: AsTypeNode;
  readonly parameterKind: number;
  readonly initializer: AsNode | null;
}

/** A function signature. */
export interface AsSignature extends AsNode {
  readonly parameters: AsParameter[];
  readonly returnType: AsTypeNode;
}

/** A declaration (function, class, field, namespace, enum). */
export interface AsDeclaration extends AsNode {
  readonly name: AsIdentifier;
  decorators: AsDecorator[] | null;
  flags: number;
}

/** A function declaration. */
export interface AsFunction extends AsDeclaration {
  readonly signature: AsSignature;
  readonly typeParameters: unknown[] | null;
}

/** A class declaration. */
export interface AsClass extends AsDeclaration {
  readonly members: AsDeclaration[];
  readonly extendsType: AsTypeNode | null;
  readonly typeParameters: unknown[] | null;
}

/** A field of a class. */
export interface AsField extends AsDeclaration {
  readonly type: AsTypeNode | null;
  readonly initializer: AsNode | null;
}

/** A namespace. */
export interface AsNamespace extends AsDeclaration {
  readonly members: AsNode[];
}

/** The parser a transform receives in `afterParse`. */
export interface AsParser {
  readonly sources: AsSource[];
  parseFile(text: string, path: string, isEntry: boolean): void;
  error(code: number, range: AsRange | null, arg0?: string): void;
}

/** A diagnostic as `reportDiagnostic` receives it. */
export interface AsDiagnostic {
  readonly code: number;
  /** 0 pedantic, 1 info, 2 warning, 3 error. */
  readonly category: number;
  readonly message: string;
  readonly range: AsRange | null;
}

/** The "User-defined: {0}" diagnostic code, used for the transform's own errors. */
export const USER_DEFINED_DIAGNOSTIC = 102;

/** The text of `node` in its source. */
export function textOf(node: AsNode): string {
  return node.range.source.text.slice(node.range.start, node.range.end);
}

/** The dotted name of a named type: `Array`, `JSON.Raw`. */
export function typeNameOf(type: AsTypeNode): string {
  const parts: string[] = [];
  for (let n: AsTypeName | null | undefined = type.name; n; n = n.next) {
    parts.push(n.identifier.text);
  }
  return parts.join(".");
}

/** The 1-based line and column of `pos` in `source`. */
export function lineColumn(source: AsSource, pos: number): { line: number; column: number } {
  const line = source.lineAt(pos);
  return { line, column: source.columnAt() };
}

/**
 * The `/** … *\/` comment directly above the declaration at `pos` (decorator lines between
 * are skipped), as one line of text, or undefined.
 */
export function docCommentAt(text: string, pos: number): string | undefined {
  const lines = text.slice(0, pos).split("\n");
  const own = lines.pop()!.trimEnd(); // the declaration's own line, up to it
  if (own.endsWith("*/") && own.lastIndexOf("/**") !== -1) {
    return cleanComment(own.slice(own.lastIndexOf("/**")));
  }
  while (lines.length > 0) {
    const t = lines[lines.length - 1].trim();
    if (t === "" || t.startsWith("@")) lines.pop();
    else break;
  }
  if (lines.length === 0 || !lines[lines.length - 1].trim().endsWith("*/")) return undefined;
  const body: string[] = [];
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i];
    body.unshift(line);
    if (line.includes("/**")) break;
    if (line.includes("/*") || i === 0) return undefined;
  }
  const joined = body.join("\n");
  return cleanComment(joined.slice(joined.indexOf("/**")));
}

/** The text of a `/** … *\/` comment as one line, without `@tags`; undefined when empty. */
function cleanComment(comment: string): string | undefined {
  const inner = comment.slice(3, comment.lastIndexOf("*/"))
    .split("\n")
    .map((l) => l.replace(/^\s*\*?\s?/, "").trim())
    .filter((l) => !l.startsWith("@"))
    .join(" ")
    .replace(/\s+/g, " ")
    .trim();
  return inner === "" ? undefined : inner;
}
