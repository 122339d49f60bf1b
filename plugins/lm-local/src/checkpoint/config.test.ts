import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { BdcError } from "@bdc/core";
import { readModelConfig, ropeInverseFrequencies } from "./config.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-config-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;

function checkpoint(config: Record<string, unknown>, generation?: Record<string, unknown>): string {
  const dir = path.join(tmp, String(n++));
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
  if (generation !== undefined) fs.writeFileSync(path.join(dir, "generation_config.json"), JSON.stringify(generation));
  return dir;
}

function rejects(fn: () => unknown, code: string, ...patterns: RegExp[]): BdcError {
  let error: BdcError | undefined;
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BdcError, String(e));
    assert.equal(e.code, code, e.message);
    for (const p of patterns) assert.match(e.message, p);
    error = e;
    return true;
  });
  return error!;
}

// Llama-3.2-1B-Instruct's config.json (the keys that matter), with its generation_config.json.
const LLAMA32 = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  head_dim: 64,
  hidden_act: "silu",
  hidden_size: 2048,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: "llama",
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: "llama3" },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  vocab_size: 128256,
};

// Qwen2.5-0.5B-Instruct's.
const QWEN25 = {
  architectures: ["Qwen2ForCausalLM"],
  bos_token_id: 151643,
  eos_token_id: 151645,
  hidden_act: "silu",
  hidden_size: 896,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  model_type: "qwen2",
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  use_sliding_window: false,
  vocab_size: 151936,
};

// Mistral-7B-Instruct-v0.1's.
const MISTRAL = {
  architectures: ["MistralForCausalLM"],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: "silu",
  hidden_size: 4096,
  intermediate_size: 14336,
  max_position_embeddings: 32768,
  model_type: "mistral",
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  vocab_size: 32000,
};

test("llama: Llama-3.2-1B-Instruct's config", () => {
  const dir = checkpoint(LLAMA32, { bos_token_id: 128000, eos_token_id: [128001, 128008, 128009], do_sample: true });
  const c = readModelConfig(dir);
  assert.deepEqual(c, {
    arch: "llama",
    architecture: "LlamaForCausalLM",
    configFile: path.join(dir, "config.json"),
    vocabSize: 128256,
    hiddenSize: 2048,
    intermediateSize: 8192,
    numLayers: 16,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 64,
    rmsNormEps: 1e-5,
    ropeTheta: 500000,
    ropeScaling: { type: "llama3", factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
    maxPositions: 131072,
    tieWordEmbeddings: true,
    attentionBias: false,
    outputBias: false,
    mlpBias: false,
    bosTokenId: 128000,
    eosTokenIds: [128001, 128008, 128009],
    padTokenId: undefined,
    torchDtype: "bfloat16",
    slidingWindow: undefined,
  });
});

test("llama: defaults, attention_bias covers o_proj, legacy rope_scaling `type`", () => {
  const { head_dim: _h, num_key_value_heads: _k, rope_theta: _t, tie_word_embeddings: _w, rope_scaling: _s, ...rest } = LLAMA32;
  const c = readModelConfig(checkpoint({ ...rest, eos_token_id: 2, attention_bias: true, mlp_bias: true, rope_scaling: { type: "linear", factor: 2 } }, { eos_token_id: [2, 7] }));
  assert.equal(c.numKvHeads, 32);
  assert.equal(c.headDim, 64); // 2048 / 32
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.tieWordEmbeddings, false);
  assert.equal(c.attentionBias, true);
  assert.equal(c.outputBias, true);
  assert.equal(c.mlpBias, true);
  assert.deepEqual(c.ropeScaling, { type: "linear", factor: 2 });
  assert.deepEqual(c.eosTokenIds, [2, 7]); // config's, then generation_config's new ones
  assert.equal(readModelConfig(checkpoint({ ...LLAMA32, rope_scaling: { rope_type: "default" } })).ropeScaling, undefined);
});

