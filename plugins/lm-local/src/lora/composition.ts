/**
 * Input-aware composition of LoRA experts (DisenLoRA, the paper's eqs. 14-18): the K experts'
 * factors are stacked along the rank, A_cat = [A_1; ...; A_K] [K*r, in] and
 * B_cat = [B_1 ... B_K] [out, K*r], and per input a gate vector G (K*r values per adapted
 * module) weighs the ranks:
 *
 *   dW(x) = scale * B_cat diag(G) A_cat = scale * sum_k B_k diag(G_k) A_k
 *
 * The graph applies this as ((x A_cat^T) * G) B_cat^T (lora-slots.ts), so nothing of size
 * [out, in] is formed per input. `composedAdapter` forms the same update as one ordinary rank-K*r
 * LoRA (A rows scaled by the gates): what the composition tests compare against, and what
 * `bdc hypernet export` writes for PEFT or vLLM.
 *
 * The scale: the authors' released code adds B_cat diag(G) A_cat with no LoRA scale and gates
 * that sum to 1 over all K*r slots ("authors"), so uniform gates give 1/(scale_e * r) of the
 * experts' average update (1/16 at r = 8, alpha = 16). "mean" multiplies by the experts' LoRA
 * scale times r: uniform gates then give exactly the linear (average) merge, and gates of 1/r
 * on one expert's ranks give exactly that expert.
 */
import { BdcError } from "@bdc/core";
import type { ModelConfig } from "../checkpoint/config.ts";
import { checkLoraAdapter, loraScale, moduleKey, projectionDims, type LoraAdapter, type LoraConfig, type LoraModule, type LoraTarget } from "./adapter.ts";

export const GATE_SCALES = ["mean", "authors"] as const;
export type GateScale = (typeof GATE_SCALES)[number];

export interface NamedExpert {
  readonly name: string;
  readonly adapter: LoraAdapter;
}

/** K experts stacked along the rank (A_cat, B_cat per module). */
export interface ExpertStack {
  readonly experts: ReadonlyArray<string>;
  /** The rank of each expert (all equal). */
  readonly rank: number;
  /** The experts' LoRA scale (alpha/r, or alpha/sqrt(r) with rsLoRA; all equal). */
  readonly expertScale: number;
  readonly targets: ReadonlyArray<LoraTarget>;
  readonly layers: ReadonlyArray<number>;
  readonly baseModel: string | undefined;
  /** A [K*r, in], B [out, K*r] per module key. */
  readonly modules: ReadonlyMap<string, LoraModule>;
}

/** Per-input gates: K*r values per module key, in the stack's (expert, rank) order. */
export interface Composition {
  readonly stack: ExpertStack;
  readonly gates: ReadonlyMap<string, Float32Array>;
  /** Multiplies the gated update (`compositionScale`). */
  readonly scale: number;
}

export const isComposition = (x: LoraAdapter | Composition): x is Composition => "stack" in x;

const mismatch = (message: string, hint: string) => new BdcError({ code: "BDC_EXPERTS_MISMATCH", message, hint });

/**
 * Stacks experts trained on one base with one rank, scale, targets and layers; anything else is
 * an error naming the first expert that differs (composing them would be meaningless).
 */
