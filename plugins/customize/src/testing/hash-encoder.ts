/**
 * A bag-of-words encoder for tests and the synthetic benchmark: each word adds a fixed seeded
 * random vector, and the sum is normalised. Inputs that share their words embed close together,
 * so a family of inputs marked by its words is recognisable from the embedding, with no model to
 * download. It counts whitespace-separated words as its tokens, with a window of `maxTokens`.
 */
import { mixSeed, mulberry32 } from "@bdc/lm-local";
import type { Encoder } from "@bdc/policy";

function wordVector(word: string, dimension: number): Float64Array {
  let h = 2166136261;
  for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 16777619);
  const rand = mulberry32(mixSeed(h >>> 0, dimension));
  return Float64Array.from({ length: dimension }, () => rand() * 2 - 1);
}

export function hashEncoder(dimension = 16, maxTokens = 64): Encoder {
  const words = (text: string) => text.toLowerCase().split(/[^a-z0-9_]+/).filter((w) => w.length > 0);
  return {
    name: "hash",
    model: `hash-bow-${dimension}`,
    dimension,
    maxTokens,
    countTokens: (text) => words(text).length,
    async embed(texts) {
      return texts.map((t) => {
        const sum = new Float64Array(dimension);
        for (const w of words(t).slice(0, maxTokens)) wordVector(w, dimension).forEach((v, i) => (sum[i]! += v));
        const norm = Math.hypot(...sum) || 1;
        return Float32Array.from(sum, (v) => v / norm);
      });
    },
  };
}
