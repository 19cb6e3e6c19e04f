/**
 * The answer to `GetPromptContext`: the static context files and skills of the capsules a
 * principal sees ({@link PromptContextSource}), bounded for the bus and for a model's prompt.
 *
 * One text budget, {@link PROMPT_CONTEXT_LIMITS}`.maxTextBytes` (64 KiB of UTF-8), is spent in
 * listing order: every context file's `text`, then every skill's `description` and `text`. A text
 * that does not fit whole is cut at the budget left (on a character boundary, so possibly to
 * `""`) and its entry marked `cut: true`; each list holds at most `maxEntries` entries and the
 * rest are left out. `cut` names every shortened or left-out entry as `<capsule>/<file>` (at most
 * `maxEntries` names; `cut_total` counts them all).
 *
 * @module
 */
import type { PromptContextSource } from "./capsule_host.ts";

/** Bounds of a `GetPromptContext` answer. */
export interface PromptContextLimits {
  /** UTF-8 bytes of text (context files, skill descriptions and texts) in all. */
  readonly maxTextBytes: number;
  /** Context files, skills, and names in `cut`: at most this many each. */
  readonly maxEntries: number;
}

/** The default bounds: 64 KiB of text, 256 entries. */
export const PROMPT_CONTEXT_LIMITS: PromptContextLimits = Object.freeze({
  maxTextBytes: 64 * 1024,
  maxEntries: 256,
});

/** A context file as `GetPromptContext` answers it. */
export interface PromptContextFileWire {
  /** The capsule's name. */
  readonly capsule: string;
  /** The file as its manifest names it. */
  readonly file: string;
  /** Its text, possibly cut. */
  readonly text: string;
  /** Present when the text was cut. */
  readonly cut?: true;
}

/** A skill as `GetPromptContext` answers it. */
export interface PromptSkillWire {
  /** The capsule's name. */
  readonly capsule: string;
  /** The skill's name. */
  readonly name: string;
  /** When to use it, possibly cut. */
  readonly description: string;
  /** The skill file as its manifest names it. */
  readonly file: string;
  /** The skill file's text (its instructions), possibly cut. */
  readonly text: string;
  /** Present when the description or the text was cut. */
  readonly cut?: true;
}

/** The `result` of `GetPromptContext` (snake_case: it goes on the wire). */
export interface PromptContextWire {
  /** Context files, by capsule key, then manifest order. */
  readonly context: PromptContextFileWire[];
  /** Skills, by capsule key, then manifest order. */
  readonly skills: PromptSkillWire[];
  /** `<capsule>/<file>` of the entries cut or left out (at most `maxEntries`). */
  readonly cut: string[];
  /** How many entries were cut or left out in all. */
  readonly cut_total: number;
  /** The text budget, bytes. */
  readonly limit_bytes: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bounds `source` by `limits` (default {@link PROMPT_CONTEXT_LIMITS}); see the module doc. */
export function promptContext(
  source: PromptContextSource,
  limits: PromptContextLimits = PROMPT_CONTEXT_LIMITS,
): PromptContextWire {
  let left = limits.maxTextBytes;
  let cutTotal = 0;
  const cutNames: string[] = [];
  const markCut = (capsule: string, file: string) => {
    cutTotal++;
    if (cutNames.length < limits.maxEntries) cutNames.push(`${capsule}/${file}`);
  };
  /** The part of `text` that fits the budget left, and whether it was cut. */
  const take = (text: string): { text: string; cut: boolean } => {
    const bytes = encoder.encode(text);
    if (bytes.length <= left) {
      left -= bytes.length;
      return { text, cut: false };
    }
    let end = left;
    // Step back to the start of a character: never split a UTF-8 sequence.
    while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
    left = 0;
    return { text: decoder.decode(bytes.subarray(0, end)), cut: true };
  };

  const context: PromptContextFileWire[] = [];
  for (const c of source.context) {
    if (context.length >= limits.maxEntries) {
      markCut(c.capsule, c.file);
      continue;
    }
    const t = take(c.text);
    if (t.cut) markCut(c.capsule, c.file);
    context.push({
      capsule: c.capsule,
      file: c.file,
      text: t.text,
      ...(t.cut ? { cut: true } : {}),
    });
  }
  const skills: PromptSkillWire[] = [];
  for (const s of source.skills) {
    if (skills.length >= limits.maxEntries) {
      markCut(s.capsule, s.file);
      continue;
    }
    const d = take(s.description);
    const t = take(s.text);
    const cut = d.cut || t.cut;
    if (cut) markCut(s.capsule, s.file);
    skills.push({
      capsule: s.capsule,
      name: s.name,
      description: d.text,
      file: s.file,
      text: t.text,
      ...(cut ? { cut: true } : {}),
    });
  }
  return { context, skills, cut: cutNames, cut_total: cutTotal, limit_bytes: limits.maxTextBytes };
}
