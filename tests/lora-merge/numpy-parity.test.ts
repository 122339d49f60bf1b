/**
 * Every merge against an independent NumPy implementation (benchmarks/python/merge_reference.py,
 * Debian's python3-numpy, float64), on three random adapters of a tiny model that differ in rank,
 * scaling (one rsLoRA) and modules (one adapts only layer 1, one also down_proj):
 *
 * - the merged full delta of every module: equal to 1e-12 of its largest entry for linear, task
 *   arithmetic, TIES (both sign rules), magnitude pruning and concatenation; DARE and DARE-TIES
 *   with the same random masks (ours, handed to NumPy);
 * - the rank-R PEFT adapter re-factorised from it: the energy kept equals NumPy's full-SVD
 *   truncation to 1e-9, and the residual ||dW - B A||^2 is the optimal one, (1 - kept) ||dW||^2;
 * - factor-space merging (PEFT's non-SVD combinations) on adapters of equal rank: B A equal to
 *   NumPy's to 1e-6 of its largest entry (the factors are float32), DARE with the same masks;
 * - Twin-Merging's parts: the shared and each exclusive part equal to NumPy's SVD truncation of
 *   the TIES merge and of each expert's delta minus it, to 1e-6 of the largest entry.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { initLoraAdapter, moduleKey, normalizeLoraConfig, projectionDims, readModelConfig, writePeftAdapter, writeTinyCheckpoint, type LoraAdapter, type LoraTarget } from "@bdc/lm-local";
import { concatenate, loraDelta, mergedDeltas, mergeFactors, mergeToAdapter, type NamedAdapter } from "../../plugins/lora-merge/src/merge.ts";
import { twinParts } from "../../plugins/lora-merge/src/twin.ts";
import type { MergeSpec } from "../../plugins/lora-merge/src/merge-core.ts";
import { numpyOrSkip } from "../torch.ts";

const repo = path.resolve(import.meta.dirname, "../..");
const SCRIPT = path.join(repo, "benchmarks/python/merge_reference.py");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-merge-numpy-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const modelDir = path.join(tmp, "model");
writeTinyCheckpoint(modelDir, { arch: "llama", layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, vocab: 300, seed: 2 });
const model = readModelConfig(modelDir);

function randomAdapter(name: string, seed: number, c: { rank: number; alpha: number; rslora?: boolean; targets: LoraTarget[]; layers: number[] }): NamedAdapter {
  const adapter = initLoraAdapter(model, normalizeLoraConfig({ rank: c.rank, alpha: c.alpha, rslora: c.rslora ?? false, dropout: 0, targets: c.targets, layers: c.layers, baseModel: "tiny" }, model), seed);
  let s = seed * 7 + 1;
  for (const m of adapter.modules.values()) for (let i = 0; i < m.B.length; i++) m.B[i] = ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 0.4;
  const dir = path.join(tmp, name);
  writePeftAdapter(dir, adapter, model);
  return { name: dir, adapter };
}

const ADAPTERS: NamedAdapter[] = [
  randomAdapter("a", 1, { rank: 4, alpha: 8, targets: ["q_proj", "v_proj"], layers: [0, 1] }),
  randomAdapter("b", 2, { rank: 2, alpha: 4, rslora: true, targets: ["q_proj", "v_proj", "down_proj"], layers: [0, 1] }),
  randomAdapter("c", 3, { rank: 4, alpha: 16, targets: ["q_proj", "v_proj"], layers: [1] }),
];
const RANK = 4;

const METHODS: ReadonlyArray<{ name: string; spec: MergeSpec; weights: number[] }> = [
  { name: "linear", spec: { weights: [], lambda: 1 }, weights: [1 / 3, 1 / 3, 1 / 3] },
  { name: "task-arithmetic", spec: { weights: [], lambda: 0.7 }, weights: [1, 0.5, -0.25] },
  { name: "ties (total)", spec: { weights: [], sparsify: { method: "magnitude", density: 0.3 }, sign: "total", lambda: 1 }, weights: [1, 1, 1] },
  { name: "ties (frequency)", spec: { weights: [], sparsify: { method: "magnitude", density: 0.5 }, sign: "frequency", lambda: 1 }, weights: [1, 0.8, 1.2] },
  { name: "magnitude prune", spec: { weights: [], sparsify: { method: "magnitude", density: 0.3 }, lambda: 1 }, weights: [1, 1, 1] },
  { name: "dare", spec: { weights: [], sparsify: { method: "random", density: 0.3, rescale: true }, lambda: 0.7 }, weights: [1, 1, 1] },
  { name: "dare-ties", spec: { weights: [], sparsify: { method: "random", density: 0.3, rescale: true }, sign: "total", lambda: 1 }, weights: [1, 1, 1] },
];

function numpy(python: string, job: Record<string, unknown>): Record<string, { singular: number[]; energy_kept: number; shape: [number, number] }> {
  const r = spawnSync(python, [SCRIPT], { input: JSON.stringify(job), encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(fs.readFileSync(path.join(job["out"] as string, "report.json"), "utf8")) as ReturnType<typeof numpy>;
}

const readF64 = (file: string) => {
  const b = fs.readFileSync(file);
  return new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8);
};

const maxAbs = (x: ArrayLike<number>) => Array.from(x).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** B A of a merged adapter's module (scale 1 by construction). */
function product(adapter: LoraAdapter, key: string, target: LoraTarget): Float64Array {
  const [inDim, outDim] = projectionDims(model)[target];
  return loraDelta(adapter.modules.get(key)!, adapter.config.rank, inDim, outDim, 1);
}

