/**
 * Twin-Merging (Lu et al. 2024, "Twin-Merging: Dynamic Integration of Modular Expertise in Model
 * Merging"): the experts' updates are split into what they share - one merge of all of them
 * (TIES by default, as in the paper) - and what is exclusive to each, dW_k - shared, kept
 * compressed to a low rank by SVD. At inference a router weighs the exclusive parts per input:
 *
 *   dW(x) = shared + sum_k w_k(x) exclusive_k
 *
 * Here the router is the softmax of the input embedding's cosines to the experts' cluster
 * centroids over a temperature (the clusters the experts were trained on; the paper trains a
 * small router on validation data). Two products come out of it:
 * - `static`: fixed uniform router weights, one PEFT adapter (the static baseline of Table 2);
 * - the parts (shared, exclusive-<k>) with `routedAdapter(parts, weights)`, an exact adapter for
 *   one input's weights (rank = shared + K exclusive ranks), for per-input composition.
 */
import { loraScale, moduleKey, projectionDims, type LoraAdapter, type LoraModule, type ModelConfig } from "@bdc/lm-local";
import { truncatedSvd } from "./linalg.ts";
import { checkMergeable, concatenate, loraDelta, mergedDeltas, type NamedAdapter } from "./merge.ts";
import type { MergeSpec } from "./merge-core.ts";

export interface TwinParts {
  readonly shared: LoraAdapter;
  /** One per expert, in the order of the experts. */
  readonly exclusive: ReadonlyArray<LoraAdapter>;
  readonly experts: ReadonlyArray<string>;
  /** Energy of each exclusive part kept by its rank, per expert (weighted over modules). */
  readonly exclusiveEnergyKept: ReadonlyArray<number>;
  readonly sharedEnergyKept: number;
}

export interface TwinOptions {
  readonly shared: MergeSpec;
  readonly sharedRank: number;
  readonly exclusiveRank: number;
  readonly seed: number;
}

function factorAdapter(base: LoraAdapter, rank: number, modules: Map<string, LoraModule>): LoraAdapter {
  return { config: { ...base.config, rank, alpha: rank, rslora: false, dropout: 0 }, modules };
}

export function twinParts(experts: ReadonlyArray<NamedAdapter>, model: ModelConfig, options: TwinOptions): TwinParts {
  const { keys } = checkMergeable(experts, model);
  const dims = projectionDims(model);
  const shared = new Map<string, LoraModule>();
  const exclusive = experts.map(() => new Map<string, LoraModule>());
  const energy = { shared: [0, 0], exclusive: experts.map(() => [0, 0]) };
  const put = (into: Map<string, LoraModule>, key: string, delta: Float64Array, rows: number, cols: number, rank: number, acc: number[]) => {
    const s = truncatedSvd(delta, rows, cols, rank, { seed: options.seed });
    const B = new Float32Array(rows * rank);
    const A = new Float32Array(rank * cols);
    for (let o = 0; o < rows; o++) for (let r = 0; r < s.rank; r++) B[o * rank + r] = s.us[o * s.rank + r]!;
    A.set(Float32Array.from(s.vt));
    into.set(key, { A, B });
    const e = delta.reduce((sum, x) => sum + x * x, 0);
    acc[0]! += e * s.energyKept;
    acc[1]! += e;
  };
  for (const m of mergedDeltas(experts, model, { method: "twin-shared", spec: options.shared, seed: options.seed })) {
    const key = moduleKey(m.layer, m.target);
    const [inDim, outDim] = dims[m.target];
    put(shared, key, m.delta, outDim, inDim, options.sharedRank, energy.shared);
    experts.forEach((e, k) => {
      const own = e.adapter.modules.get(key);
      const excl = own === undefined ? m.delta.map((x) => -x) : loraDelta(own, e.adapter.config.rank, inDim, outDim, loraScale(e.adapter.config)).map((x, i) => x - m.delta[i]!);
      put(exclusive[k]!, key, excl, outDim, inDim, options.exclusiveRank, energy.exclusive[k]!);
    });
  }
  const template: LoraAdapter = { config: { ...experts[0]!.adapter.config, targets: [...new Set(keys.map(([, t]) => t))], layers: [...new Set(keys.map(([l]) => l))] }, modules: new Map() };
  const ratio = ([kept, total]: number[]) => (total === 0 ? 1 : kept! / total!);
  return {
    shared: factorAdapter(template, options.sharedRank, shared),
    exclusive: exclusive.map((mods) => factorAdapter(template, options.exclusiveRank, mods)),
    experts: experts.map((e) => e.name),
    sharedEnergyKept: ratio(energy.shared),
    exclusiveEnergyKept: energy.exclusive.map(ratio),
  };
}

/** The exact adapter of shared + sum_k weights[k] exclusive_k (concatenated factors). */
export function routedAdapter(parts: TwinParts, model: ModelConfig, weights: ReadonlyArray<number>): LoraAdapter {
  const named = [{ name: "shared", adapter: parts.shared }, ...parts.exclusive.map((adapter, k) => ({ name: parts.experts[k]!, adapter }))];
  return concatenate(named, model, [1, ...weights]).adapter;
}

/** The router: softmax over the experts of cos(embedding, centroid_k) / temperature. */
export function routerWeights(embedding: ArrayLike<number>, centroids: ReadonlyArray<ArrayLike<number>>, temperature: number): number[] {
  const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0)) || 1;
  const ne = norm(embedding);
  const logits = centroids.map((c) => {
    let dot = 0;
    for (let i = 0; i < c.length; i++) dot += c[i]! * embedding[i]!;
    return dot / (ne * norm(c)) / temperature;
  });
  const max = Math.max(...logits);
  const exps = logits.map((l) => Math.exp(l - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}
