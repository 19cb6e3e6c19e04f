import assert from "node:assert/strict";
import { parseKeys } from "./key_reader.ts";

Deno.test("parseKeys() turns raw terminal bytes into keys", async (t) => {
  await t.step("printable text, Enter (CR or CRLF), Backspace", () => {
    assert.deepEqual(parseKeys("hé\r"), [
      { name: "char", char: "h" },
      { name: "char", char: "é" },
      { name: "enter" },
    ]);
    assert.deepEqual(parseKeys("\r\n\x7f\b"), [
      { name: "enter" },
      { name: "backspace" },
      { name: "backspace" },
    ]);
  });
  await t.step("control keys", () => {
    assert.deepEqual(parseKeys("\x03\x04\x15\x17\x0c\t").map((k) => k.name), [
      "ctrl_c",
      "ctrl_d",
      "ctrl_u",
      "ctrl_w",
      "ctrl_l",
      "tab",
    ]);
  });
  await t.step("escape sequences: arrows, home, end, delete; a lone Esc", () => {
    assert.deepEqual(parseKeys("\x1b[A\x1b[B\x1b[C\x1b[D\x1bOH\x1b[4~\x1b[3~").map((k) => k.name), [
      "up",
      "down",
      "right",
      "left",
      "home",
      "end",
      "delete",
    ]);
    assert.deepEqual(parseKeys("\x1b"), [{ name: "escape" }]);
    assert.deepEqual(parseKeys("\x1b[1;5Cx"), [{ name: "right" }, { name: "char", char: "x" }]);
  });
  await t.step("other control bytes are dropped", () => {
    assert.deepEqual(parseKeys("\x01a\x02"), [{ name: "char", char: "a" }]);
  });
});