/** Max |B A - theirs| over a module, against 1e-6 of theirs' largest entry (the factors are float32, as a PEFT file holds them). */
function assertProductMatches(adapter: LoraAdapter, key: string, file: string) {
  const theirs = readF64(file);
  const ba = product(adapter, key, key.split(".")[1] as LoraTarget);
  const scale = maxAbs(theirs);
  assert.ok(scale > 0, `${key}: a non-trivial delta`);
  let worst = 0;
  ba.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - theirs[i]!))));
  assert.ok(worst <= 1e-6 * scale, `${key} (${path.basename(file)}): max |BA - numpy| = ${worst} (scale ${scale})`);
}

for (const method of METHODS) {
  test(`${method.name}: merged deltas equal NumPy's; the rank-${RANK} adapter keeps NumPy's SVD energy`, (t) => {
    const python = numpyOrSkip(t);
    if (python === undefined) return;
    const out = path.join(tmp, `np-${method.name.replace(/\W+/g, "-")}`);
    const masksDir = path.join(out, "masks");
    fs.mkdirSync(masksDir, { recursive: true });
    const spec = { ...method.spec, weights: method.weights };
    const ours = new Map<string, Float64Array>();
    for (const m of mergedDeltas(ADAPTERS, model, { method: method.name, spec, seed: 11, onTrace: (key, trace) => trace.masks.forEach((mask, k) => fs.writeFileSync(path.join(masksDir, `${key}.${k}.u8`), mask)) })) {
      ours.set(moduleKey(m.layer, m.target), m.delta);
    }
    const reference = numpy(python, { adapters: ADAPTERS.map((a) => a.name), weights: method.weights, method: spec, rank: RANK, masks: spec.sparsify?.method === "random" ? masksDir : null, out });
    assert.deepEqual([...ours.keys()].sort(), Object.keys(reference).sort());
    const { adapter, report } = mergeToAdapter(ADAPTERS, model, { method: method.name, spec, rank: RANK, seed: 11 });
    for (const [key, delta] of ours) {
      const theirs = readF64(path.join(out, `${key}.delta.f64`));
      const scale = maxAbs(theirs);
      assert.ok(scale > 0, `${key}: a non-trivial delta`);
      let worst = 0;
      delta.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - theirs[i]!))));
      assert.ok(worst <= 1e-12 * scale, `${key}: max |ours - numpy| = ${worst} (delta scale ${scale})`);
      const kept = report.modules.find((m) => m.module === key)!.energyKept;
      assert.ok(Math.abs(kept - reference[key]!.energy_kept) <= 1e-9, `${key}: energy kept ${kept} vs numpy ${reference[key]!.energy_kept}`);
      const ba = product(adapter, key, key.split(".")[1] as LoraTarget);
      const frob = delta.reduce((s, x) => s + x * x, 0);
      const residual = delta.reduce((s, x, i) => s + (x - ba[i]!) ** 2, 0);
      // Float32 factors: the optimal residual to ~1e-6 of the delta's energy.
      assert.ok(Math.abs(residual - (1 - reference[key]!.energy_kept) * frob) <= 1e-6 * frob, `${key}: residual ${residual / frob} of the energy, optimal ${1 - reference[key]!.energy_kept}`);
    }
  });
}

