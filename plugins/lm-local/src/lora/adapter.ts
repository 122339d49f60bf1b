/**
 * The one LoRA adapter type of the project. Its tensors are in PEFT's layout and meaning
 * everywhere: `A` is lora_A.weight [r, in], `B` is lora_B.weight [out, r], and an adapted
 * projection computes W x + scale * B (A x), scale = alpha / r (alpha / sqrt(r) with rsLoRA).
 * The graph's LoRA slots take these arrays as they are, the reference forward reads them, the
 * trainer updates them in place, and PEFT folders are read into and written from them
 * (peft.ts), so nothing converts between layouts.
 */
import { BdcError } from "@bdc/core";
import type { ModelConfig } from "../checkpoint/config.ts";
import { mulberry32 } from "../checkpoint/random.ts";

export const LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export interface LoraConfig {
  readonly rank: number;
  readonly alpha: number;
  /** Rank-stabilised scaling: alpha / sqrt(r) instead of alpha / r. */
  readonly rslora: boolean;
  /** Dropout on the input of the LoRA branch during training (PEFT's lora_dropout). */
  readonly dropout: number;
  /** Adapted projections, in LORA_TARGETS order. */
  readonly targets: ReadonlyArray<LoraTarget>;
  /** Adapted decoder layers, ascending. */
  readonly layers: ReadonlyArray<number>;
  /** What PEFT records as base_model_name_or_path. */
  readonly baseModel?: string | undefined;
}

export interface LoraModule {
  /** lora_A.weight, [rank, in] row-major. */
  readonly A: Float32Array;
  /** lora_B.weight, [out, rank] row-major. */
  readonly B: Float32Array;
}

export interface LoraAdapter {
  readonly config: LoraConfig;
  /** Every (layer, target) of the config, by moduleKey. */
  readonly modules: ReadonlyMap<string, LoraModule>;
}

export const moduleKey = (layer: number, target: LoraTarget): string => `${layer}.${target}`;

export function loraScale(config: Pick<LoraConfig, "rank" | "alpha" | "rslora">): number {
  return config.rslora ? config.alpha / Math.sqrt(config.rank) : config.alpha / config.rank;
}

/** [in, out] of each projection of a model. */
export function projectionDims(c: ModelConfig): Readonly<Record<LoraTarget, readonly [number, number]>> {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  return { q_proj: [c.hiddenSize, q], k_proj: [c.hiddenSize, kv], v_proj: [c.hiddenSize, kv], o_proj: [q, c.hiddenSize], gate_proj: [c.hiddenSize, c.intermediateSize], up_proj: [c.hiddenSize, c.intermediateSize], down_proj: [c.intermediateSize, c.hiddenSize] };
}

const invalid = (message: string, hint?: string) => new BdcError({ code: "BDC_LORA_CONFIG", message, ...(hint === undefined ? {} : { hint }) });

/** Checks a config against a model: known targets, layers in range, positive rank. */
export function checkLoraConfig(config: LoraConfig, model: ModelConfig): void {
  if (!Number.isInteger(config.rank) || config.rank < 1) throw invalid(`LoRA rank ${config.rank} is not a positive integer`);
  if (!Number.isFinite(config.alpha) || config.alpha <= 0) throw invalid(`lora_alpha ${config.alpha} is not a positive number`);
  if (!(config.dropout >= 0 && config.dropout < 1)) throw invalid(`LoRA dropout ${config.dropout} is not in [0, 1)`);
  if (config.targets.length === 0) throw invalid("no target modules", `choose from ${LORA_TARGETS.join(", ")}`);
  for (const t of config.targets) {
    if (!LORA_TARGETS.includes(t)) throw invalid(`target module "${t}" is not a projection of ${model.architecture}`, `choose from ${LORA_TARGETS.join(", ")}`);
  }
  if (config.layers.length === 0) throw invalid("no layers to adapt");
  for (const l of config.layers) {
    if (!Number.isInteger(l) || l < 0 || l >= model.numLayers) throw invalid(`layer ${l} does not exist: ${model.configFile} has layers 0-${model.numLayers - 1}`);
  }
}

