/**
 * Folder-private: the closest known key to a mistyped one, for "did you mean" hints.
 *
 * @module
 */
import { CONFIG_KEYS, CONFIG_TABLES } from "./config_keys.ts";

/** Edit distance between `a` and `b` (insertions, deletions, substitutions). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** Every known dotted name: tables (`security.policy`) and leaf keys. */
const KNOWN: readonly string[] = [
  ...[...CONFIG_TABLES.keys()].filter((t) => t !== ""),
  "pricing",
  ...CONFIG_KEYS.map((s) => s.key),
];

/**
 * The known dotted name closest to `path`, or undefined when nothing is close. A known key
 * with the same last name wins (a key put in the wrong table); then the smallest edit
 * distance within the same table; then over the whole dotted name.
 */
export function suggestKey(path: readonly string[]): string | undefined {
  const leaf = path[path.length - 1];
  const parent = path.slice(0, -1).join(".");
  const full = path.join(".");
  const sameLeaf = KNOWN.filter((k) => k.split(".").pop() === leaf && k !== full);
  if (sameLeaf.length > 0) return sameLeaf[0];
  const limit = (s: string) => Math.max(2, Math.floor(s.length / 3));
  let best: string | undefined;
  let bestScore = Infinity;
  for (const k of KNOWN) {
    const kParent = k.split(".").slice(0, -1).join(".");
    const kLeaf = k.split(".").pop() as string;
    const score = kParent === parent ? editDistance(leaf, kLeaf) : editDistance(full, k) + 1;
    if (score <= limit(leaf) && score < bestScore) {
      best = k;
      bestScore = score;
    }
  }
  return best;
}
