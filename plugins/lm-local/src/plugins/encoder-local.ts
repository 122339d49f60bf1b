/**
 * encoder/local: sentence embeddings from the local model's final hidden states (mean over the
 * tokens, or the last token), L2-normalised, computed in batches.
 */
import { Schema } from "effect";
import { definePlugin, option, PathOrName, required } from "@bdc/core";
import { embedTexts } from "../model/embed.ts";
import { deviceFields, loadInstanceModel, MODEL_DOC, modelProblems } from "./device-config.ts";
import type { Encoder } from "@bdc/policy";

export const LocalEncoderConfig = Schema.Struct({
  model: required(PathOrName.pipe(Schema.minLength(1)), MODEL_DOC),
  pooling: option(Schema.Literal("mean", "last"), "mean", "mean of the token states, or the last token's state"),
  batch_size: option(Schema.Int.pipe(Schema.positive()), 8, "texts per forward pass"),
  max_tokens: option(Schema.Int.pipe(Schema.positive()), 512, "longer texts are cut to this many tokens"),
  ...deviceFields,
});

export default definePlugin({
  id: "encoder/local",
  version: "0.1.0",
  description: "Sentence embeddings (mean-pooled or last-token, L2-normalised) from a local Llama-family model on ONNX Runtime",
  config: LocalEncoderConfig,
  preflight: (config, ctx) => modelProblems(config.model, config, ctx.baseDir),
  async make(config, _deps, kernel) {
    const { lease, adapter } = await loadInstanceModel(config.model, config, kernel);
    let texts = 0;
    const encoder: Encoder & { stats(): Record<string, number>; close(): Promise<void> } = {
      name: kernel.instance,
      model: config.model,
      dimension: lease.lm.config.hiddenSize,
      embed: (batch, opts) =>
        lease.run(async (m) => {
          (opts?.signal ?? kernel.signal).throwIfAborted();
          const out = await embedTexts(m, batch, { pooling: config.pooling, batchSize: config.batch_size, maxTokens: config.max_tokens, adapter });
          texts += batch.length;
          return out;
        }),
      stats: () => ({ texts }),
      close: () => lease.release(),
    };
    return encoder;
  },
});
