import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { BdcError } from "@bdc/core";
import { readModelConfig, type ModelConfig } from "./config.ts";
import { float32ToBfloat16Bits, bfloat16BitsToNumber } from "@bdc/onnx-graph";
import { writeTinyCheckpoint } from "./make-tiny.ts";
import { INDEX_FILE, openCheckpointWeights, SINGLE_FILE } from "./safetensors.ts";
import { loadTokenizer } from "./tokenizer.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-make-tiny-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = () => path.join(tmp, String(n++));

/** Every tensor transformers' state_dict has for this config, with its shape. */
function expectedTensors(c: ModelConfig): Record<string, number[]> {
  const { hiddenSize: H, numHeads, numKvHeads, headDim: D, intermediateSize: I, vocabSize: V } = c;
  const out: Record<string, number[]> = { "model.embed_tokens.weight": [V, H], "model.norm.weight": [H] };
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    out[`${p}.input_layernorm.weight`] = [H];
    out[`${p}.post_attention_layernorm.weight`] = [H];
    out[`${p}.self_attn.q_proj.weight`] = [numHeads * D, H];
    out[`${p}.self_attn.k_proj.weight`] = [numKvHeads * D, H];
    out[`${p}.self_attn.v_proj.weight`] = [numKvHeads * D, H];
    out[`${p}.self_attn.o_proj.weight`] = [H, numHeads * D];
    if (c.attentionBias) {
      out[`${p}.self_attn.q_proj.bias`] = [numHeads * D];
      out[`${p}.self_attn.k_proj.bias`] = [numKvHeads * D];
      out[`${p}.self_attn.v_proj.bias`] = [numKvHeads * D];
    }
    if (c.outputBias) out[`${p}.self_attn.o_proj.bias`] = [H];
    out[`${p}.mlp.gate_proj.weight`] = [I, H];
    out[`${p}.mlp.up_proj.weight`] = [I, H];
    out[`${p}.mlp.down_proj.weight`] = [H, I];
    if (c.mlpBias) for (const [m, size] of [["gate_proj", I], ["up_proj", I], ["down_proj", H]] as const) out[`${p}.mlp.${m}.bias`] = [size];
  }
  if (!c.tieWordEmbeddings) out["lm_head.weight"] = [V, H];
  return out;
}

function checkWeights(dir: string, c: ModelConfig): void {
  const w = openCheckpointWeights(dir);
  const want = expectedTensors(c);
  assert.deepEqual(w.names().sort(), Object.keys(want).sort());
  for (const [name, shape] of Object.entries(want)) assert.deepEqual(w.info(name).shape, shape, name);
  w.close();
}

test("llama (defaults): config.json as transformers writes it, weights, tokenizer", () => {
  const dir = fresh();
  const summary = writeTinyCheckpoint(dir);
  const raw = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
  assert.deepEqual(Object.keys(raw), Object.keys(raw).sort());
  assert.deepEqual(raw.architectures, ["LlamaForCausalLM"]);
  assert.equal(raw.model_type, "llama");
  assert.equal(raw.head_dim, 16);
  assert.equal(raw.hidden_act, "silu");
  assert.equal(raw.rope_scaling, null);
  assert.equal(raw.torch_dtype, "float32");
  const c = readModelConfig(dir);
  assert.deepEqual(
    [c.arch, c.numLayers, c.hiddenSize, c.numHeads, c.numKvHeads, c.headDim, c.intermediateSize, c.vocabSize, c.maxPositions, c.ropeTheta, c.tieWordEmbeddings, c.attentionBias],
    ["llama", 2, 64, 4, 2, 16, 176, 512, 2048, 10000, false, false],
  );
  checkWeights(dir, c);
  const t = loadTokenizer(dir);
  assert.equal(t.vocabSize, 512);
  assert.equal(summary.tokenizerIds, 512);
  assert.equal(c.bosTokenId, t.bosTokenId);
  assert.ok(c.eosTokenIds.includes(t.eosTokenIds[0]!));
  assert.equal(t.decode(t.encode("print('hi')\n")), "print('hi')\n");
  for (const f of ["generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", SINGLE_FILE]) assert.ok(fs.existsSync(path.join(dir, f)), f);
});

test("qwen2: q/k/v biases, tied embeddings, ChatML", () => {
  const dir = fresh();
  writeTinyCheckpoint(dir, { arch: "qwen2", layers: 1, hidden: 32, heads: 4, kvHeads: 1, vocab: 400 });
  const c = readModelConfig(dir);
  assert.equal(c.arch, "qwen2");
  assert.equal(c.attentionBias, true);
  assert.equal(c.outputBias, false);
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")).head_dim, undefined);
  checkWeights(dir, c);
  const t = loadTokenizer(dir);
  assert.match(t.applyChatTemplate([{ role: "user", content: "x" }]), /^<\|im_start\|>user\nx<\|im_end\|>\n$/);
  assert.deepEqual(c.eosTokenIds, [t.tokenToId("<|im_end|>"), t.tokenToId("<|endoftext|>")]);
});

