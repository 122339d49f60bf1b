/**
 * policy/local: the student model in-process on ONNX Runtime, behind the same contract as the
 * API policies (the shared layer adds the response cache and accounting), so a workflow swaps
 * it in with one line: `use: policy/local` and `model: <folder or hub id>`. The student is the
 * base model, the base with a fixed `adapter` (SFT, a merge), or a per-request composition of
 * experts from a `composer` instance (DisenLoRA), whose record goes back with the response.
 */
import * as path from "node:path";
import { Schema } from "effect";
import { BdcError, definePlugin, option, optional, PathOrName, required } from "@bdc/core";
import { createPolicy, policyFields, ProviderError, type ProviderClient } from "@bdc/policy";
import { filesKey } from "../model/compiled-cache.ts";
import { generate } from "../model/generate.ts";
import { compositionRecord } from "../lora/composer.ts";
import { inputText } from "../train/data.ts";
import { deviceFields, loadInstanceModel, MODEL_DOC, modelProblems } from "./device-config.ts";

export const LocalPolicyConfig = Schema.Struct({
  ...policyFields,
  model: required(PathOrName.pipe(Schema.minLength(1)), MODEL_DOC),
  top_k: optional(Schema.Int.pipe(Schema.positive()), "sample only among the k most likely tokens (with temperature > 0)"),
  ...deviceFields,
  attention: option(
    Schema.Literal("ops", "fused"),
    "ops",
    "attention as plain ops, or fused: ONNX Runtime's GroupQueryAttention, one kernel per layer (fewer dispatches per token on a GPU; generation is causal, which it requires). Equal to ops to 1e-5 on the CPU; its GPU speed is the device check's to measure",
  ),
});
export type LocalPolicyConfig = Schema.Schema.Type<typeof LocalPolicyConfig>;

export default definePlugin({
  id: "policy/local",
  version: "0.1.0",
  description: "The student LLM in-process on ONNX Runtime (Llama, Qwen2, Mistral checkpoints in Hugging Face format): CPU, any GPU through WebGPU, or CUDA",
  config: LocalPolicyConfig,
  requires: {
    composer: { slot: "composer", optional: true, description: "composes LoRA experts per request (composer/hypernet); instead of a fixed adapter" },
  },
  async preflight(config, ctx) {
    const problems = await modelProblems(config.model, config, ctx.baseDir);
    if (config.attention === "fused" && config.kv_cache === "host") {
      problems.push({ code: "BDC_CONFIG_VALUE", path: ["kv_cache"], message: "attention: fused keeps its cache as GroupQueryAttention lays it out, resident", hint: "remove kv_cache, or set attention: ops" });
    }
    return problems;
  },
  async make(config, deps, kernel) {
    const composer = deps.composer;
    const { dir, lease, adapter } = await loadInstanceModel(config.model, config, kernel, composer, config.attention);
    // The built model's key covers the checkpoint's files (sizes, mtimes), so cached responses
    // of other weights under the same folder name are never served.
    const weightsKey = path.basename(path.dirname(lease.lm.modelPath)) + (config.adapter === undefined ? "" : `+${filesKey(config.adapter)}`) + (composer === undefined ? "" : `+composer:${composer.key}`);
    const client: ProviderClient = {
      provider: "local",
      endpoint: `file://${dir}#${weightsKey}:${config.device}:${config.dtype}`,
      send: async (request, signal) => {
        // The gates come from the encoder, outside the model's lease: it need not wait for generation.
        const composition = composer === undefined ? undefined : await composer.compose(inputText(request.messages), { signal });
        return lease.run(async (lm) => {
          const prompt = lm.tokenizer.applyChatTemplate(request.messages, { addGenerationPrompt: true });
          const ids = lm.tokenizer.encode(prompt, { addSpecialTokens: false });
          try {
            const out = await generate(lm, ids, {
              maxNewTokens: request.sampling.max_tokens,
              temperature: request.sampling.temperature,
              topP: request.sampling.top_p,
              topK: config.top_k,
              seed: request.sampling.seed,
              stop: request.sampling.stop,
              adapter: composition ?? adapter,
              signal,
            });
            return { text: out.text, inputTokens: ids.length, outputTokens: out.tokens.length, finishReason: out.finishReason, model: request.model, ...(composition === undefined ? {} : { composition: compositionRecord(composition) }) };
          } catch (e) {
            if (signal.aborted) throw new ProviderError("aborted", "stopped");
            // Not a transient failure: retrying would fail the same way.
            throw new ProviderError("bad_request", e instanceof BdcError ? e.message : String((e as Error).message ?? e));
          }
        });
      },
    };
    const policy = createPolicy({ client, config, kernel, explain: () => `the local model ${dir} failed on ${config.device}; see the message above` });
    return Object.assign(policy, { close: () => lease.release() });
  },
});
