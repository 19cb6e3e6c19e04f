/**
 * Parses one TOML config file into a validated {@link ConfigLayer}. Every problem is raised
 * as a {@link ConfigError} naming the file, the line, the dotted key, what was expected and
 * a fix; unknown keys are errors (a typo in security config must not pass silently).
 *
 * @module
 */
import { parse, TomlError } from "smol-toml";
import {
  checkPriceKey,
  CONFIG_TABLES,
  keySpec,
  PRICE_EXPECTED,
  PRICE_FIELDS,
  PRICE_KEY_EXPECTED,
} from "./config_keys.ts";
import type { ConfigLayer, LayerEntry, LayerKind } from "./config_layer.ts";
import { ConfigCode, ConfigError } from "./errors.ts";
import { formatKey, KeyLocator } from "./_toml_keys.ts";
import { editDistance, suggestKey } from "./_suggest.ts";
import { describeValue, isTable } from "./_describe.ts";

/** Where the text of {@link parseLayer} comes from. */
export interface LayerSource {
  /** The layer the file belongs to. */
  kind: Exclude<LayerKind, "defaults" | "env">;
  /** The file path, used in every message. */
  file: string;
}

/** Parses and validates `text`, the contents of `source.file`. */
export function parseLayer(text: string, source: LayerSource): ConfigLayer {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (cause) {
    if (!(cause instanceof TomlError)) throw cause;
    const detail = cause.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
    const near = text.split(/\r?\n/)[cause.line - 1]?.trim()
      .replace(/([a-z]+:\/\/[^:/@\s"']*:)[^@\s"']*@/g, "$1***@").slice(0, 60);
    throw new ConfigError(
      ConfigCode.CONFIG_PARSE,
      `${source.file}:${cause.line}:${cause.column}: invalid TOML: ${detail}` +
        (near ? ` in ${JSON.stringify(near)}` : ""),
      { data: { file: source.file, line: cause.line, column: cause.column }, cause },
    );
  }
  const walker = new Walker(source.file, new KeyLocator(text));
  walker.table(doc, []);
  return { kind: source.kind, file: source.file, entries: walker.entries };
}

class Walker {
  readonly entries: LayerEntry[] = [];
  #file: string;
  #locator: KeyLocator;

  constructor(file: string, locator: KeyLocator) {
    this.#file = file;
    this.#locator = locator;
  }

  table(obj: Record<string, unknown>, path: string[]): void {
    const children = CONFIG_TABLES.get(path.join(".")) ?? [];
    for (const [name, value] of Object.entries(obj)) {
      const here = [...path, name];
      if (path.length === 0 && name === "pricing") {
        this.#pricing(value, here);
        continue;
      }
      if (!children.includes(name)) this.#unknown(here, children);
      const dotted = here.join(".");
      if (CONFIG_TABLES.has(dotted)) {
        if (!isTable(value)) this.#type(here, `a table ([${dotted}])`, value);
        this.table(value as Record<string, unknown>, here);
        continue;
      }
      const spec = keySpec(dotted);
      if (!spec) this.#unknown(here, children);
      const normalized = spec.normalize(value);
      if (normalized === undefined) this.#type(here, spec.expected, value);
      this.#push(here, normalized, value);
    }
  }

  #pricing(value: unknown, path: string[]): void {
    if (!isTable(value)) this.#type(path, 'a table of [pricing."provider/model"] entries', value);
    for (const [name, entry] of Object.entries(value as Record<string, unknown>)) {
      const here = [...path, name];
      if (!checkPriceKey(name)) {
        this.#fail(ConfigCode.CONFIG_TYPE, here, `expected ${PRICE_KEY_EXPECTED}`);
      }
      if (!isTable(entry)) {
        this.#type(here, "a table with input_per_mtok and output_per_mtok", entry);
      }
      const price: Record<string, number> = {};
      for (const [field, amount] of Object.entries(entry as Record<string, unknown>)) {
        const at = [...here, field];
        if (!(PRICE_FIELDS as readonly string[]).includes(field)) {
          const close = PRICE_FIELDS.find((f) => editDistance(f, field) <= 3);
          const fix = close
            ? `did you mean ${formatKey([...here, close])}?`
            : `use ${PRICE_FIELDS.join(" and ")}`;
          const suggestion = close ? formatKey([...here, close]) : undefined;
          this.#fail(ConfigCode.CONFIG_UNKNOWN_KEY, at, `unknown key; ${fix}`, suggestion);
        }
        if (typeof amount !== "number" || !Number.isFinite(amount) || amount < 0) {
          this.#type(at, PRICE_EXPECTED, amount);
        }
        price[field] = amount as number;
      }
      for (const field of PRICE_FIELDS) {
        if (!(field in price)) {
          this.#fail(
            ConfigCode.CONFIG_TYPE,
            here,
            `missing ${field}: add ${field} = <USD per million tokens>`,
          );
        }
      }
      this.#push(here, price, entry);
    }
  }

  #push(path: string[], value: unknown, raw: unknown): void {
    const loc = this.#locator.find(path);
    this.entries.push({
      key: formatKey(path),
      path,
      value,
      raw,
      ...(loc ? { line: loc.line, column: loc.column } : {}),
    });
  }

  #type(path: string[], expected: string, value: unknown): never {
    this.#fail(
      ConfigCode.CONFIG_TYPE,
      path,
      `expected ${expected}, got ${describeValue(value, path.join("."))}`,
    );
  }

  #unknown(path: string[], known: readonly string[]): never {
    const suggestion = suggestKey(path);
    const fix = suggestion
      ? `did you mean ${suggestion}?`
      : `remove it or use one of: ${known.join(", ")}`;
    this.#fail(ConfigCode.CONFIG_UNKNOWN_KEY, path, `unknown key; ${fix}`, suggestion);
  }

  #fail(code: ConfigCode, path: string[], detail: string, suggestion?: string): never {
    const loc = this.#locator.find(path);
    const key = formatKey(path);
    const where = loc ? `${this.#file}:${loc.line}` : this.#file;
    throw new ConfigError(code, `${where}: ${key}: ${detail}`, {
      data: {
        file: this.#file,
        key,
        ...(loc ? { line: loc.line, column: loc.column } : {}),
        ...(suggestion ? { suggestion } : {}),
      },
    });
  }
}