test("mistral: untied, no biases, explicit headDim, [INST] template", () => {
  const dir = fresh();
  writeTinyCheckpoint(dir, { arch: "mistral", layers: 1, hidden: 32, heads: 2, kvHeads: 2, headDim: 8, vocab: 300 });
  const c = readModelConfig(dir);
  assert.equal(c.arch, "mistral");
  assert.equal(c.headDim, 8);
  assert.equal(c.slidingWindow, undefined);
  checkWeights(dir, c);
  assert.equal(loadTokenizer(dir).applyChatTemplate([{ role: "user", content: "x" }]), "<s>[INST] x [/INST]");
});

test("llama with biases and llama3 rope scaling", () => {
  const dir = fresh();
  const ropeScaling = { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 } as const;
  writeTinyCheckpoint(dir, { layers: 1, hidden: 32, attentionBias: true, mlpBias: true, ropeScaling, ropeTheta: 500000 });
  const c = readModelConfig(dir);
  assert.deepEqual(c.ropeScaling, ropeScaling);
  assert.equal(c.ropeTheta, 500000);
  assert.equal(c.outputBias, true);
  assert.equal(c.mlpBias, true);
  checkWeights(dir, c);
});

test("bfloat16 in 2 shards: index, rounded values, same values as the float32 checkpoint of the seed", () => {
  const dir = fresh();
  const summary = writeTinyCheckpoint(dir, { dtype: "bfloat16", shards: 2, layers: 2, hidden: 32, seed: 7 });
  assert.equal(fs.existsSync(path.join(dir, SINGLE_FILE)), false);
  const index = JSON.parse(fs.readFileSync(path.join(dir, INDEX_FILE), "utf8"));
  assert.deepEqual([...new Set(Object.values(index.weight_map))].sort(), ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
  assert.ok(summary.files.some((f) => f.endsWith("model-00002-of-00002.safetensors")));
  const c = readModelConfig(dir);
  assert.equal(c.torchDtype, "bfloat16");
  checkWeights(dir, c);
  const w = openCheckpointWeights(dir);
  assert.equal(w.info("model.norm.weight").dtype, "BF16");
  assert.equal(index.metadata.total_size, w.names().reduce((a, name) => a + w.info(name).byteLength, 0));

  const f32 = fresh();
  writeTinyCheckpoint(f32, { layers: 2, hidden: 32, seed: 7 });
  const exact = openCheckpointWeights(f32).readFloat32("model.layers.1.mlp.down_proj.weight");
  const rounded = w.readFloat32("model.layers.1.mlp.down_proj.weight");
  assert.equal(rounded.length, exact.length);
  for (let i = 0; i < exact.length; i++) assert.equal(rounded[i], bfloat16BitsToNumber(float32ToBfloat16Bits(exact[i]!)));
  assert.equal(loadTokenizer(dir).decode(loadTokenizer(dir).encode("ok")), "ok");
});

test("deterministic: the same seed writes the same bytes, another seed other weights; norms sit around 1", () => {
  const [a, b, c] = [fresh(), fresh(), fresh()];
  writeTinyCheckpoint(a, { layers: 1, hidden: 16, heads: 2, seed: 3 });
  writeTinyCheckpoint(b, { layers: 1, hidden: 16, heads: 2, seed: 3 });
  writeTinyCheckpoint(c, { layers: 1, hidden: 16, heads: 2, seed: 4 });
  const bytes = (d: string) => fs.readFileSync(path.join(d, SINGLE_FILE));
  assert.ok(bytes(a).equals(bytes(b)));
  assert.ok(!bytes(a).equals(bytes(c)));
  const norm = openCheckpointWeights(a).readFloat32("model.norm.weight");
  const mean = norm.reduce((s, x) => s + x, 0) / norm.length;
  assert.ok(Math.abs(mean - 1) < 0.1 && norm.some((x) => x !== 1), String(mean));
  const q = openCheckpointWeights(a).readFloat32("model.layers.0.self_attn.q_proj.weight");
  const std = Math.sqrt(q.reduce((s, x) => s + x * x, 0) / q.length);
  assert.ok(std > 0.015 && std < 0.025, String(std));
});

test("inconsistent options are refused with the option named", () => {
  const bad = (options: Parameters<typeof writeTinyCheckpoint>[1], pattern: RegExp) =>
    assert.throws(() => writeTinyCheckpoint(fresh(), options), (e: unknown) => e instanceof BdcError && e.code === "BDC_CONFIG_VALUE" && pattern.test(e.message));
  bad({ heads: 4, kvHeads: 3 }, /kvHeads is 3; expected a divisor of heads \(4\)/);
  bad({ hidden: 30, heads: 4 }, /hidden is 30/);
  bad({ vocab: 200 }, /vocab 200 is too small/);
  bad({ headDim: 7 }, /headDim is 7; expected an even number/);
  bad({ arch: "qwen2", attentionBias: true }, /attentionBias/);
  bad({ shards: 1000 }, /shards is 1000/);
});
