/**
 * Merging LoRA adapters of one base model, module by module (one adapted projection of one layer
 * at a time, so memory holds K deltas of one matrix, not of the model):
 *
 * - delta space (default): each adapter's full update dW_k = scale_k * B_k A_k, merged by a
 *   MergeSpec (merge-core.ts), then either re-factorised by truncated SVD to a chosen rank (a PEFT
 *   adapter; the energy kept is reported per module) or added to the base weights (a merged
 *   checkpoint, exact);
 * - factor space (labelled option, PEFT's non-SVD ties/dare/linear): A's and B's merged
 *   separately with weights sqrt(|w scale|), which adds cross terms B_i A_j;
 * - concatenation: exact, rank = the sum of the ranks.
 *
 * A module adapted by only some adapters is merged from those (as PEFT does); adapters for
 * another base model are refused.
 */
import { BdcError } from "@bdc/core";
import { LORA_TARGETS, loraScale, moduleKey, mulberry32, projectionDims, type LoraAdapter, type LoraConfig, type LoraModule, type LoraTarget, type ModelConfig } from "@bdc/lm-local";
import { productSvd, truncatedSvd } from "./linalg.ts";
import { mergeTensors, type MergeSpec, type MergeTrace } from "./merge-core.ts";

export interface NamedAdapter {
  readonly name: string;
  readonly adapter: LoraAdapter;
}

export interface ModuleReport {
  readonly module: string;
  /** Adapters that adapt this module. */
  readonly from: ReadonlyArray<string>;
  /** Fraction of the merged delta's energy (sum of sigma^2) kept by the rank truncation; 1 when exact. */
  readonly energyKept: number;
}

export interface MergeReport {
  readonly method: string;
  readonly space: "delta" | "factors" | "concat";
  readonly rank: number;
  readonly modules: ReadonlyArray<ModuleReport>;
  /** Weighted by each module's energy. */
  readonly energyKept: number;
  readonly notes: ReadonlyArray<string>;
}

export interface MergeResult {
  readonly adapter: LoraAdapter;
  readonly report: MergeReport;
}

const fail = (message: string, hint?: string) => new BdcError({ code: "BDC_MERGE_INPUT", message, ...(hint === undefined ? {} : { hint }) });

/** Checks that the adapters can be merged; returns the modules (layer, target) of their union and notes. */
export function checkMergeable(adapters: ReadonlyArray<NamedAdapter>, model: ModelConfig): { keys: Array<[number, LoraTarget]>; notes: string[] } {
  if (adapters.length === 0) throw fail("no adapters to merge");
  const bases = new Map<string, string[]>();
  for (const a of adapters) {
    const base = a.adapter.config.baseModel;
    if (base !== undefined) bases.set(base, [...(bases.get(base) ?? []), a.name]);
  }
  if (bases.size > 1) {
    throw fail(
      `the adapters were trained on different base models: ${[...bases].map(([b, names]) => `${names.join(", ")} on ${b}`).join("; ")}`,
      "a merge adds updates of the same weights: merge adapters of one base model",
    );
  }
  const notes: string[] = [];
  const layers = new Set<number>();
  const targets = new Set<LoraTarget>();
  for (const a of adapters) {
    a.adapter.config.layers.forEach((l) => layers.add(l));
    a.adapter.config.targets.forEach((t) => targets.add(t));
  }
  const sig = (a: NamedAdapter) => `${a.adapter.config.targets.join("+")} on layers ${a.adapter.config.layers.join(",")}`;
  if (new Set(adapters.map(sig)).size > 1) notes.push(`the adapters adapt different modules (${adapters.map((a) => `${a.name}: ${sig(a)}`).join("; ")}); each module is merged from the adapters that adapt it`);
  const ranks = new Set(adapters.map((a) => a.adapter.config.rank));
  if (ranks.size > 1) notes.push(`the adapters have different ranks (${adapters.map((a) => `${a.name}: ${a.adapter.config.rank}`).join(", ")}); merged in delta space, that is fine`);
  const dims = projectionDims(model);
  for (const a of adapters) {
    for (const [key, m] of a.adapter.modules) {
      const target = key.slice(key.indexOf(".") + 1) as LoraTarget;
      const [inDim, outDim] = dims[target];
      if (m.A.length !== a.adapter.config.rank * inDim || m.B.length !== outDim * a.adapter.config.rank) throw fail(`${a.name}: module ${key} does not fit this model's ${inDim} -> ${outDim} projection`, "the adapter was trained for another model");
    }
  }
  const keys: Array<[number, LoraTarget]> = [];
  for (const l of [...layers].sort((x, y) => x - y)) for (const t of LORA_TARGETS) if (targets.has(t)) keys.push([l, t]);
  return { keys, notes };
}

