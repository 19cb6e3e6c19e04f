/**
 * Looks up the price of a model in `[pricing]`. No price means the budget layer refuses the
 * call (DESIGN §6: never unmetered), so this returns undefined rather than a guess.
 *
 * @module
 */
import type { AstridConfig, ModelPrice } from "./astrid_config.ts";

/**
 * The price of `provider/model`: the exact key if present, else the longest key ending in `*`
 * whose text before the `*` starts `provider/model` (`anthropic/claude-sonnet-4*`, `local/*`),
 * else undefined.
 */
export function priceFor(
  config: Pick<AstridConfig, "pricing">,
  provider: string,
  model: string,
): ModelPrice | undefined {
  const id = `${provider}/${model}`;
  const exact = Object.hasOwn(config.pricing, id) ? config.pricing[id] : undefined;
  if (exact) return exact;
  let best: string | undefined;
  for (const key of Object.keys(config.pricing)) {
    if (!key.endsWith("*")) continue;
    const prefix = key.slice(0, -1);
    if (id.startsWith(prefix) && prefix.includes("/") && (!best || key.length > best.length)) {
      best = key;
    }
  }
  return best === undefined ? undefined : config.pricing[best];
}
