/**
 * encoder/onnx: a sentence-embedding model from the Hugging Face hub that ships ONNX weights
 * (sentence-transformers repositories with an onnx/ folder, the ports transformers.js uses),
 * pooled as its 1_Pooling/config.json says, L2-normalised, batched, on ONNX Runtime.
 *
 *   pnpm bdc models pull sentence-transformers/all-MiniLM-L6-v2 --onnx
 *   encoders: {code: {use: encoder/onnx, with: {model: sentence-transformers/all-MiniLM-L6-v2}}}
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Schema } from "effect";
import { BdcError, definePlugin, option, optional, PathOrName, required, type PreflightProblem } from "@bdc/core";
import type { Encoder } from "@bdc/policy";
import { resolveModelDir } from "../hub/pull-model.ts";
import { openSentenceEncoder, POOLING_MODES, type SentenceEncoder } from "../model/sentence-encoder.ts";
import { DEFAULT_ONNX_FILES } from "../model/sentence-layout.ts";
import { deviceProblems, placementFields } from "./device-config.ts";

export const OnnxEncoderConfig = Schema.Struct({
  model: required(PathOrName.pipe(Schema.minLength(1)), "a sentence-embedding model folder (onnx/model.onnx, tokenizer.json, 1_Pooling/config.json), or a hub id pulled with `pnpm bdc models pull <id> --onnx`"),
  onnx_file: optional(Schema.String.pipe(Schema.minLength(1)), `the .onnx file in the folder (default ${DEFAULT_ONNX_FILES.join(", else ")}; e.g. onnx/model_quantized.onnx)`),
  pooling: optional(Schema.Array(Schema.Literal(...POOLING_MODES)).pipe(Schema.minItems(1)), "pooling modes, overriding 1_Pooling/config.json (several are concatenated, as sentence-transformers does)"),
  max_tokens: optional(Schema.Int.pipe(Schema.positive()), "longer texts are cut to this many tokens (default: sentence_bert_config.json's max_seq_length)"),
  batch_size: option(Schema.Int.pipe(Schema.positive()), 32, "texts per forward pass"),
  ...placementFields,
  threads: optional(Schema.Int.pipe(Schema.positive()), "CPU threads per operator (default: every core)"),
});
export type OnnxEncoderConfig = Schema.Schema.Type<typeof OnnxEncoderConfig>;

export default definePlugin({
  id: "encoder/onnx",
  version: "0.1.0",
  description: "Sentence embeddings from a Hugging Face ONNX model (sentence-transformers layout: onnx/model.onnx, tokenizer.json, 1_Pooling), L2-normalised, on ONNX Runtime",
  config: OnnxEncoderConfig,
  async preflight(config, ctx) {
    const problems: PreflightProblem[] = [];
    try {
      const dir = resolveModelDir(config.model, ctx.baseDir);
      const files = config.onnx_file === undefined ? DEFAULT_ONNX_FILES : [config.onnx_file];
      if (!files.some((f) => fs.existsSync(path.join(dir, f)))) {
        problems.push({ code: "BDC_MODEL_FILE_MISSING", path: [config.onnx_file === undefined ? "model" : "onnx_file"], message: `${dir} has no ${files.join(" or ")}`, hint: `pull the model with its ONNX weights: pnpm bdc models pull ${config.model} --onnx` });
      }
      if (!fs.existsSync(path.join(dir, "tokenizer.json"))) problems.push({ code: "BDC_MODEL_FILE_MISSING", path: ["model"], message: `${dir} has no tokenizer.json`, hint: "the model's fast tokenizer file is needed; pick a repository that has one" });
    } catch (e) {
      if (!(e instanceof BdcError)) throw e;
      problems.push({ code: e.code, path: ["model"], message: e.message, ...(e.hint === undefined ? {} : { hint: e.hint }) });
    }
    problems.push(...(await deviceProblems(config)));
    return problems;
  },
  async make(config, _deps, kernel) {
    const dir = resolveModelDir(config.model, kernel.baseDir);
    const model: SentenceEncoder = await openSentenceEncoder(dir, {
      onnxFile: config.onnx_file,
      pooling: config.pooling,
      maxTokens: config.max_tokens,
      device: config.device,
      deviceId: config.device_id,
      threads: config.threads,
      spin: false,
    });
    kernel.log(`${config.model}: ${model.onnxFile}, ${model.dimension}-d, pooling ${model.pooling === "in-graph" ? "in the graph" : model.pooling.join("+")}, max ${model.maxTokens} tokens`);
    let texts = 0;
    let calls = 0;
    const encoder: Encoder & { stats(): Record<string, number>; close(): Promise<void> } = {
      name: kernel.instance,
      model: config.model,
      dimension: model.dimension,
      async embed(batch, opts) {
        (opts?.signal ?? kernel.signal).throwIfAborted();
        const out = await model.embed(batch, config.batch_size);
        texts += batch.length;
        calls++;
        return out;
      },
      maxTokens: model.maxTokens,
      countTokens: (text) => model.tokenizer.encode(text, { addSpecialTokens: true }).length,
      stats: () => ({ texts, calls }),
      close: () => model.close(),
    };
    return encoder;
  },
});