/** dW = scale * B A, [out, in]. */
export function loraDelta(m: LoraModule, rank: number, inDim: number, outDim: number, scale: number): Float64Array {
  const d = new Float64Array(outDim * inDim);
  for (let o = 0; o < outDim; o++) {
    const row = o * inDim;
    for (let r = 0; r < rank; r++) {
      const b = m.B[o * rank + r]! * scale;
      if (b === 0) continue;
      const arow = r * inDim;
      for (let i = 0; i < inDim; i++) d[row + i]! += b * m.A[arow + i]!;
    }
  }
  return d;
}

function mergedConfig(adapters: ReadonlyArray<NamedAdapter>, keys: ReadonlyArray<[number, LoraTarget]>, rank: number): LoraConfig {
  return {
    rank,
    // alpha = rank: scale 1, the singular values live in B (as PEFT's add_weighted_adapter).
    alpha: rank,
    rslora: false,
    dropout: 0,
    targets: LORA_TARGETS.filter((t) => keys.some(([, k]) => k === t)),
    layers: [...new Set(keys.map(([l]) => l))],
    baseModel: adapters[0]!.adapter.config.baseModel,
  };
}

const toF32 = (x: Float64Array) => Float32Array.from(x);
const weightedEnergy = (modules: ReadonlyArray<ModuleReport & { energy: number }>) => {
  const total = modules.reduce((s, m) => s + m.energy, 0);
  return total === 0 ? 1 : modules.reduce((s, m) => s + m.energy * m.energyKept, 0) / total;
};

export interface DeltaMergeOptions {
  readonly method: string;
  readonly spec: MergeSpec;
  /** Rank of the output adapter (default: the largest input rank). */
  readonly rank?: number | undefined;
  readonly seed: number;
  /** Masks used by random/magnitude sparsification, per module (for checks against a reference). */
  readonly onTrace?: ((module: string, trace: MergeTrace) => void) | undefined;
}

/** Merged full deltas of every module, by `spec` (the weights are per adapter). */
export function* mergedDeltas(adapters: ReadonlyArray<NamedAdapter>, model: ModelConfig, options: Omit<DeltaMergeOptions, "rank">): Generator<{ layer: number; target: LoraTarget; delta: Float64Array; from: string[]; parts: Array<{ B: Float64Array; A: Float64Array; rank: number }> }> {
  const { keys } = checkMergeable(adapters, model);
  const dims = projectionDims(model);
  // One seeded stream for the whole merge, consumed module by module in a fixed order.
  const random = mulberry32(options.seed);
  for (const [layer, target] of keys) {
    const [inDim, outDim] = dims[target];
    const present = adapters.map((a, i) => ({ a, w: options.spec.weights[i]!, m: a.adapter.modules.get(moduleKey(layer, target)) })).filter((p) => p.m !== undefined);
    if (present.length === 0) {
      yield { layer, target, delta: new Float64Array(outDim * inDim), from: [], parts: [] };
      continue;
    }
    const deltas = present.map((p) => loraDelta(p.m!, p.a.adapter.config.rank, inDim, outDim, loraScale(p.a.adapter.config)));
    const trace: MergeTrace = { masks: [] };
    const delta = mergeTensors(deltas, { ...options.spec, weights: present.map((p) => p.w) }, random, trace);
    options.onTrace?.(moduleKey(layer, target), trace);
    // Without sparsification or sign election the merge is linear: its exact factors are the weighted, concatenated ones.
    const linear = options.spec.sparsify === undefined && options.spec.sign === undefined;
    const parts = linear
      ? present.map((p) => {
          const r = p.a.adapter.config.rank;
          const c = p.w * options.spec.lambda * loraScale(p.a.adapter.config);
          return { B: Float64Array.from(p.m!.B, (x) => x * c), A: Float64Array.from(p.m!.A), rank: r };
        })
      : [];
    yield { layer, target, delta, from: present.map((p) => p.a.name), parts };
  }
}

