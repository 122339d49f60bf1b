/**
 * Sentence embeddings from the decoder's final hidden states: mean over the tokens, or the last
 * token's state (what decoder-based embedding models are trained for), L2-normalised. Texts are
 * batched with right padding; padded keys are masked and left out of the pooling.
 */
import type { LoraAdapter } from "../lora/adapter.ts";
import type { CausalLM } from "./causal-lm.ts";

export type Pooling = "mean" | "last";

export interface EmbedOptions {
  readonly pooling?: Pooling | undefined;
  readonly batchSize?: number | undefined;
  /** Longer texts are cut to this many tokens. */
  readonly maxTokens?: number | undefined;
  readonly adapter?: LoraAdapter | undefined;
}

export async function embedTexts(lm: CausalLM, texts: ReadonlyArray<string>, options: EmbedOptions = {}): Promise<Float32Array[]> {
  const pooling = options.pooling ?? "mean";
  const batchSize = options.batchSize ?? 8;
  const maxTokens = options.maxTokens ?? 512;
  const H = lm.config.hiddenSize;
  const pad = lm.tokenizer.eosTokenIds[0] ?? 0;
  const out: Float32Array[] = [];
  for (let start = 0; start < texts.length; start += batchSize) {
    const encoded = texts.slice(start, start + batchSize).map((t) => {
      const ids = lm.tokenizer.encode(t, { addSpecialTokens: true }).slice(0, maxTokens);
      return ids.length > 0 ? ids : [pad];
    });
    const seq = Math.max(...encoded.map((e) => e.length));
    const ids = encoded.map((e) => [...e, ...Array<number>(seq - e.length).fill(pad)]);
    const lengths = encoded.map((e) => e.length);
    const { hidden: states, cache } = await lm.forward({
      ids,
      // Causal, and never onto padding (a padded query row still sees token 0, so its softmax is defined).
      allowed: (b, q, k) => k <= q && (k < lengths[b]! || k === 0),
      logitsAt: [0],
      adapter: options.adapter,
      hidden: true,
    });
    lm.releaseCache(cache);
    const hidden = states!;
    encoded.forEach((e, b) => {
      const v = new Float32Array(H);
      const from = pooling === "last" ? e.length - 1 : 0;
      for (let s = from; s < e.length; s++) {
        const o = (b * seq + s) * H;
        for (let j = 0; j < H; j++) v[j]! += hidden[o + j]!;
      }
      let norm = 0;
      for (let j = 0; j < H; j++) norm += v[j]! * v[j]!;
      const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
      for (let j = 0; j < H; j++) v[j]! *= inv;
      out.push(v);
    });
  }
  return out;
}
