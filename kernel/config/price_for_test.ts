import assert from "node:assert/strict";
import { DEFAULT_CONFIG, mergeLayers, parseLayer, priceFor } from "./mod.ts";

const pricing = (prices: Record<string, number>) => ({
  pricing: Object.fromEntries(
    Object.entries(prices).map(([k, v]) => [k, { input_per_mtok: v, output_per_mtok: v }]),
  ),
});

Deno.test("priceFor() returns an exact provider/model price", () => {
  assert.deepEqual(priceFor(DEFAULT_CONFIG, "openai", "gpt-4o"), {
    input_per_mtok: 2.5,
    output_per_mtok: 10,
  });
  assert.equal(priceFor(DEFAULT_CONFIG, "openai", "gpt-4o-mini")?.input_per_mtok, 0.15);
});

Deno.test("priceFor() returns undefined for an unpriced model", () => {
  assert.equal(priceFor(DEFAULT_CONFIG, "openai", "gpt-5-unknown"), undefined);
  assert.equal(priceFor(DEFAULT_CONFIG, "acme", "gpt-4o"), undefined);
  assert.equal(priceFor(DEFAULT_CONFIG, "openai", "gpt-4o-2024-08-06"), undefined);
  assert.equal(priceFor(DEFAULT_CONFIG, "anthropic", "toString"), undefined);
});

Deno.test("priceFor() matches a trailing * as a prefix, longest first", () => {
  assert.equal(
    priceFor(DEFAULT_CONFIG, "anthropic", "claude-sonnet-4-20250514")?.input_per_mtok,
    3,
  );
  assert.equal(priceFor(DEFAULT_CONFIG, "anthropic", "claude-opus-4-1")?.input_per_mtok, 15);
  assert.equal(
    priceFor(DEFAULT_CONFIG, "anthropic", "claude-opus-4-5-20251101")?.input_per_mtok,
    5,
  );
  const p = pricing({ "x/*": 1, "x/a*": 2, "x/ab": 3 });
  assert.equal(priceFor(p, "x", "ab")?.input_per_mtok, 3);
  assert.equal(priceFor(p, "x", "abc")?.input_per_mtok, 2);
  assert.equal(priceFor(p, "x", "b")?.input_per_mtok, 1);
  assert.equal(priceFor(p, "xy", "a"), undefined);
});

Deno.test("priceFor() prices local models at zero", () => {
  assert.deepEqual(priceFor(DEFAULT_CONFIG, "local", "qwen2.5-coder:7b"), {
    input_per_mtok: 0,
    output_per_mtok: 0,
  });
});

Deno.test("priceFor() sees prices added by an operator layer", () => {
  const { config } = mergeLayers([parseLayer(
    '[pricing."fake/scripted"]\ninput_per_mtok = 1\noutput_per_mtok = 2',
    { kind: "system", file: "/h/etc/config.toml" },
  )]);
  assert.deepEqual(priceFor(config, "fake", "scripted"), { input_per_mtok: 1, output_per_mtok: 2 });
});
