import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { readModelConfig, type ModelConfig } from "./config.ts";
import { writeTinyCheckpoint, type TinyCheckpointOptions } from "./make-tiny.ts";
import { inMemoryWeights, type MemoryTensor } from "./memory-weights.ts";
import { moduleKey, type LoraAdapter, type LoraModule, type LoraTarget } from "../lora/adapter.ts";
import { logSoftmax, referenceForward } from "./reference-forward.ts";
import { openCheckpointWeights, type CheckpointWeights } from "./safetensors.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-reference-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;

function tiny(options: TinyCheckpointOptions): { weights: CheckpointWeights; config: ModelConfig } {
  const dir = path.join(tmp, String(n++));
  writeTinyCheckpoint(dir, { layers: 2, hidden: 32, heads: 4, kvHeads: 2, vocab: 300, initStd: 0.2, ...options });
  return { weights: openCheckpointWeights(dir), config: readModelConfig(dir) };
}

/** All tensors of a checkpoint in memory, for deriving variants. */
function load(weights: CheckpointWeights): Map<string, MemoryTensor> {
  return new Map(weights.names().map((name) => [name, { name, shape: weights.info(name).shape, data: weights.readFloat32(name) }]));
}

function maxDiff(a: ReadonlyArray<ArrayLike<number>>, b: ReadonlyArray<ArrayLike<number>>): number {
  let m = 0;
  a.forEach((row, t) => Array.from(row).forEach((x, i) => (m = Math.max(m, Math.abs(x - b[t]![i]!)))));
  return m;
}

const TOKENS = [5, 77, 260, 3, 99, 140];

test("logits are finite, one vocab-sized row per position, and the model is not degenerate", () => {
  for (const arch of ["llama", "qwen2", "mistral"] as const) {
    const { weights, config } = tiny({ arch });
    const { logits, hidden } = referenceForward(weights, config, TOKENS);
    assert.equal(logits.length, TOKENS.length);
    assert.equal(hidden.length, TOKENS.length);
    for (const row of logits) {
      assert.equal(row.length, config.vocabSize);
      assert.ok(row.every(Number.isFinite));
    }
    assert.ok(hidden.every((h) => h.length === config.hiddenSize));
    const spread = Math.max(...logits[0]!) - Math.min(...logits[0]!);
    assert.ok(spread > 0.1, `${arch}: logit spread ${spread}`);
    assert.ok(maxDiff([logits[1]!], [logits[2]!]) > 1e-3, `${arch}: positions differ`);
  }
});

test("causal: a later token never changes an earlier position", () => {
  const { weights, config } = tiny({ arch: "qwen2" });
  const a = referenceForward(weights, config, TOKENS);
  const b = referenceForward(weights, config, [...TOKENS.slice(0, 4), 11, 12]);
  for (let t = 0; t < 4; t++) assert.deepEqual(a.logits[t], b.logits[t]);
  assert.notDeepEqual(a.logits[4], b.logits[4]);
  // A prefix alone gives the same rows as inside a longer sequence.
  const prefix = referenceForward(weights, config, TOKENS.slice(0, 3));
  for (let t = 0; t < 3; t++) assert.deepEqual(prefix.logits[t], a.logits[t]);
});

