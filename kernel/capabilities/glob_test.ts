import assert from "node:assert/strict";
import { CapabilityCode, CapabilityError } from "./errors.ts";
import { compileGlob, escapeGlob, GLOB_LIMITS, globCacheStats, matchGlob } from "./glob.ts";

type Row = [pattern: string, path: string, expected: boolean];

function table(rows: Row[]): void {
  for (const [pattern, path, expected] of rows) {
    assert.equal(
      matchGlob(pattern, path),
      expected,
      `matchGlob(${JSON.stringify(pattern)}, ${JSON.stringify(path)}) should be ${expected}`,
    );
  }
}

function assertInvalid(pattern: string, position: number, fragment: string): void {
  assert.throws(
    () => compileGlob(pattern),
    (err: unknown) => {
      assert.ok(err instanceof CapabilityError, `${pattern}: not a CapabilityError`);
      assert.equal(err.code, CapabilityCode.GLOB_INVALID);
      assert.equal(err.data?.pattern, pattern);
      assert.equal(err.data?.position, position, `${pattern}: position`);
      assert.ok(err.message.includes(fragment), `${pattern}: message "${err.message}"`);
      assert.ok(err.message.startsWith(`Invalid glob "${pattern}": `));
      return true;
    },
  );
}

Deno.test("matchGlob() does not let * cross /", () => {
  table([
    ["*", "abc", true],
    ["*", "", true],
    ["*", "a/b", false],
    ["a/*", "a/b", true],
    ["a/*", "a/b/c", false],
    ["a/*", "a/", true],
    ["a/*/c", "a/b/c", true],
    ["a/*/c", "a/b/x/c", false],
    ["*.ts", "src/a.ts", false],
    ["fs:/work/*.ts", "fs:/work/a.ts", true],
    ["fs:/work/*.ts", "fs:/work/src/a.ts", false],
    ["tool:*", "tool:read_file", true],
    ["tool:*", "tool:a/b", false],
    ["net:*:443", "net:api.github.com:443", true],
    ["net:*:443", "net:api.github.com:80", false],
    ["process:git*", "process:git-lfs", true],
    ["a*b*c", "aXbYc", true],
    ["a*b*c", "a/b/c", false],
  ]);
});

Deno.test("matchGlob() lets ** match any number of whole segments", async (t) => {
  await t.step("infix ** matches zero, one and many segments", () => {
    table([
      ["a/**/b", "a/b", true],
      ["a/**/b", "a/x/b", true],
      ["a/**/b", "a/x/y/b", true],
      ["a/**/b", "a/xb", false],
      ["a/**/b", "ab", false],
      ["a/**/b", "a/x/y/c", false],
      ["fs:/work/**/*.ts", "fs:/work/a.ts", true],
      ["fs:/work/**/*.ts", "fs:/work/repo/src/a.ts", true],
      ["fs:/work/**/*.ts", "fs:/etc/a.ts", false],
      ["a/**/**/b", "a/b", true],
      ["a/**/**/b", "a/x/y/z/b", true],
    ]);
  });
  await t.step("trailing ** needs the slash but matches any depth below", () => {
    table([
      ["a/**", "a/x", true],
      ["a/**", "a/x/y", true],
      ["a/**", "a/", true],
      ["a/**", "a", false],
      ["a/**", "ab/x", false],
      ["fs:/work/repo/**", "fs:/work/repo/src/deep/a.ts", true],
      ["fs:/work/repo/**", "fs:/work/repository/a.ts", false],
      ["a{,/**}", "a", true],
      ["a{,/**}", "a/x/y", true],
    ]);
  });
  await t.step("leading ** matches any prefix of whole segments", () => {
    table([
      ["**/b", "b", true],
      ["**/b", "x/b", true],
      ["**/b", "x/y/b", true],
      ["**/b", "xb", false],
      ["**/.env", "fs:/work/repo/.env", true],
    ]);
  });
  await t.step("a lone ** matches everything", () => {
    table([
      ["**", "", true],
      ["**", "a", true],
      ["**", "fs:/a/b/c", true],
      ["**", "net:host:1", true],
    ]);
  });
});

Deno.test("matchGlob() treats ? as one non-/ character", () => {
  table([
    ["a?c", "abc", true],
    ["a?c", "ac", false],
    ["a?c", "abbc", false],
    ["a?c", "a/c", false],
    ["a?c", "aéc", true],
    ["a?c", "a😀c", true], // one code point, two UTF-16 units
  ]);
});