/** A delta-space merge re-factorised by truncated SVD into one PEFT adapter of `rank`. */
export function mergeToAdapter(adapters: ReadonlyArray<NamedAdapter>, model: ModelConfig, options: DeltaMergeOptions): MergeResult {
  const { keys, notes } = checkMergeable(adapters, model);
  const rank = options.rank ?? Math.max(...adapters.map((a) => a.adapter.config.rank));
  const dims = projectionDims(model);
  const modules = new Map<string, LoraModule>();
  const reports: Array<ModuleReport & { energy: number }> = [];
  for (const m of mergedDeltas(adapters, model, options)) {
    const [inDim, outDim] = dims[m.target];
    const key = moduleKey(m.layer, m.target);
    const energy = m.delta.reduce((sum, x) => sum + x * x, 0);
    let svd;
    if (m.parts.length > 0) {
      // Exact: the SVD of [B_1 .. B_K] [A_1; ..; A_K] through QR of the factors.
      const k = m.parts.reduce((n, p) => n + p.rank, 0);
      const b = new Float64Array(outDim * k);
      const a = new Float64Array(k * inDim);
      let col = 0;
      for (const p of m.parts) {
        for (let o = 0; o < outDim; o++) for (let r = 0; r < p.rank; r++) b[o * k + col + r] = p.B[o * p.rank + r]!;
        a.set(p.A, col * inDim);
        col += p.rank;
      }
      svd = productSvd(b, a, outDim, k, inDim, rank);
    } else {
      svd = truncatedSvd(m.delta, outDim, inDim, rank, { seed: options.seed });
    }
    // Pad to `rank` when the delta has lower rank (a zero update in the extra ranks).
    const B = new Float32Array(outDim * rank);
    const A = new Float32Array(rank * inDim);
    for (let o = 0; o < outDim; o++) for (let r = 0; r < svd.rank; r++) B[o * rank + r] = svd.us[o * svd.rank + r]!;
    A.set(toF32(svd.vt).subarray(0, svd.rank * inDim));
    modules.set(key, { A, B });
    reports.push({ module: key, from: m.from, energyKept: energy === 0 ? 1 : svd.energyKept, energy });
  }
  const config = mergedConfig(adapters, keys, rank);
  return {
    adapter: { config, modules },
    report: { method: options.method, space: "delta", rank, modules: reports.map(({ energy: _e, ...r }) => r), energyKept: weightedEnergy(reports), notes },
  };
}

