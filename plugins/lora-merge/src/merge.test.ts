/**
 * Merge behaviours by construction (NumPy parity of every method: tests/lora-merge/), Twin-Merging,
 * refusals, and the CLI's outputs as the runtime loads them: a merged checkpoint's logits equal
 * the base model's with the (exact, concatenated) adapter.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BdcError, cli } from "@bdc/core";
import { CausalLM, initLoraAdapter, loraScale, moduleKey, normalizeLoraConfig, projectionDims, readModelConfig, readPeftAdapter, writePeftAdapter, writeTinyCheckpoint, type LoraAdapter, type LoraTarget } from "@bdc/lm-local";
import { concatenate, loraDelta, mergedDeltas, mergeFactors, mergeToAdapter, type NamedAdapter } from "./merge.ts";
import { specOf } from "./presets.ts";
import { routedAdapter, routerWeights, twinParts } from "./twin.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-merge-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const modelDir = path.join(root, "model");
writeTinyCheckpoint(modelDir, { arch: "qwen2", layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, vocab: 300, seed: 4 });
const model = readModelConfig(modelDir);
const dims = projectionDims(model);

function adapter(seed: number, rank: number, targets: LoraTarget[] = ["q_proj", "v_proj"], base = "tiny"): LoraAdapter {
  const a = initLoraAdapter(model, normalizeLoraConfig({ rank, alpha: 2 * rank, rslora: false, dropout: 0, targets, baseModel: base }, model), seed);
  let s = seed;
  for (const m of a.modules.values()) for (let i = 0; i < m.B.length; i++) m.B[i] = ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 0.5;
  return a;
}
const named = (name: string, a: LoraAdapter): NamedAdapter => ({ name, adapter: a });
const deltaOf = (a: LoraAdapter, key: string, scale = loraScale(a.config)) => {
  const [inDim, outDim] = dims[key.split(".")[1] as LoraTarget];
  return loraDelta(a.modules.get(key)!, a.config.rank, inDim, outDim, scale);
};
const maxDiff = (x: ArrayLike<number>, y: ArrayLike<number>) => Array.from(x).reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);

test("an adapter merged with itself is itself: linear average, TIES at density 1, the rank-r re-factorisation exact", () => {
  const a = adapter(3, 4);
  const twice = [named("a", a), named("a2", a)];
  const key = moduleKey(1, "q_proj");
  for (const spec of [specOf("linear", 2), specOf("ties", 2, { density: 1 })]) {
    const merged = [...mergedDeltas(twice, model, { method: "m", spec, seed: 1 })].find((m) => moduleKey(m.layer, m.target) === key)!;
    assert.ok(maxDiff(merged.delta, deltaOf(a, key)) < 1e-12);
  }
  const { adapter: out, report } = mergeToAdapter(twice, model, { method: "linear", spec: specOf("linear", 2), rank: 4, seed: 1 });
  assert.ok(Math.abs(report.energyKept - 1) < 1e-9, "a rank-4 update kept whole at rank 4");
  for (const k of a.modules.keys()) assert.ok(maxDiff(deltaOf(out, k), deltaOf(a, k)) < 1e-5, k);
});

test("DARE: seeded masks, the same for a seed and different for another; density near the asked one", () => {
  const experts = [named("a", adapter(1, 4)), named("b", adapter(2, 4))];
  const masks = (seed: number) => {
    const out: Uint8Array[] = [];
    for (const _ of mergedDeltas(experts, model, { method: "dare", spec: specOf("dare", 2), seed, onTrace: (_k, t) => out.push(...t.masks) }));
    return out;
  };
  const [a, b, c] = [masks(1), masks(1), masks(2)];
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const kept = a.reduce((n, m) => n + m.reduce((s, x) => s + x, 0), 0) / a.reduce((n, m) => n + m.length, 0);
  assert.ok(Math.abs(kept - 0.3) < 0.02, `kept ${kept}`);
});

test("cat is exact; factor space adds cross terms and refuses unequal ranks; other base models are refused", () => {
  const a = adapter(5, 4);
  const b = adapter(6, 2, ["q_proj", "v_proj", "down_proj"]);
  const { adapter: c } = concatenate([named("a", a), named("b", b)], model, [1, -0.5]);
  assert.equal(c.config.rank, 6);
  const key = moduleKey(0, "v_proj");
  const want = deltaOf(a, key).map((x, i) => x - 0.5 * deltaOf(b, key)[i]!);
  assert.ok(maxDiff(deltaOf(c, key, 1), want) < 1e-5);
  assert.ok(maxDiff(deltaOf(c, moduleKey(1, "down_proj"), 1), deltaOf(b, moduleKey(1, "down_proj")).map((x) => -0.5 * x)) < 1e-5, "a module only b adapts");

  assert.throws(() => mergeFactors([named("a", a), named("b", b)], model, { method: "linear", spec: specOf("linear", 2), seed: 0 }), (e: unknown) => e instanceof BdcError && /factor-space merging needs equal ranks \(a: 4, b: 2\)/.test(e.message));
  const a2 = adapter(7, 4);
  const f = mergeFactors([named("a", a), named("a2", a2)], model, { method: "linear", spec: specOf("linear", 2), seed: 0 });
  const exact = deltaOf(a, key).map((x, i) => 0.5 * x + 0.5 * deltaOf(a2, key)[i]!);
  assert.ok(maxDiff(deltaOf(f.adapter, key, 1), exact) > 1e-3, "cross terms: (A1 + A2)(B1 + B2) / 2 is not the average of the updates");
  assert.ok(f.report.notes.some((n) => /cross terms/.test(n)));

  assert.throws(() => mergeToAdapter([named("a", a), named("x", adapter(8, 4, ["q_proj"], "other/model"))], model, { method: "ties", spec: specOf("ties", 2), seed: 0 }), (e: unknown) => e instanceof BdcError && e.code === "BDC_MERGE_INPUT" && /different base models: a on tiny; x on other\/model/.test(e.message));
});

test("Twin-Merging: shared + a one-hot routed exclusive part gives back that expert; the router is a softmax of cosines", () => {
  const experts = [named("a", adapter(9, 2)), named("b", adapter(10, 2)), named("c", adapter(11, 2))];
  // Full-rank parts (32 >= every projection's smaller side): no compression, so exact.
  const parts = twinParts(experts, model, { shared: specOf("ties", 3), sharedRank: 32, exclusiveRank: 32, seed: 1 });
  assert.ok(Math.abs(parts.sharedEnergyKept - 1) < 1e-9 && parts.exclusiveEnergyKept.every((e) => Math.abs(e - 1) < 1e-9));
  for (const [k, e] of experts.entries()) {
    const routed = routedAdapter(parts, model, experts.map((_, j) => (j === k ? 1 : 0)));
    for (const key of e.adapter.modules.keys()) assert.ok(maxDiff(deltaOf(routed, key, 1), deltaOf(e.adapter, key)) < 1e-4, `${e.name} ${key}`);
  }
  const w = routerWeights([1, 0, 0], [[0.9, 0.1, 0], [0, 1, 0], [-1, 0, 0]], 0.1);
  assert.ok(Math.abs(w.reduce((s, x) => s + x, 0) - 1) < 1e-12 && w[0]! > 0.99);
});

async function bdc(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await cli(args, { out: (t) => void (out += t), err: (t) => void (err += t), cwd: root, env: { ...process.env, BDC_ONNX_CACHE: path.join(root, "onnx") }, isTTY: false });
  return { code, out, err };
}

test("bdc lora merge: a PEFT adapter and a merged checkpoint the runtime loads; W + dW gives the base + adapter logits", async () => {
  const dirs = [adapter(12, 4), adapter(13, 4)].map((a, i) => {
    const dir = path.join(root, `expert-${i}`);
    writePeftAdapter(dir, a, model);
    return dir;
  });
  const ties = await bdc("lora", "merge", "--model", modelDir, "--adapters", dirs.join(","), "--method", "ties", "--out", path.join(root, "ties"), "--json");
  assert.equal(ties.code, 0, ties.err);
  const summary = JSON.parse(ties.out.trim()) as { rank: number; energy_kept: number; method: string };
  assert.deepEqual([summary.method, summary.rank], ["ties", 4]);
  assert.ok(summary.energy_kept > 0 && summary.energy_kept < 1, "TIES makes the update full rank: a rank-4 adapter keeps part of it");
  assert.ok(fs.existsSync(path.join(root, "ties", "merge_report.json")));

  const cat = await bdc("lora", "merge", "--model", modelDir, "--adapters", dirs[0]!, "--adapters", dirs[1]!, "--method", "cat", "--out", path.join(root, "cat"));
  assert.equal(cat.code, 0, cat.err);
  const ckpt = await bdc("lora", "merge", "--model", modelDir, "--adapters", dirs.join(","), "--method", "cat", "--checkpoint", "--out", path.join(root, "cat-checkpoint"));
  assert.equal(ckpt.code, 0, ckpt.err);
  assert.equal(readPeftAdapter(path.join(root, "cat"), model).config.rank, 8);

  const ids = [[3, 70, 150, 9, 42, 250]];
  const at = ids[0]!.map((_, i) => i);
  const withAdapter = await CausalLM.load(modelDir, { adapter: path.join(root, "cat"), threads: 1, cacheDir: path.join(root, "onnx") });
  const merged = await CausalLM.load(path.join(root, "cat-checkpoint"), { threads: 1, cacheDir: path.join(root, "onnx") });
  try {
    const a = (await withAdapter.forward({ ids, logitsAt: at })).logits;
    const b = (await merged.forward({ ids, logitsAt: at })).logits;
    assert.ok(maxDiff(a, b) < 1e-4, `merged checkpoint vs base + adapter: ${maxDiff(a, b)}`);
  } finally {
    await withAdapter.dispose();
    await merged.dispose();
  }

  const bad = await bdc("lora", "merge", "--model", modelDir, "--adapters", dirs.join(","), "--method", "average", "--out", path.join(root, "x"));
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--method average: choose linear, task-arithmetic, ties, dare, twin, cat/);
  const other = path.join(root, "other");
  writePeftAdapter(other, adapter(14, 4, ["q_proj", "v_proj"], "elsewhere"), model);
  const refused = await bdc("lora", "merge", "--model", modelDir, "--adapters", `${dirs[0]},${other}`, "--method", "linear", "--out", path.join(root, "y"));
  assert.equal(refused.code, 2);
  assert.match(refused.err, /different base models/);
});
