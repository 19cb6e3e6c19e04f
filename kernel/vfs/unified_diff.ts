/**
 * `unifiedDiff`: the text `astrid diff` prints for a changed text file, in the format of
 * `diff -u` / `git diff` (Myers' algorithm on lines, 3 lines of context by default). Past
 * 1,000 edits it gives up finding the shortest script and shows the changed middle of the
 * file as one replacement.
 *
 * @module
 */

/** Options of {@link unifiedDiff}. */
export interface UnifiedDiffOptions {
  /** The `---` label (default `a`). */
  fromLabel?: string;
  /** The `+++` label (default `b`). */
  toLabel?: string;
  /** Lines of context around each change (default 3). */
  context?: number;
}

interface Op {
  type: " " | "-" | "+";
  line: string;
}

const MAX_EDITS = 1000;

/** Splits text into lines that keep their `\n` (the last may lack one). */
function lines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/**
 * The unified diff turning `before` into `after`, or `""` when they are equal.
 *
 * @example
 * ```ts
 * import { unifiedDiff } from "./mod.ts";
 *
 * const text = unifiedDiff("a\nb\n", "a\nc\n", { fromLabel: "a/x", toLabel: "b/x" });
 * if (!text.includes("-b\n+c\n")) throw new Error(text);
 * ```
 */
export function unifiedDiff(
  before: string,
  after: string,
  options: UnifiedDiffOptions = {},
): string {
  if (before === after) return "";
  const a = lines(before);
  const b = lines(after);
  const ops = diffLines(a, b);
  const context = options.context ?? 3;
  let out = `--- ${options.fromLabel ?? "a"}\n+++ ${options.toLabel ?? "b"}\n`;
  const changes: number[] = [];
  ops.forEach((op, i) => {
    if (op.type !== " ") changes.push(i);
  });
  // Line numbers (0-based) in a and b before each op.
  const aAt: number[] = [];
  const bAt: number[] = [];
  let x = 0;
  let y = 0;
  for (const op of ops) {
    aAt.push(x);
    bAt.push(y);
    if (op.type !== "+") x++;
    if (op.type !== "-") y++;
  }
  let i = 0;
  while (i < changes.length) {
    let end = i;
    while (end + 1 < changes.length && changes[end + 1] - changes[end] <= 2 * context + 1) end++;
    const from = Math.max(0, changes[i] - context);
    const to = Math.min(ops.length, changes[end] + context + 1);
    const hunk = ops.slice(from, to);
    const aLen = hunk.filter((op) => op.type !== "+").length;
    const bLen = hunk.filter((op) => op.type !== "-").length;
    const aStart = aLen === 0 ? aAt[from] : aAt[from] + 1;
    const bStart = bLen === 0 ? bAt[from] : bAt[from] + 1;
    out += `@@ -${aStart},${aLen} +${bStart},${bLen} @@\n`;
    for (const op of hunk) {
      out += op.type + op.line;
      if (!op.line.endsWith("\n")) out += "\n\\ No newline at end of file\n";
    }
    i = end + 1;
  }
  return out;
}

/** The edit script from `a` to `b`: common prefix and suffix, Myers in the middle. */
function diffLines(a: string[], b: string[]): Op[] {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const midA = a.slice(start, endA);
  const midB = b.slice(start, endB);
  const middle = myers(midA, midB) ?? [
    ...midA.map((line): Op => ({ type: "-", line })),
    ...midB.map((line): Op => ({ type: "+", line })),
  ];
  return [
    ...a.slice(0, start).map((line): Op => ({ type: " ", line })),
    ...middle,
    ...a.slice(endA).map((line): Op => ({ type: " ", line })),
  ];
}

/** Myers' O((N+M)D) shortest edit script, or null past {@link MAX_EDITS} edits. */
function myers(a: string[], b: string[]): Op[] | null {
  const n = a.length;
  const m = b.length;
  const maxD = Math.min(n + m, MAX_EDITS);
  const off = maxD + 1;
  const v = new Int32Array(2 * maxD + 3);
  const snapshots: Int32Array[] = [];
  for (let d = 0; d <= maxD; d++) {
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1])
        ? v[off + k + 1]
        : v[off + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[off + k] = x;
      if (x >= n && y >= m) {
        snapshots.push(v.slice(off - d, off + d + 1));
        return backtrack(a, b, snapshots, d);
      }
    }
    snapshots.push(v.slice(off - d, off + d + 1));
  }
  return null;
}

function backtrack(a: string[], b: string[], snapshots: Int32Array[], depth: number): Op[] {
  const ops: Op[] = [];
  let x = a.length;
  let y = b.length;
  for (let d = depth; d > 0; d--) {
    const prev = snapshots[d - 1];
    const at = (k: number) => prev[k + d - 1];
    const k = x - y;
    const insertion = k === -d || (k !== d && at(k - 1) < at(k + 1));
    const prevK = insertion ? k + 1 : k - 1;
    const prevX = at(prevK);
    const midX = insertion ? prevX : prevX + 1;
    while (x > midX) {
      ops.push({ type: " ", line: a[x - 1] });
      x--;
      y--;
    }
    if (insertion) {
      ops.push({ type: "+", line: b[y - 1] });
      y--;
    } else {
      ops.push({ type: "-", line: a[x - 1] });
      x--;
    }
  }
  while (x > 0 && y > 0) {
    ops.push({ type: " ", line: a[x - 1] });
    x--;
    y--;
  }
  return ops.reverse();
}