Deno.test("matchGlob() expands braces, nested and empty", () => {
  table([
    ["{a,b}", "a", true],
    ["{a,b}", "b", true],
    ["{a,b}", "c", false],
    ["{a,b}", "ab", false],
    ["x{a,b}y", "xay", true],
    ["x{,a}y", "xy", true],
    ["x{,a}y", "xay", true],
    ["{a,{b,c}d}", "cd", true],
    ["{a,{b,c}d}", "bd", true],
    ["{a,{b,c}d}", "a", true],
    ["{a,{b,c}d}", "ad", false],
    ["{a,b{c,{d,e}}}f", "bef", true],
    ["*.{ts,js}", "a.ts", true],
    ["*.{ts,js}", "a.js", true],
    ["*.{ts,js}", "a.rs", false],
    ["{tool:*,process:git}", "process:git", true],
    ["{tool:*,process:git}", "tool:read_file", true],
    ["{tool:*,process:git}", "process:rm", false],
    ["a/{x/**,y}/b", "a/b", false], // a/x/**/b or a/y/b
    ["a/{**,y}/b", "a/b", true], // a/**/b, zero segments
    ["a/{**,y}/b", "a/q/r/b", true],
    ["a/{x/**,y}/b", "a/x/b", true],
    ["a/{x/**,y}/b", "a/x/q/r/b", true],
    ["a/{x/**,y}/b", "a/y/b", true],
    ["a/{x/**,y}/b", "a/z/b", false],
    ["{}", "", true],
    ["a{}b", "ab", true],
    ["a,b", "a,b", true],
  ]);
});

Deno.test("matchGlob() matches character classes, never /", () => {
  table([
    ["[abc]", "a", true],
    ["[abc]", "d", false],
    ["[a-z]x", "qx", true],
    ["[a-z]x", "Qx", false],
    ["[!a]", "b", true],
    ["[!a]", "a", false],
    ["[^a]", "b", true],
    ["[!a]", "/", false],
    ["a[!x]b", "a/b", false],
    ["[+-0]", "/", false], // the range spans "/", still no segment crossing
    ["[+-0]", ".", true],
    ["[]]", "]", true],
    ["[!]]", "a", true],
    ["[!]]", "]", false],
    ["[a-]", "-", true],
    ["[-a]", "-", true],
    ["[\\]a]", "]", true],
    ["[\\-]", "-", true],
    ["[é-ë]", "ê", true],
    ["[😀]", "😀", true],
    ["[^😀]", "😀", false],
    ["[*?{]", "*", true],
    ["[*?{]", "x", false],
  ]);
});

Deno.test("matchGlob() treats \\ as an escape for the next character", () => {
  table([
    ["\\*", "*", true],
    ["\\*", "a", false],
    ["a\\?", "a?", true],
    ["a\\?", "ab", false],
    ["\\{a,b\\}", "{a,b}", true],
    ["\\[a]", "[a]", true],
    ["\\\\", "\\", true],
    ["\\**", "*abc", true],
    ["\\*\\*", "**", true],
    ["a\\/b", "a/b", true],
    ["net:\\[::1\\]:*", "net:[::1]:8080", true],
    ["net:\\[::1\\]:*", "net:1:8080", false],
  ]);
});

Deno.test("matchGlob() treats regex metacharacters as literals", () => {
  table([
    ["a.b", "a.b", true],
    ["a.b", "axb", false],
    ["a+b", "a+b", true],
    ["a+b", "aab", false],
    ["(a|b)", "(a|b)", true],
    ["(a|b)", "a", false],
    ["^$", "^$", true],
    ["net:api.github.com:443", "net:apixgithub.com:443", false],
    ["a]b", "a]b", true],
  ]);
});

Deno.test("matchGlob() matches dotfiles with * and ?", () => {
  table([
    ["fs:/work/*", "fs:/work/.env", true],
    ["fs:/work/**", "fs:/work/.git/config", true],
    ["?env", ".env", true],
    ["*", ".", true],
  ]);
});

Deno.test("matchGlob() handles unicode literally and case-sensitively", () => {
  table([
    ["fs:/home/zoë/*", "fs:/home/zoë/notes.md", true],
    ["fs:/日本/*.txt", "fs:/日本/語.txt", true],
    ["ß", "ss", false],
    ["é", "e\u0301", false], // no normalization
    ["README", "readme", false],
  ]);
});

Deno.test("matchGlob() with the empty pattern matches only the empty string", () => {
  table([
    ["", "", true],
    ["", "a", false],
  ]);
});