test("concatenation (cat): exact, rank = the sum of the ranks, equal to NumPy's weighted sum of deltas", (t) => {
  const python = numpyOrSkip(t);
  if (python === undefined) return;
  const weights = [1, 2, 0.5];
  const out = path.join(tmp, "np-cat");
  numpy(python, { adapters: ADAPTERS.map((a) => a.name), weights, method: { cat: true, lambda: 1 }, rank: RANK, masks: null, out });
  const { adapter } = concatenate(ADAPTERS, model, weights);
  assert.equal(adapter.config.rank, 10);
  assert.deepEqual([adapter.config.targets, adapter.config.layers], [["q_proj", "v_proj", "down_proj"], [0, 1]]);
  for (const key of adapter.modules.keys()) assertProductMatches(adapter, key, path.join(out, `${key}.delta.f64`));
});


// Factor space needs equal ranks: a and c (rank 4) and one more, rsLoRA, on other modules.
const EQUAL_RANKS: NamedAdapter[] = [ADAPTERS[0]!, ADAPTERS[2]!, randomAdapter("d", 4, { rank: 4, alpha: 4, rslora: true, targets: ["q_proj", "v_proj", "down_proj"], layers: [0, 1] })];

for (const method of METHODS.filter((m) => ["linear", "ties (total)", "dare", "dare-ties"].includes(m.name))) {
  test(`factor space, ${method.name}: B A equals NumPy's PEFT-style factor merge`, (t) => {
    const python = numpyOrSkip(t);
    if (python === undefined) return;
    const out = path.join(tmp, `np-factors-${method.name.replace(/\W+/g, "-")}`);
    const masksDir = path.join(out, "masks");
    fs.mkdirSync(masksDir, { recursive: true });
    const spec = { ...method.spec, weights: method.weights };
    // The trace holds A's masks, then B's, one per adapter that adapts the module.
    const { adapter } = mergeFactors(EQUAL_RANKS, model, {
      method: method.name,
      spec,
      seed: 5,
      onTrace: (key, trace) => trace.masks.forEach((mask, i) => fs.writeFileSync(path.join(masksDir, `${key}.${i < trace.masks.length / 2 ? "A" : "B"}.${i % (trace.masks.length / 2)}.u8`), mask)),
    });
    numpy(python, { adapters: EQUAL_RANKS.map((a) => a.name), weights: method.weights, method: spec, space: "factors", rank: RANK, masks: spec.sparsify?.method === "random" ? masksDir : null, out });
    for (const key of adapter.modules.keys()) assertProductMatches(adapter, key, path.join(out, `${key}.delta.f64`));
  });
}

test("Twin-Merging parts: shared and exclusive parts equal NumPy's truncations", (t) => {
  const python = numpyOrSkip(t);
  if (python === undefined) return;
  const out = path.join(tmp, "np-twin");
  const shared: MergeSpec = { weights: [1, 1, 1], sparsify: { method: "magnitude", density: 0.3 }, sign: "total", lambda: 1 };
  const parts = twinParts(ADAPTERS, model, { shared, sharedRank: 4, exclusiveRank: 2, seed: 0 });
  numpy(python, { adapters: ADAPTERS.map((a) => a.name), weights: shared.weights, method: shared, rank: RANK, masks: null, out, twin: { shared_rank: 4, exclusive_rank: 2 } });
  for (const key of parts.shared.modules.keys()) {
    assertProductMatches(parts.shared, key, path.join(out, `${key}.shared.f64`));
    parts.exclusive.forEach((ex, k) => assertProductMatches(ex, key, path.join(out, `${key}.exclusive.${k}.f64`)));
  }
});
