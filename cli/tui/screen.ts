/**
 * Line-oriented terminal output for `astrid chat`: text is appended (the terminal scrolls), one
 * editable prompt line sits at the bottom and is redrawn after anything printed above it. In
 * raw mode the terminal does not turn `\n` into a new line at column 0, so every newline is
 * written as `\r\n`. Colours only when the terminal is a TTY and `NO_COLOR` is unset.
 *
 * @module
 */

/** Where bytes go (the terminal, or a buffer in tests). */
export type Sink = (text: string) => void;

const encoder = new TextEncoder();

/** Writes to stdout synchronously (so order is kept between prompts and streamed text). */
export const stdoutSink: Sink = (text) => {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
};

/** ANSI styles, or none. */
export interface Styles {
  /** Dim text (tool activity, hints). */
  dim(text: string): string;
  /** Bold text (questions). */
  bold(text: string): string;
  /** Red (errors, removed lines). */
  red(text: string): string;
  /** Green (added lines, success). */
  green(text: string): string;
  /** Yellow (approvals). */
  yellow(text: string): string;
}

const wrap = (open: number, close: number) => (t: string) => `\x1b[${open}m${t}\x1b[${close}m`;

/** Styles for `color` (true: ANSI; false: plain text). */
export function styles(color: boolean): Styles {
  if (!color) {
    const id = (t: string) => t;
    return { dim: id, bold: id, red: id, green: id, yellow: id };
  }
  return {
    dim: wrap(2, 22),
    bold: wrap(1, 22),
    red: wrap(31, 39),
    green: wrap(32, 39),
    yellow: wrap(33, 39),
  };
}

/** The scrolling output with a redrawable prompt line; see the module doc. */
export class Screen {
  readonly #sink: Sink;
  #prompt: { label: string; text: string; mask: boolean } | undefined;
  #atLineStart = true;

  /** Writes through `sink`. */
  constructor(sink: Sink = stdoutSink) {
    this.#sink = sink;
  }

  /** True when the last text written ended a line. */
  get atLineStart(): boolean {
    return this.#atLineStart;
  }

  /** Appends `text` as it comes (streamed tokens); the prompt line is hidden meanwhile. */
  write(text: string): void {
    if (text === "") return;
    this.#hidePrompt();
    this.#sink(text.replace(/\r?\n/g, "\r\n"));
    this.#atLineStart = text.endsWith("\n");
    this.#drawPrompt();
  }

  /** Appends `line` on a line of its own (finishing a streamed line first). */
  line(line = ""): void {
    this.#hidePrompt();
    if (!this.#atLineStart) this.#sink("\r\n");
    this.#sink(line.replace(/\r?\n/g, "\r\n") + "\r\n");
    this.#atLineStart = true;
    this.#drawPrompt();
  }

  /** Ends a streamed line if one is open. */
  endLine(): void {
    if (this.#atLineStart) return;
    this.#hidePrompt();
    this.#sink("\r\n");
    this.#atLineStart = true;
    this.#drawPrompt();
  }

  /** Shows (or updates) the prompt line: `label` then `text` (`mask`: as `*`). */
  prompt(label: string, text: string, mask = false): void {
    if (!this.#atLineStart) {
      this.#sink("\r\n");
      this.#atLineStart = true;
    }
    this.#prompt = { label, text, mask };
    this.#drawPrompt();
  }

  /** Removes the prompt line (before streaming output or when input ends). */
  clearPrompt(): void {
    this.#hidePrompt();
    this.#prompt = undefined;
  }

  /** Ends the prompt line as typed (Enter): it stays on screen and the cursor moves down. */
  submitPrompt(): void {
    if (this.#prompt === undefined) return;
    this.#prompt = undefined;
    this.#sink("\r\n");
    this.#atLineStart = true;
  }

  #drawPrompt(): void {
    const p = this.#prompt;
    if (p === undefined || !this.#atLineStart) return;
    this.#sink(`\r\x1b[2K${p.label}${p.mask ? "*".repeat([...p.text].length) : p.text}`);
  }

  #hidePrompt(): void {
    if (this.#prompt !== undefined && this.#atLineStart) this.#sink("\r\x1b[2K");
  }
}