Deno.test("matchGlob() never matches across newlines unexpectedly", () => {
  table([
    ["a*", "a\nb", true], // * is any non-/ run, newlines included
    ["a", "a\n", false], // anchored at the very end
    ["**", "a\n/b", true],
  ]);
});

Deno.test("compileGlob() rejects invalid patterns naming the position", () => {
  assertInvalid("a{b", 1, `unclosed "{"`);
  assertInvalid("{a,{b}", 0, `unclosed "{"`);
  assertInvalid("a[bc", 1, `unclosed "["`);
  assertInvalid("[]", 0, `unclosed "["`);
  assertInvalid("[!]", 0, `unclosed "["`);
  assertInvalid("ab\\", 2, `trailing "\\"`);
  assertInvalid("[a\\", 0, `unclosed "["`);
  assertInvalid("a}b", 1, `unmatched "}"`);
  assertInvalid("[z-a]", 2, `range "z-a" is reversed`);
  assertInvalid("a**b", 1, `"**" must be a whole segment`);
  assertInvalid("a/**b", 2, `"**" must be a whole segment`);
  assertInvalid("a**/b", 1, `"**" must be a whole segment`);
  assertInvalid("net:**", 4, `"**" must be a whole segment`);
  assertInvalid("{a,b}**", 5, `"**" must be a whole segment`);
  assertInvalid("a/***", 2, `"***" is not a wildcard`);
  assertInvalid("{".repeat(9) + "}".repeat(9), 8, "braces nest deeper than 8");
});

Deno.test("compileGlob() bounds pattern size and brace expansion", () => {
  const long = "a".repeat(GLOB_LIMITS.patternLength + 1);
  assert.throws(() => compileGlob(long), /limit 4096/);
  assert.throws(
    () => compileGlob("{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}"), // 512
    (err: unknown) =>
      err instanceof CapabilityError && err.code === CapabilityCode.GLOB_INVALID &&
      /more than 256 alternatives/.test(err.message),
  );
  assert.ok(compileGlob("{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}").match("abababab")); // 256
});

Deno.test("compileGlob() caches compiled patterns within its bound", async (t) => {
  await t.step("returns the same Glob for the same pattern", () => {
    assert.equal(compileGlob("cache/*/x"), compileGlob("cache/*/x"));
  });
  await t.step("keeps at most the limit", () => {
    for (let i = 0; i < GLOB_LIMITS.cacheSize + 50; i++) compileGlob(`bound/${i}/*`);
    const stats = globCacheStats();
    assert.equal(stats.size, stats.limit);
  });
  await t.step("drops the least recently used first", () => {
    const hot = compileGlob("hot/*");
    for (let i = 0; i < GLOB_LIMITS.cacheSize - 1; i++) {
      compileGlob(`lru/${i}`);
      compileGlob("hot/*");
    }
    assert.equal(compileGlob("hot/*"), hot);
  });
});

Deno.test("compileGlob() exposes an anchored regex and a literal fast path", () => {
  const lit = compileGlob("fs:/work/a.ts");
  assert.equal(lit.literal, "fs:/work/a.ts");
  assert.ok(lit.regex.test("fs:/work/a.ts"));
  assert.ok(!lit.regex.test("xfs:/work/a.ts"));
  assert.equal(compileGlob("fs:/work/\\*").literal, "fs:/work/*");
  assert.equal(compileGlob("fs:/work/*").literal, null);
  assert.equal(compileGlob("a/**/b").regex.source, "^(?:a\\/(?:.*\\/)?b)$");
});

Deno.test("escapeGlob() makes a pattern that matches exactly its input", () => {
  for (const text of ["fs:/a/*.ts", "a{b,c}", "[x]?", "back\\slash", "plain", "a,b", ""]) {
    const glob = compileGlob(escapeGlob(text));
    assert.equal(glob.literal, text);
    assert.ok(glob.match(text));
    assert.ok(!glob.match(text + "x"));
  }
});

Deno.test("compileGlob() records the literal prefix every match starts with", () => {
  assert.equal(compileGlob("fs:/work/repo/**/*.ts").prefix, "fs:/work/repo/");
  assert.equal(compileGlob("fs:/work/{repo,rep}/*").prefix, "fs:/work/rep");
  assert.equal(compileGlob("**/x").prefix, "");
  assert.equal(compileGlob("{a,b}/*").prefix, "");
  assert.equal(compileGlob("a\\*b*").prefix, "a*b");
  assert.ok(!compileGlob("fs:/work/repo/**").match("fs:/work/other/a"));
});