test("qwen2: Qwen2.5-0.5B-Instruct's config: q/k/v biases, no o_proj bias, tied, window reported only when used", () => {
  const c = readModelConfig(checkpoint(QWEN25, { bos_token_id: 151643, eos_token_id: [151645, 151643], pad_token_id: 151643 }));
  assert.equal(c.arch, "qwen2");
  assert.equal(c.headDim, 64);
  assert.equal(c.numKvHeads, 2);
  assert.equal(c.attentionBias, true);
  assert.equal(c.outputBias, false);
  assert.equal(c.mlpBias, false);
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.ropeTheta, 1e6);
  assert.equal(c.ropeScaling, undefined);
  assert.equal(c.slidingWindow, undefined); // use_sliding_window: false
  assert.deepEqual(c.eosTokenIds, [151645, 151643]);
  assert.equal(readModelConfig(checkpoint({ ...QWEN25, use_sliding_window: true })).slidingWindow, 32768);
  // Without the key transformers' Qwen2Config defaults to untied.
  const { tie_word_embeddings: _t, ...untied } = QWEN25;
  assert.equal(readModelConfig(checkpoint(untied)).tieWordEmbeddings, false);
});

test("mistral: Mistral-7B-Instruct-v0.1's config", () => {
  const c = readModelConfig(checkpoint(MISTRAL));
  assert.equal(c.arch, "mistral");
  assert.equal(c.headDim, 128);
  assert.equal(c.slidingWindow, 4096);
  assert.equal(c.attentionBias, false);
  assert.equal(c.tieWordEmbeddings, false);
  assert.deepEqual(c.eosTokenIds, [2]);
  assert.equal(c.bosTokenId, 1);
  assert.equal(readModelConfig(checkpoint({ ...MISTRAL, sliding_window: null })).slidingWindow, undefined);
});

test("an unsupported architecture names the file, what it found and what is supported", () => {
  const dir = checkpoint({ ...LLAMA32, architectures: ["GemmaForCausalLM"], model_type: "gemma" });
  const e = rejects(() => readModelConfig(dir), "BDC_MODEL_UNSUPPORTED", /config\.json/, /"GemmaForCausalLM"/, /LlamaForCausalLM/, /Qwen2ForCausalLM/, /MistralForCausalLM/);
  assert.ok(e.message.includes(path.join(dir, "config.json")));
  assert.ok(e.hint !== undefined);
  rejects(() => readModelConfig(checkpoint({ ...LLAMA32, hidden_act: "gelu" })), "BDC_MODEL_UNSUPPORTED", /hidden_act "gelu"/);
  rejects(() => readModelConfig(checkpoint({ ...LLAMA32, rope_scaling: { rope_type: "yarn", factor: 4 } })), "BDC_MODEL_UNSUPPORTED", /rope_scaling type "yarn" is not supported \(supported: default, linear, llama3\)/);
  rejects(() => readModelConfig(checkpoint({ ...LLAMA32, quantization_config: { quant_method: "gptq" } })), "BDC_MODEL_UNSUPPORTED", /quantised.*gptq/);
  // No architectures: model_type decides, as transformers' AutoConfig does.
  const { architectures: _a, ...noArch } = QWEN25;
  assert.equal(readModelConfig(checkpoint(noArch)).architecture, "Qwen2ForCausalLM");
});

test("a missing config.json says where, and how to get a checkpoint", () => {
  const dir = path.join(tmp, "empty");
  fs.mkdirSync(dir);
  const e = rejects(() => readModelConfig(dir), "BDC_MODEL_FILE_MISSING", new RegExp(path.join(dir, "config.json").replace(/[/\\.]/g, "\\$&")));
  assert.match(e.hint ?? "", /pnpm bdc models pull <repo>/);
  assert.match(e.hint ?? "", /pnpm bdc models make-tiny --out DIR/);
});

