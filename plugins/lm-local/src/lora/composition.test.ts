/**
 * Gated composition of experts in the ONNX graph against the plain-TypeScript reference forward:
 * gates on one expert's ranks give that expert (under the mean-preserving scale), any gates give
 * the same logits as the composed rank-K*r adapter, a plain adapter runs unchanged through a gated
 * graph, and experts that cannot be stacked are refused.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readModelConfig, type ModelConfig } from "../checkpoint/config.ts";
import { writeTinyCheckpoint } from "../checkpoint/make-tiny.ts";
import { mulberry32 } from "../checkpoint/random.ts";
import { referenceForward } from "../checkpoint/reference-forward.ts";
import { openCheckpointWeights } from "../checkpoint/safetensors.ts";
import { CausalLM } from "../model/causal-lm.ts";
import { initLoraAdapter, normalizeLoraConfig, type LoraAdapter } from "./adapter.ts";
import { composedAdapter, compositionScale, expertMass, stackExperts, uniformGates, type Composition } from "./composition.ts";

let root: string;
let dir: string;
let model: ModelConfig;
let lm: CausalLM;
const IDS = [5, 17, 260, 3, 99, 42, 7, 300];

/** A trained-looking expert: PEFT's init plus a random B (so that it changes the output). */
function expert(seed: number, rank = 4, alpha = 8): LoraAdapter {
  const a = initLoraAdapter(model, normalizeLoraConfig({ rank, alpha, rslora: false, dropout: 0, targets: ["q_proj", "v_proj", "down_proj"], layers: [0, 1] }, model), seed);
  const rand = mulberry32(seed + 1000);
  for (const m of a.modules.values()) for (let i = 0; i < m.B.length; i++) m.B[i] = (rand() * 2 - 1) * 0.3;
  return a;
}

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-compose-"));
  dir = path.join(root, "tiny");
  writeTinyCheckpoint(dir, { arch: "llama", layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 384, seed: 5, initStd: 0.1 });
  model = readModelConfig(dir);
  lm = await CausalLM.load(dir, { threads: 1, cacheDir: path.join(root, "onnx"), lora: { targets: ["q_proj", "v_proj", "down_proj"], layers: [0, 1], gates: true } });
});
after(async () => {
  await lm.dispose();
  fs.rmSync(root, { recursive: true, force: true });
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function graphLogits(adapter: Parameters<CausalLM["forward"]>[0]["adapter"]): Promise<Float32Array> {
  return (await lm.forward({ ids: [IDS], logitsAt: IDS.map((_, i) => i), adapter })).logits;
}

function referenceLogits(adapter: LoraAdapter | undefined): Float32Array {
  const weights = openCheckpointWeights(dir);
  try {
    return Float32Array.from(referenceForward(weights, model, IDS, { lora: adapter }).logits.flatMap((row) => [...row]));
  } finally {
    weights.close();
  }
}

test("gates of 1/r on one expert's ranks give exactly that expert (mean-preserving scale), to 1e-5", async () => {
  const experts = [expert(1), expert(2), expert(3)];
  const stack = stackExperts(experts.map((adapter, k) => ({ name: `e${k}`, adapter })), model);
  const base = referenceLogits(undefined);
  for (const k of [0, 2]) {
    const gates = new Map([...stack.modules.keys()].map((key) => [key, Float32Array.from({ length: 12 }, (_, i) => (Math.floor(i / 4) === k ? 1 / 4 : 0))]));
    const composition: Composition = { stack, gates, scale: compositionScale(stack, "mean") };
    const got = await graphLogits(composition);
    const want = referenceLogits(experts[k]);
    assert.ok(maxAbsDiff(want, base) > 1e-2, "the expert changes the logits");
    assert.ok(maxAbsDiff(got, want) < 1e-5, `expert ${k}: ${maxAbsDiff(got, want)}`);
    assert.deepEqual(expertMass(composition).map((m) => Number(m.toFixed(6))), [0, 1, 2].map((j) => (j === k ? 1 : 0)));
  }
});

test("per-rank gates (one softmax per rank across the experts: mass r) at the mean-preserving scale: 1 on one expert's ranks gives that expert, to 1e-5", async () => {
  const experts = [expert(7), expert(8)];
  const stack = stackExperts(experts.map((adapter, k) => ({ name: `e${k}`, adapter })), model);
  const gates = new Map([...stack.modules.keys()].map((key) => [key, Float32Array.from({ length: 8 }, (_, i) => (i >= 4 ? 1 : 0))]));
  const got = await graphLogits({ stack, gates, scale: compositionScale(stack, "mean", stack.rank) });
  assert.ok(maxAbsDiff(got, referenceLogits(experts[1])) < 1e-5);
});

test("any gates give the logits of the composed rank-K*r adapter (the export), to 1e-5; the authors' scale too", async () => {
  const stack = stackExperts([expert(4), expert(5)].map((adapter, k) => ({ name: `e${k}`, adapter })), model);
  const rand = mulberry32(9);
  const gates = new Map([...stack.modules.keys()].map((key) => [key, Float32Array.from({ length: 8 }, () => rand())]));
  for (const scale of [compositionScale(stack, "mean"), compositionScale(stack, "authors")]) {
    const composition: Composition = { stack, gates, scale };
    const adapter = composedAdapter(composition);
    assert.equal(adapter.config.rank, 8);
    assert.ok(maxAbsDiff(await graphLogits(composition), referenceLogits(adapter)) < 1e-5);
  }
  assert.equal(compositionScale(stack, "authors"), 1);
  assert.equal(compositionScale(stack, "mean"), 2 * 4, "alpha/r = 2 times r = 4");
  const uniform = uniformGates(stack);
  assert.ok([...uniform.values()].every((g) => Math.abs(g.reduce((s, x) => s + x, 0) - 1) < 1e-6));
});

test("a plain adapter runs through the gated graph as through the reference (gates of one)", async () => {
  const adapter = expert(6);
  assert.ok(maxAbsDiff(await graphLogits(adapter), referenceLogits(adapter)) < 1e-5);
  assert.ok(maxAbsDiff(await graphLogits(undefined), referenceLogits(undefined)) < 1e-5);
});

test("factors uploaded once per adapter or stack (the WebGPU path, here copies on the CPU) give the same logits as factors fed from the host", async () => {
  const uploading = await CausalLM.load(dir, { threads: 1, cacheDir: path.join(root, "onnx"), lora: { targets: ["q_proj", "v_proj", "down_proj"], layers: [0, 1], gates: true }, uploadAdapters: true });
  try {
    const stack = stackExperts([expert(4), expert(5)].map((adapter, k) => ({ name: `e${k}`, adapter })), model);
    const plain = expert(9);
    for (const adapter of [undefined, plain, { stack, gates: uniformGates(stack), scale: compositionScale(stack, "mean") }, plain]) {
      const got = (await uploading.forward({ ids: [IDS], logitsAt: IDS.map((_, i) => i), adapter })).logits;
      assert.equal(maxAbsDiff(got, await graphLogits(adapter)), 0);
    }
  } finally {
    await uploading.dispose();
  }
});

test("uploaded factors the device refuses: the run is repeated with host-fed factors, said once, and later runs feed from the host", async () => {
  const lines: string[] = [];
  const lm2 = await CausalLM.load(dir, { threads: 1, cacheDir: path.join(root, "onnx"), lora: { targets: ["q_proj", "v_proj", "down_proj"], layers: [0, 1], gates: true }, uploadAdapters: true, onProgress: (l) => lines.push(l) });
  try {
    const adapter = expert(11);
    await lm2.forward({ ids: [IDS], adapter });
    // What a refusal looks like to the session: the uploaded tensors are no longer usable.
    await (lm2 as unknown as { uploader: { dispose(): Promise<void> } }).uploader.dispose();
    const got = (await lm2.forward({ ids: [IDS], logitsAt: IDS.map((_, i) => i), adapter })).logits;
    assert.equal(maxAbsDiff(got, await graphLogits(adapter)), 0);
    assert.equal(lines.filter((l) => /refused the LoRA factors uploaded to it/.test(l)).length, 1, lines.join("\n"));
    const again = (await lm2.forward({ ids: [IDS], logitsAt: IDS.map((_, i) => i), adapter })).logits;
    assert.equal(maxAbsDiff(again, got), 0);
    assert.equal(lines.filter((l) => /refused/.test(l)).length, 1, "said once");
  } finally {
    await lm2.dispose();
  }
});

test("experts of different ranks, scales or modules are refused, naming the expert and what differs", () => {
  const named = (adapter: LoraAdapter, name: string) => ({ name, adapter });
  assert.throws(() => stackExperts([named(expert(1), "a"), named(expert(2, 8, 16), "b")], model), (e: Error & { code?: string }) => e.code === "BDC_EXPERTS_MISMATCH" && /expert b does not match expert a: rank 8 vs 4/.test(e.message));
  assert.throws(() => stackExperts([named(expert(1), "a"), named(expert(2, 4, 4), "b")], model), /LoRA scale 1 vs 2/);
  const fewer = expert(3);
  const other = initLoraAdapter(model, normalizeLoraConfig({ rank: 4, alpha: 8, rslora: false, dropout: 0, targets: ["q_proj"], layers: [0, 1] }, model), 3);
  assert.throws(() => stackExperts([named(fewer, "a"), named(other, "b")], model), /targets q_proj vs q_proj,v_proj,down_proj/);
});