/** Factor-space merging (PEFT's non-SVD combination types): A's and B's merged separately; adds cross terms. */
export function mergeFactors(adapters: ReadonlyArray<NamedAdapter>, model: ModelConfig, options: Omit<DeltaMergeOptions, "rank">): MergeResult {
  const trace: MergeTrace = { masks: [] };
  const { keys, notes } = checkMergeable(adapters, model);
  const ranks = new Set(adapters.map((a) => a.adapter.config.rank));
  if (ranks.size > 1) throw fail(`factor-space merging needs equal ranks (${adapters.map((a) => `${a.name}: ${a.adapter.config.rank}`).join(", ")})`, "merge in delta space (the default), which handles any ranks");
  const rank = [...ranks][0]!;
  const random = mulberry32(options.seed);
  const modules = new Map<string, LoraModule>();
  const dims = projectionDims(model);
  for (const [layer, target] of keys) {
    const key = moduleKey(layer, target);
    const [inDim, outDim] = dims[target];
    const present = adapters.map((a, i) => ({ a, w: options.spec.weights[i]! * loraScale(a.adapter.config), m: a.adapter.modules.get(key) })).filter((p) => p.m !== undefined);
    if (present.length === 0) {
      modules.set(key, { A: new Float32Array(rank * inDim), B: new Float32Array(outDim * rank) });
      continue;
    }
    // PEFT: sqrt(|w scale|) on both sides, the sign on A only.
    const wa = present.map((p) => Math.sqrt(Math.abs(p.w)) * (p.w >= 0 ? 1 : -1));
    const wb = present.map((p) => Math.sqrt(Math.abs(p.w)));
    const A = mergeTensors(present.map((p) => Float64Array.from(p.m!.A)), { ...options.spec, weights: wa, lambda: 1 }, random, trace);
    const B = mergeTensors(present.map((p) => Float64Array.from(p.m!.B)), { ...options.spec, weights: wb, lambda: 1 }, random, trace);
    options.onTrace?.(key, { masks: trace.masks.splice(0) });
    if (options.spec.lambda !== 1) for (let i = 0; i < B.length; i++) B[i]! *= options.spec.lambda;
    modules.set(key, { A: toF32(A), B: toF32(B) });
  }
  notes.push("factor space: A and B were merged separately, which adds cross terms B_i A_j; the delta-space merge is the faithful one");
  return { adapter: { config: mergedConfig(adapters, keys, rank), modules }, report: { method: options.method, space: "factors", rank, modules: keys.map(([l, t]) => ({ module: moduleKey(l, t), from: adapters.filter((a) => a.adapter.modules.has(moduleKey(l, t))).map((a) => a.name), energyKept: 1 })), energyKept: 1, notes } };
}

/** Concatenation: exact, rank = the sum of the ranks (PEFT's "cat"): A = [w_k scale_k A_k], B = [B_k]. */
export function concatenate(adapters: ReadonlyArray<NamedAdapter>, model: ModelConfig, weights: ReadonlyArray<number>): MergeResult {
  const { keys, notes } = checkMergeable(adapters, model);
  const rank = adapters.reduce((n, a) => n + a.adapter.config.rank, 0);
  const dims = projectionDims(model);
  const modules = new Map<string, LoraModule>();
  for (const [layer, target] of keys) {
    const key = moduleKey(layer, target);
    const [inDim, outDim] = dims[target];
    const A = new Float32Array(rank * inDim);
    const B = new Float32Array(outDim * rank);
    let at = 0;
    adapters.forEach((a, k) => {
      const r = a.adapter.config.rank;
      const m = a.adapter.modules.get(key);
      if (m !== undefined) {
        const c = weights[k]! * loraScale(a.adapter.config);
        for (let i = 0; i < r * inDim; i++) A[at * inDim + i] = m.A[i]! * c;
        for (let o = 0; o < outDim; o++) for (let j = 0; j < r; j++) B[o * rank + at + j] = m.B[o * r + j]!;
      }
      at += r;
    });
    modules.set(key, { A, B });
  }
  return {
    adapter: { config: mergedConfig(adapters, keys, rank), modules },
    report: { method: "cat", space: "concat", rank, modules: keys.map(([l, t]) => ({ module: moduleKey(l, t), from: adapters.filter((a) => a.adapter.modules.has(moduleKey(l, t))).map((a) => a.name), energyKept: 1 })), energyKept: 1, notes },
  };
}
