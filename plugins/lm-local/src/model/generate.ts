/**
 * Text generation: prefill the prompt once, then one token per step from the KV cache, until
 * an end-of-sequence token, a stop string or the token limit.
 */
import { BdcError } from "@bdc/core";
import type { LoraAdapter } from "../lora/adapter.ts";
import type { Composition } from "../lora/composition.ts";
import type { CausalLM } from "./causal-lm.ts";
import { Sampler, type SamplingOptions } from "./sampler.ts";

export interface GenerateOptions extends SamplingOptions {
  readonly maxNewTokens?: number | undefined;
  /** Generation ends at the first of these; the text is cut before it. */
  readonly stop?: ReadonlyArray<string> | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Called with the text so far after each token (streaming). */
  readonly onText?: ((text: string) => void) | undefined;
  /** A LoRA adapter for this generation (the model must have slots for it). */
  readonly adapter?: LoraAdapter | Composition | undefined;
}

export interface Generation {
  readonly text: string;
  readonly tokens: ReadonlyArray<number>;
  readonly promptTokens: number;
  readonly finishReason: "stop" | "length";
  readonly prefillSeconds: number;
  readonly decodeSeconds: number;
  /** Generated tokens per second of decoding (prefill excluded). */
  readonly tokensPerSecond: number;
}

const now = () => performance.now() / 1000;

export async function generate(lm: CausalLM, promptIds: ReadonlyArray<number>, options: GenerateOptions = {}): Promise<Generation> {
  if (promptIds.length === 0) throw new Error("generate: the prompt has no tokens");
  const limit = lm.config.maxPositions;
  if (promptIds.length >= limit) {
    throw new BdcError({ code: "BDC_PROMPT_TOO_LONG", message: `the prompt has ${promptIds.length} tokens; ${lm.dir} takes at most ${limit} positions (max_position_embeddings)`, hint: "shorten the prompt (fewer examples or less feedback in it)" });
  }
  const maxNew = Math.min(options.maxNewTokens ?? 256, limit - promptIds.length);
  const vocab = lm.config.vocabSize;
  const eos = new Set(lm.config.eosTokenIds.concat(lm.tokenizer.eosTokenIds));
  const sampler = new Sampler(options);
  const stops = (options.stop ?? []).filter((s) => s.length > 0);
  const longestStop = Math.max(0, ...stops.map((s) => s.length));
  const decoder = lm.tokenizer.incrementalDecoder({ skipSpecialTokens: true });
  const tokens: number[] = [];
  let text = "";
  let finishReason: Generation["finishReason"] = "length";
  let cutAtStop = false;

  const t0 = now();
  const adapter = options.adapter;
  let step = await lm.forward({ ids: [promptIds], adapter });
  const t1 = now();
  try {
    while (tokens.length < maxNew) {
      options.signal?.throwIfAborted();
      const next = sampler.next(step.logits, 0, vocab);
      if (eos.has(next)) {
        finishReason = "stop";
        break;
      }
      tokens.push(next);
      const before = text.length;
      text += decoder.push(next);
      // A stop string can only end in the new text, so only the tail is searched.
      const cut = firstStop(text, stops, Math.max(0, before - longestStop));
      if (cut !== undefined) {
        text = text.slice(0, cut);
        finishReason = "stop";
        cutAtStop = true;
        break;
      }
      options.onText?.(text);
      if (tokens.length >= maxNew) break;
      step = await lm.forward({ ids: [[next]], past: step.cache, adapter });
    }
  } finally {
    // On a GPU the cache is device memory: freed now rather than when it is garbage collected.
    lm.releaseCache(step.cache);
  }
  // Text held back as an incomplete character is complete now (or never will be).
  if (!cutAtStop) text += decoder.flush();
  const t2 = now();
  const decodeSeconds = t2 - t1;
  return { text, tokens, promptTokens: promptIds.length, finishReason, prefillSeconds: t1 - t0, decodeSeconds, tokensPerSecond: decodeSeconds > 0 ? tokens.length / decodeSeconds : 0 };
}

function firstStop(text: string, stops: ReadonlyArray<string>, from: number): number | undefined {
  let best: number | undefined;
  for (const s of stops) {
    const i = text.indexOf(s, from);
    if (i >= 0 && (best === undefined || i < best)) best = i;
  }
  return best;
}
