/**
 * Minimal terminal prompts for the install verbs (`capsule install|update|remove`, `init`,
 * `keypair delete`): a line of text (a secret read with echo off), yes/no, one of a list, and
 * a multi-select answered with numbers or names. Prompts go to stderr so stdout stays clean.
 *
 * Prompts are only asked when stdin is a terminal ({@link isInteractive}); otherwise a verb
 * uses its flags (`--yes`, `--env`, `--var`, `--group`) and refuses what it would have asked.
 * No dependency: Deno's stdin with raw mode for secrets (Ctrl-C there exits 130, as it does
 * everywhere else).
 *
 * @module
 */
import { AstridError, CommonCode } from "../kernel/mod.ts";

/** One item of a multi-select. */
export interface SelectItem {
  /** What the answer names. */
  readonly name: string;
  /** One line shown beside it. */
  readonly description?: string;
  /** Pre-selected (taken when the answer is empty). */
  readonly checked: boolean;
}

/** Asks the operator. */
export interface Prompter {
  /** A line of text; `secret` hides it; an empty answer takes `default`, or asks again when `required`. */
  text(
    question: string,
    options?: { default?: string; secret?: boolean; required?: boolean },
  ): Promise<string>;
  /** Yes or no; an empty answer takes `defaultYes`. */
  confirm(question: string, defaultYes?: boolean): Promise<boolean>;
  /** One of `choices` (by number or name); an empty answer takes `defaultChoice`. */
  select(question: string, choices: readonly string[], defaultChoice?: string): Promise<string>;
  /** Any of `items` (numbers or names, comma-separated; `none` for none); empty takes the checked ones. */
  multiSelect(question: string, items: readonly SelectItem[]): Promise<string[]>;
}

/** True when prompts can be asked: stdin is a terminal and `ASTRID_NO_PROMPT` is not set. */
export function isInteractive(): boolean {
  return Deno.stdin.isTerminal() && !Deno.env.get("ASTRID_NO_PROMPT");
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Prompts on the process's terminal. */
export class TerminalPrompter implements Prompter {
  #pending: number[] = [];

  #write(text: string): void {
    Deno.stderr.writeSync(enc.encode(text));
  }

  async #byte(): Promise<number | null> {
    if (this.#pending.length === 0) {
      const chunk = new Uint8Array(256);
      const n = await Deno.stdin.read(chunk);
      if (n === null) return null;
      this.#pending.push(...chunk.subarray(0, n));
    }
    return this.#pending.shift() ?? null;
  }

  async #line(hidden: boolean): Promise<string> {
    const raw = hidden && Deno.stdin.isTerminal();
    if (raw) Deno.stdin.setRaw(true);
    const bytes: number[] = [];
    try {
      for (;;) {
        const b = await this.#byte();
        if (b === null) {
          if (bytes.length === 0) {
            throw new AstridError(CommonCode.INVALID_ARGUMENT, "No answer: the input ended");
          }
          break;
        }
        if (raw) {
          if (b === 3) {
            Deno.stdin.setRaw(false);
            this.#write("\n");
            Deno.exit(130);
          }
          if (b === 13 || b === 10) break;
          if (b === 127 || b === 8) {
            while (bytes.length > 0 && ((bytes.pop() as number) & 0xc0) === 0x80) {
              // drop the continuation bytes of a multi-byte character
            }
            continue;
          }
          if (b < 32) continue;
        } else if (b === 10) break;
        bytes.push(b);
      }
    } finally {
      if (raw) {
        Deno.stdin.setRaw(false);
        this.#write("\n");
      }
    }
    return dec.decode(new Uint8Array(bytes)).replace(/\r$/, "");
  }

  /** See {@link Prompter.text}. */
  async text(
    question: string,
    options: { default?: string; secret?: boolean; required?: boolean } = {},
  ): Promise<string> {
    const hint = options.default !== undefined && options.default !== ""
      ? ` [${options.default}]`
      : options.secret
      ? " (hidden)"
      : "";
    for (;;) {
      this.#write(`${question}${hint}: `);
      const answer = (await this.#line(options.secret === true)).trim();
      if (answer !== "") return answer;
      if (options.default !== undefined) return options.default;
      if (!options.required) return "";
      this.#write("A value is required.\n");
    }
  }

  /** See {@link Prompter.confirm}. */
  async confirm(question: string, defaultYes = false): Promise<boolean> {
    for (;;) {
      this.#write(`${question} ${defaultYes ? "[Y/n]" : "[y/N]"} `);
      const answer = (await this.#line(false)).trim().toLowerCase();
      if (answer === "") return defaultYes;
      if (answer === "y" || answer === "yes") return true;
      if (answer === "n" || answer === "no") return false;
      this.#write("Answer y or n.\n");
    }
  }

  /** See {@link Prompter.select}. */
  async select(
    question: string,
    choices: readonly string[],
    defaultChoice?: string,
  ): Promise<string> {
    this.#write(`${question}\n`);
    choices.forEach((c, i) => this.#write(`  ${i + 1}) ${c}${c === defaultChoice ? " *" : ""}\n`));
    for (;;) {
      this.#write(`Choose 1-${choices.length}${defaultChoice ? ` [${defaultChoice}]` : ""}: `);
      const answer = (await this.#line(false)).trim();
      if (answer === "" && defaultChoice !== undefined) return defaultChoice;
      const picked = pick(answer, choices);
      if (picked !== undefined) return picked;
      this.#write(`Not one of the choices: "${answer}".\n`);
    }
  }

  /** See {@link Prompter.multiSelect}. */
  async multiSelect(question: string, items: readonly SelectItem[]): Promise<string[]> {
    this.#write(`${question}\n`);
    items.forEach((item, i) =>
      this.#write(
        `  ${i + 1}) [${item.checked ? "x" : " "}] ${item.name}${
          item.description ? ` — ${item.description}` : ""
        }\n`,
      )
    );
    const names = items.map((i) => i.name);
    for (;;) {
      this.#write("Numbers or names, comma-separated (Enter keeps [x], none for none): ");
      const answer = (await this.#line(false)).trim();
      if (answer === "") return items.filter((i) => i.checked).map((i) => i.name);
      if (answer.toLowerCase() === "none") return [];
      const parts = answer.split(/[,\s]+/).filter((p) => p !== "");
      const picked = parts.map((p) => pick(p, names));
      if (picked.every((p) => p !== undefined)) return [...new Set(picked as string[])];
      this.#write(`Not all of "${answer}" are choices.\n`);
    }
  }
}

function pick(answer: string, choices: readonly string[]): string | undefined {
  const n = Number(answer);
  if (Number.isInteger(n) && n >= 1 && n <= choices.length) return choices[n - 1];
  return choices.find((c) => c === answer);
}