/** A config with targets in canonical order and layers sorted and unique (default: every layer). */
export function normalizeLoraConfig(config: Omit<LoraConfig, "layers"> & { readonly layers?: ReadonlyArray<number> | undefined }, model: ModelConfig): LoraConfig {
  const normalized: LoraConfig = {
    ...config,
    targets: LORA_TARGETS.filter((t) => config.targets.includes(t)),
    layers: config.layers === undefined ? Array.from({ length: model.numLayers }, (_, i) => i) : [...new Set(config.layers)].sort((a, b) => a - b),
  };
  const unknown = config.targets.filter((t) => !LORA_TARGETS.includes(t));
  if (unknown.length > 0) throw invalid(`target module "${unknown[0]}" is not a projection of ${model.architecture}`, `choose from ${LORA_TARGETS.join(", ")}`);
  checkLoraConfig(normalized, model);
  return normalized;
}

/**
 * A new adapter initialised as PEFT does (init_lora_weights=True): A from
 * kaiming_uniform_(a=sqrt(5)), i.e. uniform in +-1/sqrt(in), and B zeros, so training starts
 * from the base model. Seeded: the same seed gives the same adapter.
 */
export function initLoraAdapter(model: ModelConfig, config: LoraConfig, seed: number): LoraAdapter {
  checkLoraConfig(config, model);
  const dims = projectionDims(model);
  const uniform = mulberry32(seed);
  const modules = new Map<string, LoraModule>();
  for (const layer of config.layers) {
    for (const target of config.targets) {
      const [inDim, outDim] = dims[target];
      const bound = 1 / Math.sqrt(inDim);
      const A = new Float32Array(config.rank * inDim);
      for (let i = 0; i < A.length; i++) A[i] = (uniform() * 2 - 1) * bound;
      modules.set(moduleKey(layer, target), { A, B: new Float32Array(outDim * config.rank) });
    }
  }
  return { config, modules };
}

/** Throws unless every module of the config is present with the model's shapes. */
export function checkLoraAdapter(adapter: LoraAdapter, model: ModelConfig, source = "the adapter"): void {
  checkLoraConfig(adapter.config, model);
  const dims = projectionDims(model);
  const r = adapter.config.rank;
  for (const layer of adapter.config.layers) {
    for (const target of adapter.config.targets) {
      const m = adapter.modules.get(moduleKey(layer, target));
      if (m === undefined) throw invalid(`${source}: layer ${layer} ${target} has no LoRA tensors`, "lora_A and lora_B must both be present for every adapted layer and module");
      const [inDim, outDim] = dims[target];
      if (m.A.length !== r * inDim || m.B.length !== outDim * r) {
        throw new BdcError({
          code: "BDC_ADAPTER_INVALID",
          message: `${source}: layer ${layer} ${target}: lora_A has ${m.A.length} values and lora_B ${m.B.length}; rank ${r} on this model's ${inDim} -> ${outDim} projection needs [${r}, ${inDim}] and [${outDim}, ${r}]`,
          hint: "the adapter was trained for another model (or another rank)",
        });
      }
    }
  }
  if (adapter.modules.size !== adapter.config.layers.length * adapter.config.targets.length) throw invalid(`${source}: ${adapter.modules.size} modules, but its config names ${adapter.config.layers.length} layers x ${adapter.config.targets.length} targets`);
}

/** A deep copy (the trainer updates modules in place). */
export function cloneLoraAdapter(adapter: LoraAdapter): LoraAdapter {
  return { config: adapter.config, modules: new Map([...adapter.modules].map(([k, m]) => [k, { A: m.A.slice(), B: m.B.slice() }])) };
}