export function stackExperts(experts: ReadonlyArray<NamedExpert>, model: ModelConfig): ExpertStack {
  if (experts.length === 0) throw mismatch("no experts to compose", "give the expert adapters (one per cluster)");
  const first = experts[0]!;
  const c0 = first.adapter.config;
  for (const e of experts) {
    checkLoraAdapter(e.adapter, model, e.name);
    const c = e.adapter.config;
    const differs: string[] = [];
    if (c.rank !== c0.rank) differs.push(`rank ${c.rank} vs ${c0.rank}`);
    if (loraScale(c) !== loraScale(c0)) differs.push(`LoRA scale ${loraScale(c)} vs ${loraScale(c0)} (alpha ${c.alpha}${c.rslora ? ", rsLoRA" : ""} vs ${c0.alpha}${c0.rslora ? ", rsLoRA" : ""})`);
    if (c.targets.join() !== c0.targets.join()) differs.push(`targets ${c.targets.join(",")} vs ${c0.targets.join(",")}`);
    if (c.layers.join() !== c0.layers.join()) differs.push(`layers ${c.layers.join(",")} vs ${c0.layers.join(",")}`);
    if (c.baseModel !== undefined && c0.baseModel !== undefined && c.baseModel !== c0.baseModel) differs.push(`base model ${c.baseModel} vs ${c0.baseModel}`);
    if (differs.length > 0) {
      throw mismatch(`expert ${e.name} does not match expert ${first.name}: ${differs.join("; ")}`, "train every expert on the same base model with the same rank, alpha, targets and layers (the experts workflow does)");
    }
  }
  const dims = projectionDims(model);
  const r = c0.rank;
  const K = experts.length;
  const modules = new Map<string, LoraModule>();
  for (const layer of c0.layers) {
    for (const target of c0.targets) {
      const key = moduleKey(layer, target);
      const [inDim, outDim] = dims[target];
      const A = new Float32Array(K * r * inDim);
      const B = new Float32Array(outDim * K * r);
      experts.forEach((e, k) => {
        const m = e.adapter.modules.get(key)!;
        A.set(m.A, k * r * inDim);
        for (let o = 0; o < outDim; o++) B.set(m.B.subarray(o * r, (o + 1) * r), o * K * r + k * r);
      });
      modules.set(key, { A, B });
    }
  }
  return { experts: experts.map((e) => e.name), rank: r, expertScale: loraScale(c0), targets: c0.targets, layers: c0.layers, baseModel: c0.baseModel, modules };
}

/**
 * The factor on the gated update: 1 as the authors released it, or the experts' scale x r over
 * the gates' total mass per module (`gateMass`: 1 for one softmax over all K*r slots, r for one
 * softmax per rank across the experts), so that the mean-preserving rule holds for both.
 */
export function compositionScale(stack: Pick<ExpertStack, "expertScale" | "rank">, gateScale: GateScale, gateMass = 1): number {
  return gateScale === "authors" ? 1 : (stack.expertScale * stack.rank) / gateMass;
}

/** Gates of 1/(K*r) on every slot of every module. */
export function uniformGates(stack: ExpertStack): Map<string, Float32Array> {
  const R = stack.experts.length * stack.rank;
  return new Map([...stack.modules.keys()].map((k) => [k, new Float32Array(R).fill(1 / R)]));
}

/** The composition as one ordinary LoRA of rank K*r (A rows scaled by the gates; alpha chosen so that PEFT's alpha/r is `scale`). */
export function composedAdapter(composition: Composition): LoraAdapter {
  const { stack, gates, scale } = composition;
  const R = stack.experts.length * stack.rank;
  const modules = new Map<string, LoraModule>();
  for (const [key, m] of stack.modules) {
    const g = gates.get(key);
    if (g === undefined || g.length !== R) throw new Error(`composedAdapter: gates of ${key} must have ${R} values`);
    const inDim = m.A.length / R;
    const A = new Float32Array(m.A.length);
    for (let i = 0; i < R; i++) for (let c = 0; c < inDim; c++) A[i * inDim + c] = m.A[i * inDim + c]! * g[i]!;
    modules.set(key, { A, B: m.B });
  }
  const config: LoraConfig = { rank: R, alpha: scale * R, rslora: false, dropout: 0, targets: stack.targets, layers: stack.layers, baseModel: stack.baseModel };
  return { config, modules };
}

/** The share of the gate mass each expert received, averaged over the modules (sums to 1). */
export function expertMass(composition: Pick<Composition, "stack" | "gates">): number[] {
  const { stack, gates } = composition;
  const K = stack.experts.length;
  const mass = new Array<number>(K).fill(0);
  for (const g of gates.values()) {
    const total = g.reduce((s, x) => s + x, 0) || 1;
    for (let k = 0; k < K; k++) for (let j = 0; j < stack.rank; j++) mass[k]! += g[k * stack.rank + j]! / total / gates.size;
  }
  return mass;
}