test("grouped-query attention equals multi-head attention with the kv heads repeated", () => {
  const { weights, config } = tiny({ arch: "llama", heads: 4, kvHeads: 2, attentionBias: true });
  const tensors = load(weights);
  const group = config.numHeads / config.numKvHeads;
  const D = config.headDim;
  // kv head k serves query heads k*group .. k*group+group-1: repeat its rows in that order (repeat_kv).
  const expand = (t: MemoryTensor): MemoryTensor => {
    const cols = t.shape.length === 2 ? t.shape[1]! : 1;
    const out = new Float32Array(t.data.length * group);
    for (let h = 0; h < config.numHeads; h++) {
      const k = Math.floor(h / group);
      out.set(t.data.subarray(k * D * cols, (k + 1) * D * cols), h * D * cols);
    }
    return { name: t.name, shape: [t.shape[0]! * group, ...t.shape.slice(1)], data: out };
  };
  for (const [name, t] of tensors) if (/\.(k_proj|v_proj)\./.test(name)) tensors.set(name, expand(t));
  const mha = referenceForward(inMemoryWeights([...tensors.values()]), { ...config, numKvHeads: config.numHeads }, TOKENS);
  const gqa = referenceForward(weights, config, TOKENS);
  assert.ok(maxDiff(mha.logits, gqa.logits) < 1e-5, String(maxDiff(mha.logits, gqa.logits)));
});

test("tied embeddings: lm_head reads embed_tokens", () => {
  const { weights, config } = tiny({ arch: "llama", tieEmbeddings: false });
  const tensors = load(weights);
  const untied = referenceForward(weights, config, TOKENS);
  // The same model with lm_head replaced by the embedding, tied.
  tensors.delete("lm_head.weight");
  const tied = referenceForward(inMemoryWeights([...tensors.values()]), { ...config, tieWordEmbeddings: true }, TOKENS);
  const embed = tensors.get("model.embed_tokens.weight")!.data;
  const H = config.hiddenSize;
  for (let t = 0; t < TOKENS.length; t++) {
    for (const v of [0, 17, 299]) {
      let s = 0;
      for (let i = 0; i < H; i++) s += tied.hidden[t]![i]! * embed[v * H + i]!;
      assert.ok(Math.abs(s - tied.logits[t]![v]!) < 1e-5);
    }
  }
  assert.deepEqual(untied.hidden, tied.hidden);
});

test("LoRA adds scale * B(A x): equal to merging W + scale * B A into the weights", () => {
  const { weights, config } = tiny({ arch: "qwen2" });
  const rank = 2;
  const scale = 0.5;
  let seed = 1;
  const rand = (len: number) => Float32Array.from({ length: len }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.4);
  const D = config.headDim;
  // A partial adapter (not every layer x target), as a merge or a test may build one.
  const modules = new Map<string, LoraModule>([
    [moduleKey(0, "q_proj"), { A: rand(rank * config.hiddenSize), B: rand(config.numHeads * D * rank) }],
    [moduleKey(1, "v_proj"), { A: rand(rank * config.hiddenSize), B: rand(config.numKvHeads * D * rank) }],
    [moduleKey(1, "down_proj"), { A: rand(rank * config.intermediateSize), B: rand(config.hiddenSize * rank) }],
  ]);
  const adapter = (m: Map<string, LoraModule>, alpha = scale * rank, targets: LoraTarget[] = ["q_proj", "v_proj", "down_proj"]): LoraAdapter => ({ config: { rank, alpha, rslora: false, dropout: 0, targets, layers: [0, 1] }, modules: m });
  const lora = adapter(modules);
  const adapted = referenceForward(weights, config, TOKENS, { lora });
  const base = referenceForward(weights, config, TOKENS);
  assert.ok(maxDiff(adapted.logits, base.logits) > 1e-3);

  const tensors = load(weights);
  const merge = (name: string, f: LoraModule) => {
    const t = tensors.get(name)!;
    const [out, inp] = t.shape as [number, number];
    const w = t.data.slice();
    for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) for (let r = 0; r < rank; r++) w[o * inp + i] = w[o * inp + i]! + scale * f.B[o * rank + r]! * f.A[r * inp + i]!;
    tensors.set(name, { ...t, data: w });
  };
  merge("model.layers.0.self_attn.q_proj.weight", modules.get(moduleKey(0, "q_proj"))!);
  merge("model.layers.1.self_attn.v_proj.weight", modules.get(moduleKey(1, "v_proj"))!);
  merge("model.layers.1.mlp.down_proj.weight", modules.get(moduleKey(1, "down_proj"))!);
  const merged = referenceForward(inMemoryWeights([...tensors.values()]), config, TOKENS);
  assert.ok(maxDiff(adapted.logits, merged.logits) < 1e-4, String(maxDiff(adapted.logits, merged.logits)));

  // Zero B (PEFT's initialisation) changes nothing.
  const zero = adapter(new Map([[moduleKey(0, "up_proj"), { A: rand(rank * config.hiddenSize), B: new Float32Array(config.intermediateSize * rank) }]]), 4, ["up_proj"]);
  assert.ok(maxDiff(referenceForward(weights, config, TOKENS, { lora: zero }).logits, base.logits) === 0);
  assert.throws(() => referenceForward(weights, config, TOKENS, { lora: adapter(new Map([[moduleKey(0, "k_proj"), { A: new Float32Array(3), B: new Float32Array(3) }]])) }), /rank 2 needs A/);

  // float64 mode rounds nowhere: it stays within float32 noise of the float32 result.
  const exact = referenceForward(weights, config, TOKENS, { lora, precision: "float64" });
  assert.ok(exact.logits[0] instanceof Float64Array);
  assert.ok(maxDiff(exact.logits, adapted.logits) < 1e-4);
});