test("broken values are located", () => {
  rejects(() => readModelConfig(checkpoint({ ...LLAMA32, hidden_size: "2048" })), "BDC_MODEL_CONFIG_INVALID", /"hidden_size" is "2048"; expected a positive integer/);
  const { vocab_size: _v, ...noVocab } = LLAMA32;
  rejects(() => readModelConfig(checkpoint(noVocab)), "BDC_MODEL_CONFIG_INVALID", /"vocab_size" is missing/);
  rejects(() => readModelConfig(checkpoint({ ...LLAMA32, num_key_value_heads: 5 })), "BDC_MODEL_CONFIG_INVALID", /num_key_value_heads/);
  rejects(() => readModelConfig(checkpoint({ ...LLAMA32, rope_scaling: { rope_type: "llama3", factor: 8 } })), "BDC_MODEL_CONFIG_INVALID", /rope_scaling\.low_freq_factor/);
  const dir = path.join(tmp, "notjson");
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "config.json"), "{");
  rejects(() => readModelConfig(dir), "BDC_MODEL_FILE_INVALID", /config\.json: is not valid JSON/);
});

test("transformers v5's rope_parameters", () => {
  const { rope_scaling: _s, rope_theta: _t, ...rest } = LLAMA32;
  const c = readModelConfig(checkpoint({ ...rest, rope_parameters: { rope_type: "llama3", rope_theta: 500000, factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }));
  assert.equal(c.ropeTheta, 500000);
  assert.equal(c.ropeScaling?.type, "llama3");
});

const close = (got: number, want: number, rel = 1e-6) => assert.ok(Math.abs(got - want) <= rel * Math.abs(want), `${got} vs ${want}`);

test("RoPE inverse frequencies: 1 / theta^(2i/d)", () => {
  const inv = ropeInverseFrequencies({ headDim: 8, ropeTheta: 10000, ropeScaling: undefined });
  assert.equal(inv.length, 4);
  [1, 0.1, 0.01, 0.001].forEach((want, i) => close(inv[i]!, want));
  // Linear scaling is folded in: every frequency / factor.
  const linear = ropeInverseFrequencies({ headDim: 8, ropeTheta: 10000, ropeScaling: { type: "linear", factor: 4 } });
  [0.25, 0.025, 0.0025, 0.00025].forEach((want, i) => close(linear[i]!, want));
});

test("RoPE llama3 scaling against a hand computation", () => {
  // headDim 8, theta 10000: inv_freq = [1, 0.1, 0.01, 0.001], wavelen = 2π / inv_freq = [6.28, 62.8, 628.3, 6283.2].
  // original 2048, low_freq_factor 1, high_freq_factor 4, factor 8:
  //   low_freq_wavelen = 2048 / 1 = 2048, high_freq_wavelen = 2048 / 4 = 512.
  //   i = 0, 1: wavelen < 512            -> high frequency, unchanged: 1, 0.1
  //   i = 3:    wavelen 6283 > 2048      -> low frequency, / factor:   0.001 / 8 = 0.000125
  //   i = 2:    512 <= 628.3 <= 2048     -> smoothed:
  //             smooth = (2048 / 628.3185 - 1) / (4 - 1) = (3.2594932 - 1) / 3 = 0.7531644
  //             (1 - smooth) * 0.01 / 8 + smooth * 0.01 = 0.0000308544 + 0.0075316441 = 0.0078401886
  const inv = ropeInverseFrequencies({ headDim: 8, ropeTheta: 10000, ropeScaling: { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 2048 } });
  const smooth = (2048 / ((2 * Math.PI) / 0.01) - 1) / 3;
  close(smooth, 0.7531644, 1e-6);
  close(inv[0]!, 1);
  close(inv[1]!, 0.1);
  close(inv[2]!, 0.0078401886);
  close(inv[2]!, ((1 - smooth) * 0.01) / 8 + smooth * 0.01);
  close(inv[3]!, 0.000125);
});
