/**
 * The hypernetwork's numbers: its backward pass against central differences (alone, and chained
 * through the whole language model, where the reference is the float64 TypeScript forward of
 * the composed adapter), both softmax modes, and its folder's round trip and errors.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  composedAdapter,
  compositionScale,
  initLoraAdapter,
  loadTokenizer,
  loadTrainingData,
  logSoftmax,
  mulberry32,
  normalizeLoraConfig,
  openCheckpointWeights,
  openTrainingSession,
  readModelConfig,
  referenceForward,
  stackExperts,
  writeTinyCheckpoint,
  type ExpertStack,
  type LoraAdapter,
  type ModelConfig,
} from "@bdc/lm-local";
import { Hypernetwork, paramNames, readHypernet, writeHypernet, type HypernetConfig, type SoftmaxMode } from "./hypernet.ts";
import { GatedLoss } from "./train-hypernet.ts";

let root: string;
let dir: string;
let model: ModelConfig;
let stack: ExpertStack;
const D = 6;
const K = 2;
const RANK = 2;

function expert(seed: number): LoraAdapter {
  const a = initLoraAdapter(model, normalizeLoraConfig({ rank: RANK, alpha: 4, rslora: false, dropout: 0, targets: ["q_proj", "v_proj"], layers: [0, 1] }, model), seed);
  const rand = mulberry32(seed + 77);
  for (const m of a.modules.values()) for (let i = 0; i < m.B.length; i++) m.B[i] = (rand() * 2 - 1) * 0.5;
  return a;
}

function unitRows(rows: number, cols: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const v = Array.from({ length: cols }, () => rand() * 2 - 1);
    const n = Math.hypot(...v);
    v.forEach((x, c) => (out[r * cols + c] = x / n));
  }
  return out;
}

const config = (softmax: SoftmaxMode): HypernetConfig => ({ encoder: { model: "test", dimension: D }, experts: ["e0", "e1"], rank: RANK, hidden: 5, layers: [0, 1], targets: ["q_proj", "v_proj"], softmax, gateScale: "mean" });

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-hypernet-"));
  dir = path.join(root, "tiny");
  writeTinyCheckpoint(dir, { arch: "llama", layers: 2, hidden: 32, heads: 2, kvHeads: 1, vocab: 384, seed: 11, initStd: 0.1 });
  model = readModelConfig(dir);
  stack = stackExperts([expert(1), expert(2)].map((adapter, k) => ({ name: `e${k}`, adapter })), model);
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Indices of a few parameters of every kind in two modules. */
function probes(net: Hypernetwork): Array<[string, number]> {
  return ["0.q_proj", "1.v_proj"].flatMap((key) => {
    const n = paramNames(key);
    return [n.w1, n.b1, n.w2, n.b2].flatMap((name) => {
      const size = net.params.get(name)!.length;
      return [0, Math.floor(size / 2), size - 1].map((i): [string, number] => [name, i]);
    });
  });
}

for (const softmax of ["all", "per-rank"] as const) {
  test(`softmax ${softmax}: gates sum to 1 per group; backward equals central differences (float64, 1e-6)`, () => {
    const net = Hypernetwork.init(config(softmax), unitRows(K, D, 3), 5);
    const e = unitRows(1, D, 4);
    const { gates, trace } = net.forward(e);
    for (const g of gates.values()) {
      const total = g.reduce((s, x) => s + x, 0);
      assert.ok(Math.abs(total - (softmax === "all" ? 1 : RANK)) < 1e-6);
      if (softmax === "per-rank") for (let j = 0; j < RANK; j++) assert.ok(Math.abs(g[j]! + g[RANK + j]! - 1) < 1e-6);
    }
    // A linear function of the gates: L = sum c . G, so dL/dG = c.
    const rand = mulberry32(8);
    const c = new Map([...gates.keys()].map((k) => [k, Float64Array.from({ length: net.R }, () => rand() * 2 - 1)]));
    const lossOf = () => {
      let s = 0;
      for (const [k, m] of net.forward(e).trace.perModule) m.gates.forEach((g, i) => (s += g * c.get(k)![i]!));
      return s;
    };
    const grads = net.backward(trace, c);
    for (const [name, i] of probes(net)) {
      const p = net.params.get(name)!;
      const x = p[i]!;
      const eps = 1e-3;
      p[i] = x + eps;
      const up = lossOf();
      p[i] = x - eps;
      const down = lossOf();
      p[i] = x;
      // The parameter moved by a float32-rounded step: divide by the step actually taken.
      const step = Math.fround(x + eps) - Math.fround(x - eps);
      const fd = (up - down) / step;
      assert.ok(Math.abs(fd - grads.get(name)![i]!) < 1e-6, `${name}[${i}]: fd ${fd} vs ${grads.get(name)![i]}`);
    }
  });
}

