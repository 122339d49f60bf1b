/** Log-probability of each token given the ones before it, in one forward pass. */
import type { LoraAdapter } from "../lora/adapter.ts";
import type { Composition } from "../lora/composition.ts";
import type { CausalLM } from "./causal-lm.ts";

/** logprobs[i] = log p(ids[i+1] | ids[0..i]); length ids.length - 1. */
export async function scoreTokens(lm: CausalLM, ids: ReadonlyArray<number>, adapter?: LoraAdapter | Composition): Promise<number[]> {
  if (ids.length < 2) return [];
  const vocab = lm.config.vocabSize;
  const at = Array.from({ length: ids.length - 1 }, (_, i) => i);
  const { logits, cache } = await lm.forward({ ids: [ids], logitsAt: at, adapter });
  lm.releaseCache(cache);
  return at.map((i) => {
    const o = i * vocab;
    let max = -Infinity;
    for (let v = 0; v < vocab; v++) max = Math.max(max, logits[o + v]!);
    let sum = 0;
    for (let v = 0; v < vocab; v++) sum += Math.exp(logits[o + v]! - max);
    return logits[o + ids[i + 1]!]! - max - Math.log(sum);
  });
}