test("one token: attention is the value itself, so the output can be computed by hand", () => {
  // With a single position softmax is 1 and RoPE is the identity (position 0): the layer is
  // h + o(v(norm(h))) then the MLP. Check the first layer's attention half against a hand computation
  // by zeroing the MLP's down projection and keeping one layer.
  const { weights, config } = tiny({ arch: "llama", layers: 1 });
  const tensors = load(weights);
  const H = config.hiddenSize;
  const down = tensors.get("model.layers.0.mlp.down_proj.weight")!;
  tensors.set(down.name, { ...down, data: new Float32Array(down.data.length) });
  const id = 42;
  const { hidden } = referenceForward(inMemoryWeights([...tensors.values()]), config, [id]);
  const get = (name: string) => tensors.get(name)!.data;
  const rms = (x: number[], w: Float32Array) => {
    const r = 1 / Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + config.rmsNormEps);
    return x.map((v, i) => v * r * w[i]!);
  };
  const matvec = (w: Float32Array, x: number[], out: number) => Array.from({ length: out }, (_, o) => x.reduce((s, v, i) => s + w[o * x.length + i]! * v, 0));
  const h0 = Array.from(get("model.embed_tokens.weight").subarray(id * H, (id + 1) * H));
  const x = rms(h0, get("model.layers.0.input_layernorm.weight"));
  const v = matvec(get("model.layers.0.self_attn.v_proj.weight"), x, config.numKvHeads * config.headDim);
  const group = config.numHeads / config.numKvHeads;
  const attn = Array.from({ length: config.numHeads * config.headDim }, (_, j) => v[Math.floor(Math.floor(j / config.headDim) / group) * config.headDim + (j % config.headDim)]!);
  const o = matvec(get("model.layers.0.self_attn.o_proj.weight"), attn, H);
  const want = rms(h0.map((e, i) => e + o[i]!), get("model.norm.weight"));
  want.forEach((w, i) => assert.ok(Math.abs(w - hidden[0]![i]!) < 1e-4, `[${i}] ${w} vs ${hidden[0]![i]}`));
});

test("logSoftmax: a log-distribution, shifted logits give the same result", () => {
  const row = new Float32Array([1, 2, 3, -1000, 0.5]);
  const lp = logSoftmax(row);
  assert.ok(Math.abs(lp.reduce((s, x) => s + Math.exp(x), 0) - 1) < 1e-6);
  assert.ok(Math.abs(lp[2]! - (3 - Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3) + Math.exp(0.5)))) < 1e-6);
  const shifted = logSoftmax(row.map((x) => x + 500));
  lp.forEach((x, i) => assert.ok(Math.abs(x - shifted[i]!) < 1e-4));
});