test("hypernetwork gradients through the whole model equal central differences of the float64 reference (within 1e-3 of the largest)", async () => {
  const data = path.join(root, "row.jsonl");
  fs.writeFileSync(data, `${JSON.stringify({ prompt: "sort the list of numbers", completion: " sorted(xs) and return it" })}\n`);
  const example = loadTrainingData(data, loadTokenizer(dir), { maxLength: 64 }).examples[0]!;
  const net = Hypernetwork.init(config("all"), unitRows(K, D, 3), 21);
  const e = unitRows(1, D, 22);
  const scale = compositionScale(stack, "mean", net.gateMass);
  const completion = [...example.lossMask].reduce((s, m) => s + m, 0);

  const session = await openTrainingSession(dir, model, { targets: stack.targets, layers: stack.layers, gates: true }, { cacheDir: path.join(root, "onnx"), threads: 1 });
  let analytic: Map<string, Float32Array>;
  let graphLoss: number;
  try {
    const { gates, trace } = net.forward(e);
    const row = await new GatedLoss(session, model, stack, scale, 64).run(example, gates, 1 / completion);
    graphLoss = row.loss;
    analytic = net.backward(trace, row.gateGrads);
  } finally {
    await session.release();
  }

  const weights = openCheckpointWeights(dir);
  try {
    const lossOf = () => {
      const lora = composedAdapter({ stack, gates: net.forward(e).gates, scale });
      const { logits } = referenceForward(weights, model, example.ids, { lora, precision: "float64" });
      let loss = 0;
      for (let t = 1; t < example.ids.length; t++) if (example.lossMask[t] === 1) loss -= logSoftmax(logits[t - 1]!)[example.ids[t]!]! / completion;
      return loss;
    };
    assert.ok(Math.abs(lossOf() - graphLoss) < 1e-5, `loss: graph ${graphLoss} vs reference ${lossOf()}`);
    const checks = probes(net);
    const largest = Math.max(...checks.map(([name, i]) => Math.abs(analytic.get(name)![i]!)));
    assert.ok(largest > 1e-4, "the probed gradients are not all ~0");
    for (const [name, i] of checks) {
      const p = net.params.get(name)!;
      const x = p[i]!;
      p[i] = x + 1e-2;
      const up = lossOf();
      p[i] = x - 1e-2;
      const down = lossOf();
      p[i] = x;
      const fd = (up - down) / (Math.fround(x + 1e-2) - Math.fround(x - 1e-2));
      assert.ok(Math.abs(fd - analytic.get(name)![i]!) < 1e-3 * largest, `${name}[${i}]: fd ${fd} vs analytic ${analytic.get(name)![i]} (largest ${largest})`);
    }
  } finally {
    weights.close();
  }
});

test("a hypernetwork folder round-trips; a folder for another config is refused with what to do", () => {
  const net = Hypernetwork.init(config("per-rank"), unitRows(K, D, 3), 5);
  const out = path.join(root, "saved");
  writeHypernet(out, net, { note: "kept" });
  const back = readHypernet(out);
  assert.deepEqual(back.config, net.config);
  assert.equal(back.extra["note"], "kept");
  for (const [name, p] of net.params) assert.deepEqual(back.params.get(name), p);
  const e = unitRows(1, D, 9);
  assert.deepEqual(back.forward(e).gates, net.forward(e).gates);

  const cfg = JSON.parse(fs.readFileSync(path.join(out, "hypernet_config.json"), "utf8"));
  fs.writeFileSync(path.join(out, "hypernet_config.json"), JSON.stringify({ ...cfg, layers: [0, 1, 2] }));
  assert.throws(() => readHypernet(out), (err: Error & { code?: string }) => err.code === "BDC_HYPERNET_CONFIG" && /2\.q_proj\.fc1\.weight has no values/.test(err.message));
  assert.throws(() => net.forward(new Float32Array(D + 1)), (err: Error & { code?: string }) => err.code === "BDC_CLUSTER_DIMENSION" && /7-d; this hypernetwork reads 6-d/.test(err.message));
  assert.throws(() => readHypernet(path.join(root, "nowhere")), /hypernet_config.json does not exist/);
});
