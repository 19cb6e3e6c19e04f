/**
 * Keyboard input for the terminal UI: stdin in raw mode (`Deno.stdin.setRaw`), bytes parsed into
 * {@link Key}s and handed to whoever listens. One read loop for the life of the process; the
 * terminal is restored by {@link KeyReader.stop} (and on exit by the caller).
 *
 * @module
 */

/** One key press. */
export type Key =
  | { readonly name: "char"; readonly char: string }
  | {
    readonly name:
      | "enter"
      | "backspace"
      | "tab"
      | "escape"
      | "ctrl_c"
      | "ctrl_d"
      | "ctrl_u"
      | "ctrl_w"
      | "ctrl_l"
      | "up"
      | "down"
      | "left"
      | "right"
      | "home"
      | "end"
      | "delete";
  };

/** Parses the text of one read into keys (escape sequences of arrows, home, end, delete). */
export function parseKeys(text: string): Key[] {
  const keys: Key[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const code = c.charCodeAt(0);
    if (c === "\x1b") {
      const rest = text.slice(i + 1);
      const m = /^(\[|O)([0-9;]*)([A-Za-z~])/.exec(rest);
      if (m === null) {
        keys.push({ name: "escape" });
        continue;
      }
      i += m[0].length;
      const seq = m[2] + m[3];
      const named: Record<string, Key["name"]> = {
        A: "up",
        B: "down",
        C: "right",
        D: "left",
        H: "home",
        F: "end",
        "1~": "home",
        "4~": "end",
        "3~": "delete",
      };
      const name = named[seq] ?? named[m[3]];
      if (name !== undefined && name !== "char") keys.push({ name } as Key);
      continue;
    }
    if (c === "\r" || c === "\n") {
      if (c === "\n" && text[i - 1] === "\r") continue;
      keys.push({ name: "enter" });
    } else if (code === 0x7f || code === 0x08) keys.push({ name: "backspace" });
    else if (c === "\t") keys.push({ name: "tab" });
    else if (code === 0x03) keys.push({ name: "ctrl_c" });
    else if (code === 0x04) keys.push({ name: "ctrl_d" });
    else if (code === 0x15) keys.push({ name: "ctrl_u" });
    else if (code === 0x17) keys.push({ name: "ctrl_w" });
    else if (code === 0x0c) keys.push({ name: "ctrl_l" });
    else if (code < 0x20) continue;
    else keys.push({ name: "char", char: c });
  }
  return keys;
}

/** Reads keys from the terminal in raw mode. */
export class KeyReader {
  #listener: ((key: Key) => void) | undefined;
  #running = false;
  #raw = false;

  /** Sends every key to `listener` from now on (replacing the previous one). */
  listen(listener: (key: Key) => void): void {
    this.#listener = listener;
    if (this.#running) return;
    this.#running = true;
    this.#setRaw(true);
    void this.#loop();
  }

  /** Restores the terminal; keys are no longer delivered. */
  stop(): void {
    this.#listener = undefined;
    this.#setRaw(false);
  }

  #setRaw(raw: boolean): void {
    if (this.#raw === raw || !Deno.stdin.isTerminal()) return;
    try {
      Deno.stdin.setRaw(raw);
      this.#raw = raw;
    } catch {
      // Not a terminal after all: cooked input still works line by line.
    }
  }

  async #loop(): Promise<void> {
    const buf = new Uint8Array(4096);
    const decoder = new TextDecoder();
    for (;;) {
      let n: number | null;
      try {
        n = await Deno.stdin.read(buf);
      } catch {
        n = null;
      }
      if (n === null) {
        this.#listener?.({ name: "ctrl_d" });
        return;
      }
      for (const key of parseKeys(decoder.decode(buf.subarray(0, n), { stream: true }))) {
        this.#listener?.(key);
      }
    }
  }
}
