/**
 * The training graph's LoRA gradients through the whole Llama model against central finite
 * differences of the loss computed by the plain-TypeScript reference forward in float64 (an
 * independent implementation: loops, no graph). The graph runs in float32; measured agreement is
 * ~5e-7 of the largest gradient, the tolerance |analytic - numeric| <= 2e-5 * (max|gradient| + |numeric|).
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openSession, ort, serializeInline } from "@bdc/onnx-graph";
import { readModelConfig, type ModelConfig } from "../checkpoint/config.ts";
import { writeTinyCheckpoint } from "../checkpoint/make-tiny.ts";
import { mulberry32 } from "../checkpoint/random.ts";
import { referenceForward } from "../checkpoint/reference-forward.ts";
import { openCheckpointWeights, type CheckpointWeights } from "../checkpoint/safetensors.ts";
import { moduleKey, projectionDims, type LoraAdapter, type LoraModule, type LoraTarget } from "../lora/adapter.ts";
import { LORA_SCALE_INPUT, loraInputNames } from "../model/lora-slots.ts";
import { buildLlamaTrainingGraph, gradOutputName, LOSS_OUTPUT, trainingInputNames } from "./training-graph.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-train-graph-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Mean token cross-entropy of positions `scored` (each predicts the next token), in float64. */
function referenceLoss(weights: CheckpointWeights, config: ModelConfig, ids: number[], scored: number[], adapter: LoraAdapter): number {
  const { logits } = referenceForward(weights, config, ids, { lora: adapter, precision: "float64" });
  let total = 0;
  for (const t of scored) {
    const row = logits[t]!;
    let max = -Infinity;
    for (const x of row) max = Math.max(max, x);
    let sum = 0;
    for (const x of row) sum += Math.exp(x - max);
    total += max + Math.log(sum) - row[ids[t + 1]!]!;
  }
  return total / scored.length;
}

for (const arch of ["llama", "qwen2"] as const) {
  test(`${arch}: LoRA gradients of the training graph equal finite differences of the reference forward`, async () => {
    const dir = path.join(root, arch);
    writeTinyCheckpoint(dir, { arch, layers: 2, hidden: 32, heads: 4, kvHeads: 2, vocab: 280, intermediate: 48, seed: 5, initStd: 0.2 });
    const config = readModelConfig(dir);
    const weights = openCheckpointWeights(dir);
    try {
      const targets: LoraTarget[] = ["q_proj", "v_proj", "o_proj", "down_proj"];
      const rank = 2;
      const rand = mulberry32(9);
      const dims = projectionDims(config);
      const modules = new Map<string, LoraModule>();
      for (const layer of [0, 1]) {
        for (const target of targets) {
          const [inDim, outDim] = dims[target];
          modules.set(moduleKey(layer, target), { A: Float32Array.from({ length: rank * inDim }, () => (rand() - 0.5) * 0.6), B: Float32Array.from({ length: outDim * rank }, () => (rand() - 0.5) * 0.6) });
        }
      }
      const adapter: LoraAdapter = { config: { rank, alpha: 4, rslora: false, dropout: 0, targets, layers: [0, 1] }, modules };
      const ids = [3, 17, 60, 5, 41, 41, 8, 90, 2];
      const scored = [2, 3, 4, 5, 6, 7]; // positions whose next token is a "completion" token

      const { graph, trainable } = buildLlamaTrainingGraph(config, weights, { targets, layers: [0, 1] });
      const session = await openSession(serializeInline(graph), { device: "cpu", threads: 1 });
      const S = ids.length;
      const feeds: Record<string, ort.Tensor> = {
        [trainingInputNames.ids]: new ort.Tensor("int64", BigInt64Array.from(ids.map(BigInt)), [1, S]),
        [trainingInputNames.positions]: new ort.Tensor("int64", BigInt64Array.from(ids.map((_, i) => BigInt(i))), [1, S]),
        [trainingInputNames.bias]: new ort.Tensor("float32", Float32Array.from({ length: S * S }, (_, i) => (i % S <= Math.floor(i / S) ? 0 : -1e9)), [1, 1, S, S]),
        [trainingInputNames.lossIndex]: new ort.Tensor("int64", BigInt64Array.from(scored.map(BigInt)), [scored.length]),
        [trainingInputNames.labels]: new ort.Tensor("int64", BigInt64Array.from(scored.map((t) => BigInt(ids[t + 1]!))), [scored.length, 1]),
        [trainingInputNames.lossWeight]: new ort.Tensor("float32", new Float32Array(scored.length).fill(1 / scored.length), [scored.length, 1]),
        [LORA_SCALE_INPUT]: new ort.Tensor("float32", Float32Array.of(2), [1]),
      };
      for (const [key, m] of modules) {
        const [layer, target] = key.split(".") as [string, LoraTarget];
        const names = loraInputNames(Number(layer), target);
        const [inDim, outDim] = dims[target];
        feeds[names.a] = new ort.Tensor("float32", m.A, [rank, inDim]);
        feeds[names.b] = new ort.Tensor("float32", m.B, [outDim, rank]);
      }
      const out = await session.run(feeds);
      await session.release();
      assert.equal(trainable.length, 2 * modules.size);

      const loss = out[LOSS_OUTPUT]!.data[0] as number;
      const refLoss = referenceLoss(weights, config, ids, scored, adapter);
      assert.ok(Math.abs(loss - refLoss) < 1e-5 * Math.abs(refLoss), `loss ${loss} vs reference ${refLoss}`);

      // Finite differences on a sample of coordinates of every A and B.
      const h = 1e-3;
      let maxGrad = 0;
      const checks: Array<{ name: string; i: number; analytic: number; numeric: number }> = [];
      for (const [key, m] of modules) {
        const [layer, target] = key.split(".") as [string, LoraTarget];
        for (const [which, tensor] of [["a", m.A], ["b", m.B]] as const) {
          const name = loraInputNames(Number(layer), target)[which];
          const grad = out[gradOutputName(name)]!.data as Float32Array;
          assert.equal(grad.length, tensor.length);
          for (const x of grad) maxGrad = Math.max(maxGrad, Math.abs(x));
          for (const i of [0, Math.floor(tensor.length / 2), tensor.length - 1]) {
            const saved = tensor[i]!;
            tensor[i] = saved + h;
            const up = referenceLoss(weights, config, ids, scored, adapter);
            tensor[i] = saved - h;
            const down = referenceLoss(weights, config, ids, scored, adapter);
            tensor[i] = saved;
            // The perturbed value is rounded to float32 in the tensor: divide by the real step.
            const step = Math.fround(saved + h) - Math.fround(saved - h);
            checks.push({ name, i, analytic: grad[i]!, numeric: (up - down) / step });
          }
        }
      }
      assert.ok(maxGrad > 1e-3, "the gradients are not trivially zero");
      for (const c of checks) assert.ok(Math.abs(c.analytic - c.numeric) <= 2e-5 * maxGrad + 2e-5 * Math.abs(c.numeric), `${c.name}[${c.i}]: graph ${c.analytic}, finite difference ${c.numeric}`);
    } finally {
      weights.close();
    }
  });
}
