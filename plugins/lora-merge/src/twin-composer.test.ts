/**
 * composer/twin against Twin-Merging's own routed adapter: for an input, the gated graph composing
 * the shared and exclusive parts with the router's weights gives the logits of routedAdapter
 * (twin.ts) under the plain-TypeScript reference forward, to 1e-5.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CausalLM, initLoraAdapter, mulberry32, normalizeLoraConfig, openCheckpointWeights, readModelConfig, readPeftAdapter, referenceForward, writePeftAdapter, writeSafetensors, writeTinyCheckpoint, type ModelConfig } from "@bdc/lm-local";
import type { Encoder } from "@bdc/policy";
import { readCentroids } from "@bdc/cluster";
import { runMerge } from "./run-merge.ts";
import { openTwinComposer } from "./twin-composer.ts";
import { routedAdapter, routerWeights } from "./twin.ts";

let root: string;
let dir: string;
let model: ModelConfig;
const D = 4;
const IDS = [9, 30, 200, 4, 77, 5];

/** Embeds a text to a fixed unit vector of its length (deterministic, for the router). */
const encoder: Encoder = {
  name: "fake",
  model: "fake-encoder",
  dimension: D,
  embed: async (texts) =>
    texts.map((t) => {
      const rand = mulberry32(t.length);
      const v = Float32Array.from({ length: D }, () => rand() - 0.5);
      const n = Math.hypot(...v);
      return v.map((x) => x / n);
    }),
};

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-twin-composer-"));
  dir = path.join(root, "tiny");
  writeTinyCheckpoint(dir, { arch: "llama", layers: 2, hidden: 32, heads: 2, kvHeads: 1, vocab: 384, seed: 13, initStd: 0.1 });
  model = readModelConfig(dir);
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

test("composer/twin = shared + router-weighted exclusive parts (routedAdapter), to 1e-5 against the reference forward", async () => {
  const experts = [1, 2].map((seed) => {
    const a = initLoraAdapter(model, normalizeLoraConfig({ rank: 2, alpha: 4, rslora: false, dropout: 0, targets: ["q_proj", "v_proj"] }, model), seed);
    const rand = mulberry32(seed * 7);
    for (const m of a.modules.values()) for (let i = 0; i < m.B.length; i++) m.B[i] = (rand() * 2 - 1) * 0.5;
    const out = path.join(root, `e${seed}`);
    writePeftAdapter(out, a, model);
    return out;
  });
  const merged = path.join(root, "twin");
  runMerge({ model: dir, adapters: experts, method: "twin", options: {}, output: "adapter", out: merged, seed: 0 });
  const centroids = path.join(root, "centroids.safetensors");
  const rand = mulberry32(5);
  writeSafetensors(centroids, [{ name: "centroids", dtype: "F32", shape: [2, D], data: Float32Array.from({ length: 2 * D }, () => rand() - 0.5) }]);

  const composer = openTwinComposer({ dir: merged, centroids, model: dir, name: "twin" }, encoder);
  assert.deepEqual(composer.stack.experts.length, 3, "shared + two exclusive parts");
  const input = "route this input";
  const composition = await composer.compose(input);
  const [e] = await encoder.embed([input]);
  const stored = readCentroids(centroids);
  const weights = routerWeights(e!, [0, 1].map((k) => stored.centroids.subarray(k * D, (k + 1) * D)), 0.1);
  const parts = {
    shared: readPeftAdapter(path.join(merged, "shared"), model),
    exclusive: [0, 1].map((k) => readPeftAdapter(path.join(merged, `exclusive-${k}`), model)),
    experts: experts.map((x) => x),
    exclusiveEnergyKept: [1, 1],
    sharedEnergyKept: 1,
  };
  const want = routedAdapter(parts, model, weights);
  const weightsFile = openCheckpointWeights(dir);
  const lm = await CausalLM.load(dir, { threads: 1, cacheDir: path.join(root, "onnx"), lora: { targets: ["q_proj", "v_proj"], gates: true } });
  try {
    const got = (await lm.forward({ ids: [IDS], logitsAt: IDS.map((_, i) => i), adapter: composition })).logits;
    const ref = Float32Array.from(referenceForward(weightsFile, model, IDS, { lora: want }).logits.flatMap((r) => [...r]));
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i]! - ref[i]!));
    assert.ok(worst < 1e-5, `max |composed - routed| = ${worst}`);
    assert.ok(weights[0]! > 0 && weights[1]! > 0 && Math.abs(weights[0]! + weights[1]! - 1) < 1e-9);
  } finally {
    await lm.dispose();
    weightsFile.close();
  }
});
