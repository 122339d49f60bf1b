/**
 * DisenLoRA's composition against the static merges of lora-merge (an independent code path):
 * under the mean-preserving gate scale, uniform gates give exactly the linear (average) merge of
 * the experts - the logits of the gated graph equal the plain-TypeScript reference forward of
 * lora-merge's linear merge (exact at rank K*r) to 1e-5 - and the authors' scale gives 1/(scale*r)
 * of that update.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CausalLM, compositionScale, initLoraAdapter, mulberry32, normalizeLoraConfig, openCheckpointWeights, readModelConfig, referenceForward, stackExperts, uniformGates, writeTinyCheckpoint, type LoraAdapter, type ModelConfig } from "@bdc/lm-local";
import { mergeToAdapter, specOf } from "@bdc/lora-merge";

let root: string;
let dir: string;
let model: ModelConfig;
const IDS = [7, 40, 300, 12, 5, 99, 250, 3];

function expert(seed: number): LoraAdapter {
  const a = initLoraAdapter(model, normalizeLoraConfig({ rank: 3, alpha: 6, rslora: false, dropout: 0, targets: ["q_proj", "v_proj", "up_proj"], layers: [0, 1] }, model), seed);
  const rand = mulberry32(seed * 3);
  for (const m of a.modules.values()) for (let i = 0; i < m.B.length; i++) m.B[i] = (rand() * 2 - 1) * 0.4;
  return a;
}

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-compose-merge-"));
  dir = path.join(root, "tiny");
  writeTinyCheckpoint(dir, { arch: "mistral", layers: 2, hidden: 48, heads: 3, kvHeads: 1, vocab: 384, seed: 9, initStd: 0.1 });
  model = readModelConfig(dir);
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

test("uniform gates (mean-preserving scale) give lora-merge's linear merge, to 1e-5 against the reference forward", async () => {
  const experts = [expert(1), expert(2), expert(3)].map((adapter, k) => ({ name: `e${k}`, adapter }));
  const stack = stackExperts(experts, model);
  const linear = mergeToAdapter(experts, model, { method: "linear", spec: specOf("linear", 3), rank: 9, seed: 0 }).adapter;
  const weights = openCheckpointWeights(dir);
  const reference = (lora: LoraAdapter | undefined) => Float32Array.from(referenceForward(weights, model, IDS, { lora }).logits.flatMap((r) => [...r]));
  const lm = await CausalLM.load(dir, { threads: 1, cacheDir: path.join(root, "onnx"), lora: { targets: ["q_proj", "v_proj", "up_proj"], gates: true } });
  try {
    const logits = async (scale: number) => (await lm.forward({ ids: [IDS], logitsAt: IDS.map((_, i) => i), adapter: { stack, gates: uniformGates(stack), scale } })).logits;
    const want = reference(linear);
    assert.ok(maxAbsDiff(want, reference(undefined)) > 1e-2, "the merge changes the logits");
    assert.ok(maxAbsDiff(await logits(compositionScale(stack, "mean")), want) < 1e-5);
    // The authors' scale: the same update times 1/(alpha/r * r) = 1/6 here.
    const sixth = { ...linear, config: { ...linear.config, alpha: linear.config.alpha / 6 } };
    assert.ok(maxAbsDiff(await logits(compositionScale(stack, "authors")), reference(sixth)) < 1e-5);
  } finally {
    await lm.dispose();
    weights.close();
  }
});
