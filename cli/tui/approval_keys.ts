/**
 * The single keystrokes that answer an approval: `o` Allow once, `s` Allow session, `w` Allow
 * workspace, `a` Allow always, `d` (or `n`) Deny — only the answers the request offers (a
 * widening action offers Allow once and Deny).
 *
 * @module
 */

/** Each answer's key and label, strongest allowance last before Deny. */
export const ANSWER_KEYS: readonly { key: string; answer: string; label: string }[] = [
  { key: "o", answer: "allow_once", label: "Allow once" },
  { key: "s", answer: "allow_session", label: "Allow session" },
  { key: "w", answer: "allow_workspace", label: "Allow workspace" },
  { key: "a", answer: "allow_always", label: "Allow always" },
  { key: "d", answer: "deny", label: "Deny" },
];

/** Key → answer for the answers `request` offers (`n` also denies). */
export function answerKeys(request: { answers: readonly string[] }): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ANSWER_KEYS) if (request.answers.includes(k.answer)) out[k.key] = k.answer;
  if (request.answers.includes("deny")) out.n = "deny";
  return out;
}

/** The line listing the offered answers: `[o] Allow once  [s] Allow session  …  [d] Deny`. */
export function approvalChoices(request: { answers: readonly string[] }): string {
  return ANSWER_KEYS.filter((k) => request.answers.includes(k.answer))
    .map((k) => `[${k.key}] ${k.label}`).join("  ");
}

/** A human label for an answer (`allow_session` → `Allow session`). */
export function answerLabel(answer: string): string {
  return ANSWER_KEYS.find((k) => k.answer === answer)?.label ?? answer;
}
