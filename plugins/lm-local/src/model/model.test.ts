/**
 * The ONNX graph against the plain-TypeScript reference forward (written separately, loops not
 * graphs) on tiny generated checkpoints of each architecture; the KV cache against full
 * recomputation; padding, LoRA slots and generation.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readModelConfig } from "../checkpoint/config.ts";
import { writeTinyCheckpoint, type TinyCheckpointOptions } from "../checkpoint/make-tiny.ts";
import { logSoftmax, referenceForward } from "../checkpoint/reference-forward.ts";
import { openCheckpointWeights, writeSafetensors } from "../checkpoint/safetensors.ts";
import { BdcError } from "@bdc/core";
import { openSession } from "@bdc/onnx-graph";
import { CausalLM } from "./causal-lm.ts";
import { embedTexts } from "./embed.ts";
import { generate } from "./generate.ts";
import { moduleKey, type LoraAdapter, type LoraModule, type LoraTarget } from "../lora/adapter.ts";
import { loraInputNames } from "./lora-slots.ts";
import { argmax } from "./sampler.ts";
import { scoreTokens } from "./score.ts";
import { leaseModel, loadedModels } from "./model-pool.ts";

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-lm-"));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

async function tiny(name: string, options: TinyCheckpointOptions, load: Parameters<typeof CausalLM.load>[1] = {}): Promise<CausalLM> {
  const dir = path.join(root, name);
  if (!fs.existsSync(dir)) writeTinyCheckpoint(dir, options);
  return CausalLM.load(dir, { threads: 1, cacheDir: path.join(root, "onnx"), ...load });
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const IDS = [5, 17, 260, 3, 99, 42, 42, 7, 300, 11];

const ARCHS: Array<[string, TinyCheckpointOptions]> = [
  ["llama-gqa-rope3", { arch: "llama", layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 384, seed: 1, ropeScaling: { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8 } }],
  ["qwen2-bias-tied", { arch: "qwen2", layers: 2, hidden: 64, heads: 4, kvHeads: 1, vocab: 384, seed: 2 }],
  ["mistral-mha", { arch: "mistral", layers: 1, hidden: 48, heads: 3, kvHeads: 3, vocab: 384, seed: 3 }],
];

for (const [name, options] of ARCHS) {
  test(`${name}: ONNX logits and hidden states equal the reference forward to 1e-4`, async () => {
    const lm = await tiny(name, options);
    try {
      const { logits, hidden } = await lm.forward({ ids: [IDS], logitsAt: IDS.map((_, i) => i), hidden: true });
      assert.ok(hidden !== undefined);
      const weights = openCheckpointWeights(lm.dir);
      const ref = referenceForward(weights, readModelConfig(lm.dir), IDS);
      weights.close();
      const V = lm.config.vocabSize;
      const H = lm.config.hiddenSize;
      IDS.forEach((_, i) => {
        assert.ok(maxAbsDiff(logits.subarray(i * V, (i + 1) * V), ref.logits[i]!) < 1e-4, `logits at ${i}`);
        assert.ok(maxAbsDiff(hidden.subarray(i * H, (i + 1) * H), ref.hidden[i]!) < 1e-4, `hidden at ${i}`);
      });
    } finally {
      await lm.dispose();
    }
  });
}

test("KV-cache decoding equals full recomputation, token by token", async () => {
  const lm = await tiny("llama-gqa-rope3", ARCHS[0]![1]);
  try {
    const V = lm.config.vocabSize;
    const full = await lm.forward({ ids: [IDS], logitsAt: IDS.map((_, i) => i) });
    let step = await lm.forward({ ids: [IDS.slice(0, 4)] });
    assert.ok(maxAbsDiff(step.logits, full.logits.subarray(3 * V, 4 * V)) < 1e-5);
    for (let i = 4; i < IDS.length; i++) {
      step = await lm.forward({ ids: [[IDS[i]!]], past: step.cache });
      assert.equal(step.cache.length, i + 1);
      assert.ok(maxAbsDiff(step.logits, full.logits.subarray(i * V, (i + 1) * V)) < 1e-5, `position ${i}`);
    }
  } finally {
    await lm.dispose();
  }
});

test("the float16 graph (the GPUs' compute type) runs here on CPU: within fp16 rounding of float32, cache included", async () => {
  const lm32 = await tiny("qwen2-bias-tied", ARCHS[1]![1]);
  const lm16 = await tiny("qwen2-bias-tied", ARCHS[1]![1], { dtype: "float16" });
  try {
    const V = lm32.config.vocabSize;
    const at = IDS.map((_, i) => i);
    const a = await lm32.forward({ ids: [IDS], logitsAt: at });
    const b = await lm16.forward({ ids: [IDS], logitsAt: at });
    assert.ok(maxAbsDiff(a.logits, b.logits) < 5e-3, `fp16 vs fp32: ${maxAbsDiff(a.logits, b.logits)}`);
    let step = await lm16.forward({ ids: [IDS.slice(0, 6)] });
    for (let i = 6; i < IDS.length; i++) step = await lm16.forward({ ids: [[IDS[i]!]], past: step.cache });
    assert.ok(maxAbsDiff(step.logits, b.logits.subarray((IDS.length - 1) * V)) < 1e-3);
  } finally {
    await lm32.dispose();
    await lm16.dispose();
  }
});

test("a resident cache (the WebGPU path, here on the CPU provider) gives the host cache's logits: batched rows, forks, fp16", async () => {
  for (const [name, options, dtype] of [["mistral-mha", ARCHS[2]![1], "float32"], ["qwen2-bias-tied", ARCHS[1]![1], "float16"]] as const) {
    const host = await tiny(name, options, { dtype });
    const resident = await tiny(name, options, { dtype, kvCache: "resident" });
    try {
      assert.equal(resident.kvCache, "resident");
      // The resident fetch set is the graph's first outputs, in this order (see llama-graph's outputRank).
      const session = await openSession(resident.modelPath, { device: "cpu", threads: 1 });
      const L = resident.config.numLayers;
      assert.deepEqual(session.outputNames.slice(0, 2 + 2 * L), ["logits", "hidden", ...Array.from({ length: L }, (_, i) => [`present_key.${i}`, `present_value.${i}`]).flat()]);
      await session.release();
      const V = host.config.vocabSize;
      const rows = [IDS.slice(0, 4), IDS.slice(4, 8)];
      let h = await host.forward({ ids: rows });
      let r = await resident.forward({ ids: rows });
      assert.equal(r.cache.kind, "resident");
      assert.equal(r.hidden, undefined, "hidden states stay in the session unless asked for");
      for (let t = 0; t < 5; t++) {
        const next = [[(t * 7 + 3) % V], [(t * 11 + 5) % V]];
        h = await host.forward({ ids: next, past: h.cache });
        r = await resident.forward({ ids: next, past: r.cache });
        assert.equal(r.cache.length, 4 + t + 1);
        assert.ok(maxAbsDiff(h.logits, r.logits) === 0, `${name} ${dtype}: step ${t} identical to the host cache (${maxAbsDiff(h.logits, r.logits)})`);
      }
      // A fork continues the same (shared) tensors two ways.
      const fork = resident.forkCache(r.cache);
      const a = await resident.forward({ ids: [[1], [2]], past: r.cache });
      const b = await resident.forward({ ids: [[3], [4]], past: fork });
      const ha = await host.forward({ ids: [[1], [2]], past: host.forkCache(h.cache) });
      const hb = await host.forward({ ids: [[3], [4]], past: h.cache });
      assert.equal(maxAbsDiff(a.logits, ha.logits), 0);
      assert.equal(maxAbsDiff(b.logits, hb.logits), 0);
      resident.releaseCache(a.cache);
      resident.releaseCache(b.cache);
    } finally {
      await host.dispose();
      await resident.dispose();
    }
  }
});

test("a resident cache is used once: extending or releasing it twice is BDC_KV_CACHE_RELEASED, a fork of a used one too", async () => {
  const lm = await tiny("llama-gqa-rope3", ARCHS[0]![1], { kvCache: "resident" });
  try {
    const first = await lm.forward({ ids: [IDS.slice(0, 3)] });
    await lm.forward({ ids: [[IDS[3]!]], past: first.cache });
    const used = (e: unknown) => e instanceof BdcError && e.code === "BDC_KV_CACHE_RELEASED" && /forkCache/.test(e.hint ?? "");
    await assert.rejects(lm.forward({ ids: [[IDS[3]!]], past: first.cache }), used);
    assert.throws(() => lm.forkCache(first.cache), used);
    const second = await lm.forward({ ids: [IDS.slice(0, 3)] });
    lm.releaseCache(second.cache);
    lm.releaseCache(second.cache); // releasing twice is harmless
    await assert.rejects(lm.forward({ ids: [[1]], past: second.cache }), used);
    const host = await tiny("llama-gqa-rope3", ARCHS[0]![1]);
    try {
      await assert.rejects(host.forward({ ids: [[1]], past: lm.emptyCache(1) }), (e: unknown) => e instanceof BdcError && /a resident KV cache was given to a model whose cache is host/.test(e.message));
    } finally {
      await host.dispose();
    }
  } finally {
    await lm.dispose();
  }
});

test("fused attention (ORT's GroupQueryAttention, one kernel per layer) gives the plain graph's logits: prefill, chunks, decode, batches, fp16, MHA", async () => {
  for (const [name, options, dtype, tol] of [["llama-gqa-rope3", ARCHS[0]![1], "float32", 1e-5], ["mistral-mha", ARCHS[2]![1], "float32", 1e-5], ["qwen2-bias-tied", ARCHS[1]![1], "float16", 2e-2]] as const) {
    const plain = await tiny(name, options, { dtype });
    const fused = await tiny(name, options, { dtype, attention: "fused" });
    try {
      assert.equal(fused.kvCache, "resident");
      const V = plain.config.vocabSize;
      const at = IDS.map((_, i) => i);
      const a = await plain.forward({ ids: [IDS], logitsAt: at });
      const b = await fused.forward({ ids: [IDS], logitsAt: at });
      assert.ok(maxAbsDiff(a.logits, b.logits) < tol, `${name} ${dtype} prefill: ${maxAbsDiff(a.logits, b.logits)}`);
      fused.releaseCache(b.cache);
      if (dtype === "float32") {
        // And against the independent plain-TypeScript forward, as the plain graph is (1e-4).
        const weights = openCheckpointWeights(fused.dir);
        const ref = referenceForward(weights, readModelConfig(fused.dir), IDS);
        weights.close();
        IDS.forEach((_, i) => assert.ok(maxAbsDiff(b.logits.subarray(i * V, (i + 1) * V), ref.logits[i]!) < 1e-4, `${name}: fused logits at ${i} vs the reference forward`));
      }
      // One row: a prompt, then a chunk of three on top of the cache.
      const p1 = await plain.forward({ ids: [IDS.slice(0, 4)] });
      const f1 = await fused.forward({ ids: [IDS.slice(0, 4)] });
      const p2 = await plain.forward({ ids: [IDS.slice(4, 7)], past: p1.cache, logitsAt: [0, 1, 2] });
      const f2 = await fused.forward({ ids: [IDS.slice(4, 7)], past: f1.cache, logitsAt: [0, 1, 2] });
      assert.ok(maxAbsDiff(p2.logits, f2.logits) < tol, `${name} chunk: ${maxAbsDiff(p2.logits, f2.logits)}`);
      fused.releaseCache(f2.cache);
      // Two rows: a prompt, then one token at a time (GroupQueryAttention takes no multi-token chunk on a batch).
      const rows = [IDS.slice(0, 4), IDS.slice(2, 6)];
      let p = await plain.forward({ ids: rows });
      let f = await fused.forward({ ids: rows });
      assert.ok(maxAbsDiff(p.logits, f.logits) < tol, `${name} batched prompt: ${maxAbsDiff(p.logits, f.logits)}`);
      await assert.rejects(fused.forward({ ids: [IDS.slice(0, 2), IDS.slice(2, 4)], past: fused.forkCache(f.cache) }), (e: unknown) => e instanceof BdcError && /one token at a time only/.test(e.message));
      for (let t = 0; t < 4; t++) {
        const next = [[(t * 5 + 1) % V], [(t * 3 + 2) % V]];
        p = await plain.forward({ ids: next, past: p.cache });
        f = await fused.forward({ ids: next, past: f.cache });
        assert.ok(maxAbsDiff(p.logits, f.logits) < tol, `${name} decode ${t}: ${maxAbsDiff(p.logits, f.logits)}`);
      }
      fused.releaseCache(f.cache);
      await assert.rejects(fused.forward({ ids: [IDS], allowed: (_b, q, k) => k <= q }), (e: unknown) => e instanceof BdcError && /causal only/.test(e.message));
    } finally {
      await plain.dispose();
      await fused.dispose();
    }
  }
});

test("a batched cache grows past its capacity and still equals full recomputation", async () => {
  const lm = await tiny("mistral-mha", ARCHS[2]![1]);
  try {
    const V = lm.config.vocabSize;
    const rows = [IDS.slice(0, 3), IDS.slice(3, 6)];
    let step = await lm.forward({ ids: rows });
    const capacity = () => (step.cache.kind === "host" ? step.cache.capacity : assert.fail("a host cache"));
    const firstCapacity = capacity();
    const seqs = rows.map((r) => [...r]);
    while (step.cache.length <= firstCapacity + 2) {
      const next = seqs.map((s, b) => (s.at(-1)! * 31 + b + s.length) % V);
      next.forEach((t, b) => seqs[b]!.push(t));
      step = await lm.forward({ ids: next.map((t) => [t]), past: step.cache });
    }
    assert.ok(capacity() > firstCapacity, "the cache was regrown");
    for (const [b, s] of seqs.entries()) {
      const full = await lm.forward({ ids: [s] });
      assert.ok(maxAbsDiff(step.logits.subarray(b * V, (b + 1) * V), full.logits) < 1e-4, `sequence ${b}`);
    }
  } finally {
    await lm.dispose();
  }
});

test("scores are log-softmax of the next token; padding in a batch changes no embedding", async () => {
  const lm = await tiny("qwen2-bias-tied", ARCHS[1]![1]);
  try {
    const logprobs = await scoreTokens(lm, IDS);
    assert.equal(logprobs.length, IDS.length - 1);
    const weights = openCheckpointWeights(lm.dir);
    const ref = referenceForward(weights, lm.config, IDS);
    weights.close();
    logprobs.forEach((lp, i) => {
      assert.ok(Math.abs(lp - logSoftmax(ref.logits[i]!)[IDS[i + 1]!]!) < 1e-4);
    });

    const texts = ["def add(a, b):\n    return a + b", "hi", "a much longer sentence than the other two, to force padding"];
    for (const pooling of ["mean", "last"] as const) {
      const batched = await embedTexts(lm, texts, { pooling, batchSize: 3 });
      for (const [i, t] of texts.entries()) {
        const [alone] = await embedTexts(lm, [t], { pooling });
        assert.ok(maxAbsDiff(batched[i]!, alone!) < 1e-5, `${pooling} ${i}`);
        assert.ok(Math.abs(Math.hypot(...alone!) - 1) < 1e-5, "unit length");
      }
    }
  } finally {
    await lm.dispose();
  }
});

test("LoRA slots: fed A/B tensors change the output exactly as the reference's low-rank update", async () => {
  const options = ARCHS[0]![1];
  const lm = await tiny("llama-gqa-rope3", options, { lora: { targets: ["q_proj", "v_proj", "down_proj"], layers: [1] } });
  try {
    assert.ok(lm.inputNames.includes(loraInputNames(1, "q_proj").a));
    assert.ok(!lm.inputNames.includes(loraInputNames(0, "q_proj").a), "layer 0 has no slot");
    const H = lm.config.hiddenSize;
    const I = lm.config.intermediateSize;
    const dims = { q_proj: [H, lm.config.numHeads * lm.config.headDim], v_proj: [H, lm.config.numKvHeads * lm.config.headDim], down_proj: [I, H] } as const;
    const rank = 3;
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.2;
    const modules = new Map<string, LoraModule>();
    for (const [target, [inDim, outDim]] of Object.entries(dims)) {
      modules.set(moduleKey(1, target as LoraTarget), { A: Float32Array.from({ length: rank * inDim }, rand), B: Float32Array.from({ length: outDim * rank }, rand) });
    }
    const adapter: LoraAdapter = { config: { rank, alpha: 6, rslora: false, dropout: 0, targets: ["q_proj", "v_proj", "down_proj"], layers: [1] }, modules };
    const { logits } = await lm.forward({ ids: [IDS], logitsAt: IDS.map((_, i) => i), adapter });
    const base = await lm.forward({ ids: [IDS], logitsAt: IDS.map((_, i) => i) });
    const weights = openCheckpointWeights(lm.dir);
    const withLora = referenceForward(weights, lm.config, IDS, { lora: adapter });
    const without = referenceForward(weights, lm.config, IDS);
    weights.close();
    const V = lm.config.vocabSize;
    assert.ok(maxAbsDiff(logits.subarray(0, V), without.logits[0]!) > 1e-3, "the update is visible");
    IDS.forEach((_, i) => assert.ok(maxAbsDiff(logits.subarray(i * V, (i + 1) * V), withLora.logits[i]!) < 1e-4, `position ${i}`));
    // The same session without an adapter is the base model (zero updates in the slots).
    IDS.forEach((_, i) => assert.ok(maxAbsDiff(base.logits.subarray(i * V, (i + 1) * V), without.logits[i]!) < 1e-4, `base position ${i}`));
    // An adapter on a module without a slot is refused.
    const elsewhere: LoraAdapter = { config: { ...adapter.config, targets: ["k_proj"] }, modules: new Map([[moduleKey(1, "k_proj"), modules.get(moduleKey(1, "q_proj"))!]]) };
    await assert.rejects(lm.forward({ ids: [IDS], adapter: elsewhere }), (e: unknown) => e instanceof BdcError && e.code === "BDC_ADAPTER_SLOTS" && /layer 1 k_proj/.test(e.message));
  } finally {
    await lm.dispose();
  }
});

test("a PEFT adapter folder fills the LoRA slots: logits equal the reference with scale = alpha / r", async () => {
  const options = ARCHS[0]![1];
  const base = await tiny("llama-gqa-rope3", options);
  const config = base.config;
  await base.dispose();
  const rank = 2;
  const alpha = 6;
  const adapterDir = path.join(root, "adapter");
  fs.mkdirSync(adapterDir, { recursive: true });
  const H = config.hiddenSize;
  const dims = { q_proj: [H, config.numHeads * config.headDim], v_proj: [H, config.numKvHeads * config.headDim] } as const;
  let seed = 3;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.3;
  const tensors: Array<{ name: string; dtype: "F32"; shape: number[]; data: Float32Array }> = [];
  const refModules = new Map<string, LoraModule>();
  for (let layer = 0; layer < config.numLayers; layer++) {
    for (const [target, [inDim, outDim]] of Object.entries(dims)) {
      const A = Float32Array.from({ length: rank * inDim }, rand);
      const B = Float32Array.from({ length: outDim * rank }, rand);
      const prefix = `base_model.model.model.layers.${layer}.self_attn.${target}`;
      tensors.push({ name: `${prefix}.lora_A.weight`, dtype: "F32", shape: [rank, inDim], data: A }, { name: `${prefix}.lora_B.weight`, dtype: "F32", shape: [outDim, rank], data: B });
      refModules.set(moduleKey(layer, target as LoraTarget), { A, B });
    }
  }
  writeSafetensors(path.join(adapterDir, "adapter_model.safetensors"), tensors);
  fs.writeFileSync(path.join(adapterDir, "adapter_config.json"), JSON.stringify({ peft_type: "LORA", task_type: "CAUSAL_LM", r: rank, lora_alpha: alpha, lora_dropout: 0.05, target_modules: ["q_proj", "v_proj"], bias: "none" }));

  const lm = await tiny("llama-gqa-rope3", options, { adapter: adapterDir });
  try {
    const { logits } = await lm.forward({ ids: [IDS], logitsAt: IDS.map((_, i) => i) });
    const weights = openCheckpointWeights(lm.dir);
    const adapter: LoraAdapter = { config: { rank, alpha, rslora: false, dropout: 0.05, targets: ["q_proj", "v_proj"], layers: Array.from({ length: config.numLayers }, (_, i) => i) }, modules: refModules };
    const ref = referenceForward(weights, lm.config, IDS, { lora: adapter });
    weights.close();
    const V = lm.config.vocabSize;
    IDS.forEach((_, i) => assert.ok(maxAbsDiff(logits.subarray(i * V, (i + 1) * V), ref.logits[i]!) < 1e-4, `position ${i}`));
  } finally {
    await lm.dispose();
  }

  // An adapter for another shape of model is refused, naming the file.
  fs.writeFileSync(path.join(adapterDir, "adapter_config.json"), JSON.stringify({ peft_type: "LORA", r: rank + 1, lora_alpha: alpha }));
  await assert.rejects(tiny("llama-gqa-rope3", options, { adapter: adapterDir }), (e: unknown) => e instanceof BdcError && e.code === "BDC_ADAPTER_INVALID" && /adapter_model\.safetensors: tensor .* rank 3 expected/.test(e.message));
  await assert.rejects(tiny("llama-gqa-rope3", options, { adapter: path.join(root, "no-adapter") }), (e: unknown) => e instanceof BdcError && e.code === "BDC_ADAPTER_NOT_FOUND");
});

test("greedy generation follows the argmax of full recomputation; limits and stop strings end it", async () => {
  const lm = await tiny("mistral-mha", ARCHS[2]![1]);
  try {
    const prompt = IDS.slice(0, 5);
    const out = await generate(lm, prompt, { maxNewTokens: 6 });
    const eos = new Set(lm.config.eosTokenIds);
    const seq = [...prompt];
    for (const t of out.tokens) {
      const { logits } = await lm.forward({ ids: [seq] });
      assert.equal(t, argmax(logits));
      seq.push(t);
    }
    if (out.finishReason === "length") assert.equal(out.tokens.length, 6);
    else assert.ok(eos.has(argmax((await lm.forward({ ids: [seq] })).logits)), "stopped early only on an end-of-sequence token");
    assert.equal(out.text, lm.tokenizer.decode([...out.tokens], { skipSpecialTokens: true }));

    assert.ok(out.text.length > 1, `the tiny model's greedy text is long enough to test a stop string: ${JSON.stringify(out.text)}`);
    const stop = out.text.slice(1, 2);
    const stopped = await generate(lm, prompt, { maxNewTokens: 6, stop: [stop] });
    assert.equal(stopped.finishReason, "stop");
    assert.ok(!stopped.text.includes(stop) && out.text.startsWith(stopped.text));
    const a = await generate(lm, prompt, { maxNewTokens: 8, temperature: 1, topP: 0.9, topK: 50, seed: 3 });
    const b = await generate(lm, prompt, { maxNewTokens: 8, temperature: 1, topP: 0.9, topK: 50, seed: 3 });
    assert.deepEqual(a.tokens, b.tokens, "a seed reproduces a sampled generation");
  } finally {
    await lm.dispose();
  }
});

test("the model pool: instances on one checkpoint share a session; the last lease to go disposes it", async () => {
  const dir = path.join(root, "llama-gqa-rope3");
  if (!fs.existsSync(dir)) writeTinyCheckpoint(dir, ARCHS[0]![1]);
  const options = { threads: 1, cacheDir: path.join(root, "onnx"), lora: { targets: ["q_proj" as const], layers: [0] } };
  const before = loadedModels();
  const a = await leaseModel(dir, options);
  const b = await leaseModel(dir, options);
  assert.equal(a.lm, b.lm, "one session for both holders (adapters are per call, not per session)");
  assert.equal(loadedModels(), before + 1);
  await a.release();
  await a.release(); // idempotent
  assert.equal(loadedModels(), before + 1, "still held by b");
  assert.ok((await b.run((lm) => lm.forward({ ids: [[1, 2]] }))).logits.length > 0);
  await b.release();
  assert.equal(loadedModels(), before, "released when the last holder closed");
  await assert.rejects(b.lm.forward({ ids: [[1, 2]] }), "its session is gone");
});
