/**
 * The DisenLoRA hypernetwork (paper section 4.2.3; the authors' HyperNet.py): for every adapted
 * layer and target projection, a small MLP reads the input's embedding e and its cosines to the
 * K cluster centroids and gives K*r gates over the experts' ranks:
 *
 *   f = e ++ [cos(e, mu_1) .. cos(e, mu_K)]
 *   G = softmax(W2 relu(W1 f + b1) + b2)        W1 [hidden, d+K], W2 [K*r, hidden]
 *
 * `softmax: all` normalises over all K*r slots (the authors' choice); `per-rank` normalises each
 * rank j across the experts (the K slots k*r+j). Parameters use torch.nn.Linear's layout and
 * initialisation. Forward and backward are plain loops in float64 over float32 parameters: one
 * input gives a few thousand multiply-adds per module, far below the language model's cost, and
 * the gradient of the gates comes from the model graph (train-hypernet.ts chains it in here).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import { mixSeed, mulberry32, moduleKey, openSafetensorsFile, safetensorsBytes, writeFileDurably, type GateScale, type LoraTarget, type TensorToWrite } from "@bdc/lm-local";

export const SOFTMAX_MODES = ["all", "per-rank"] as const;
export type SoftmaxMode = (typeof SOFTMAX_MODES)[number];

export const HYPERNET_FILES = { config: "hypernet_config.json", weights: "hypernet.safetensors" } as const;

/** Where step/train-hypernet writes the hypernetwork in its step directory (composer/hypernet's from_step reads it there). */
export const HYPERNET_DIR = "hypernet";

export interface HypernetConfig {
  /** Encoder model and dimension the embeddings (and centroids) come from. */
  readonly encoder: { readonly model: string; readonly dimension: number };
  /** Expert names, in gate order (k = 0..K-1). */
  readonly experts: ReadonlyArray<string>;
  /** Each expert's rank r (gates per module: K*r). */
  readonly rank: number;
  readonly hidden: number;
  readonly layers: ReadonlyArray<number>;
  readonly targets: ReadonlyArray<LoraTarget>;
  readonly softmax: SoftmaxMode;
  readonly gateScale: GateScale;
}

/** The authors' router (reference-notes.md, Stage 3). */
export const HYPERNET_DEFAULTS = { hidden: 64, softmax: "all" as SoftmaxMode, gateScale: "mean" as GateScale } as const;

export interface ModuleParams {
  readonly w1: Float32Array;
  readonly b1: Float32Array;
  readonly w2: Float32Array;
  readonly b2: Float32Array;
}

/** What the backward pass needs from one forward pass. */
export interface HypernetTrace {
  readonly features: Float64Array;
  readonly perModule: ReadonlyMap<string, { readonly pre: Float64Array; readonly gates: Float64Array }>;
}

export const paramNames = (key: string) => ({ w1: `${key}.fc1.weight`, b1: `${key}.fc1.bias`, w2: `${key}.fc2.weight`, b2: `${key}.fc2.bias` });

export class Hypernetwork {
  /** Every parameter by name (paramNames), for the optimizer and checkpoints; the module views share these arrays. */
  readonly params: Map<string, Float32Array>;
  readonly K: number;
  readonly inputDim: number;

  constructor(
    readonly config: HypernetConfig,
    /** [K, d] unit rows. */
    readonly centroids: Float32Array,
    params: ReadonlyMap<string, Float32Array>,
  ) {
    this.K = config.experts.length;
    this.inputDim = config.encoder.dimension + this.K;
    if (centroids.length !== this.K * config.encoder.dimension) {
      throw new BdcError({ code: "BDC_HYPERNET_CONFIG", message: `${centroids.length / config.encoder.dimension} centroids for ${this.K} experts`, hint: "cluster into as many clusters as there are experts (one expert per cluster)" });
    }
    this.params = new Map(params);
    for (const key of this.moduleKeys()) {
      const n = paramNames(key);
      const want: Record<string, number> = { [n.w1]: config.hidden * this.inputDim, [n.b1]: config.hidden, [n.w2]: this.R * config.hidden, [n.b2]: this.R };
      for (const [name, size] of Object.entries(want)) {
        if (this.params.get(name)?.length !== size) {
          throw new BdcError({ code: "BDC_HYPERNET_CONFIG", message: `hypernetwork parameter ${name} has ${this.params.get(name)?.length ?? "no"} values; this config needs ${size}`, hint: "the weights and hypernet_config.json come from different runs; train the hypernetwork again" });
        }
      }
    }
  }

  /** Gates per module: K*r. */
  get R(): number {
    return this.K * this.config.rank;
  }

  moduleKeys(): string[] {
    return this.config.layers.flatMap((l) => this.config.targets.map((t) => moduleKey(l, t)));
  }

  module(key: string): ModuleParams {
    const n = paramNames(key);
    return { w1: this.params.get(n.w1)!, b1: this.params.get(n.b1)!, w2: this.params.get(n.w2)!, b2: this.params.get(n.b2)! };
  }

  /** torch.nn.Linear's default initialisation (kaiming_uniform_(a=sqrt(5)): U(+-1/sqrt(fan_in)) for weight and bias), seeded. */
  static init(config: HypernetConfig, centroids: Float32Array, seed: number): Hypernetwork {
    const K = config.experts.length;
    const inputDim = config.encoder.dimension + K;
    const R = K * config.rank;
    const params = new Map<string, Float32Array>();
    config.layers.forEach((layer, li) =>
      config.targets.forEach((target, ti) => {
        const rand = mulberry32(mixSeed(seed, 0x4e7, li, ti));
        const uniform = (size: number, fanIn: number) => Float32Array.from({ length: size }, () => (rand() * 2 - 1) / Math.sqrt(fanIn));
        const n = paramNames(moduleKey(layer, target));
        params.set(n.w1, uniform(config.hidden * inputDim, inputDim));
        params.set(n.b1, uniform(config.hidden, inputDim));
        params.set(n.w2, uniform(R * config.hidden, config.hidden));
        params.set(n.b2, uniform(R, config.hidden));
      }),
    );
    return new Hypernetwork(config, centroids, params);
  }

  /** e ++ cos(e, mu_k). A zero embedding has cosine 0 to every centroid. */
  features(embedding: ArrayLike<number>): Float64Array {
    const d = this.config.encoder.dimension;
    if (embedding.length !== d) {
      throw new BdcError({ code: "BDC_CLUSTER_DIMENSION", message: `the embedding is ${embedding.length}-d; this hypernetwork reads ${d}-d embeddings of ${this.config.encoder.model}`, hint: "use the encoder the hypernetwork was trained with" });
    }
    const f = new Float64Array(d + this.K);
    let norm = 0;
    for (let i = 0; i < d; i++) {
      f[i] = embedding[i]!;
      norm += f[i]! * f[i]!;
    }
    norm = Math.sqrt(norm);
    for (let k = 0; k < this.K; k++) {
      let dot = 0;
      let cn = 0;
      for (let i = 0; i < d; i++) {
        const c = this.centroids[k * d + i]!;
        dot += c * f[i]!;
        cn += c * c;
      }
      f[d + k] = norm === 0 || cn === 0 ? 0 : dot / (norm * Math.sqrt(cn));
    }
    return f;
  }

  forward(embedding: ArrayLike<number>): { gates: Map<string, Float32Array>; trace: HypernetTrace } {
    const features = this.features(embedding);
    const { hidden } = this.config;
    const n = this.inputDim;
    const R = this.R;
    const gates = new Map<string, Float32Array>();
    const perModule = new Map<string, { pre: Float64Array; gates: Float64Array }>();
    for (const key of this.moduleKeys()) {
      const p = this.module(key);
      const pre = new Float64Array(hidden);
      for (let h = 0; h < hidden; h++) {
        let s = p.b1[h]!;
        for (let i = 0; i < n; i++) s += p.w1[h * n + i]! * features[i]!;
        pre[h] = s;
      }
      const logits = new Float64Array(R);
      for (let j = 0; j < R; j++) {
        let s = p.b2[j]!;
        for (let h = 0; h < hidden; h++) if (pre[h]! > 0) s += p.w2[j * hidden + h]! * pre[h]!;
        logits[j] = s;
      }
      const g = this.softmax(logits);
      perModule.set(key, { pre, gates: g });
      gates.set(key, Float32Array.from(g));
    }
    return { gates, trace: { features, perModule } };
  }

  /** Gradients of every parameter given dL/dG per module (the model graph's gate gradients). */
  backward(trace: HypernetTrace, gateGrads: ReadonlyMap<string, ArrayLike<number>>): Map<string, Float32Array> {
    const { hidden } = this.config;
    const n = this.inputDim;
    const R = this.R;
    const grads = new Map<string, Float32Array>();
    for (const key of this.moduleKeys()) {
      const p = this.module(key);
      const { pre, gates } = trace.perModule.get(key)!;
      const dG = gateGrads.get(key);
      if (dG === undefined || dG.length !== R) throw new Error(`hypernetwork backward: no gate gradient of ${R} values for ${key}`);
      const dz = this.softmaxBackward(gates, dG);
      const names = paramNames(key);
      const dw2 = new Float32Array(R * hidden);
      const dh = new Float64Array(hidden);
      for (let j = 0; j < R; j++) {
        for (let h = 0; h < hidden; h++) {
          if (pre[h]! <= 0) continue;
          dw2[j * hidden + h] = dz[j]! * pre[h]!;
          dh[h]! += p.w2[j * hidden + h]! * dz[j]!;
        }
      }
      const dw1 = new Float32Array(hidden * n);
      for (let h = 0; h < hidden; h++) {
        if (pre[h]! <= 0) continue;
        for (let i = 0; i < n; i++) dw1[h * n + i] = dh[h]! * trace.features[i]!;
      }
      grads.set(names.w1, dw1);
      grads.set(names.b1, Float32Array.from(dh, (v, h) => (pre[h]! > 0 ? v : 0)));
      grads.set(names.w2, dw2);
      grads.set(names.b2, Float32Array.from(dz));
    }
    return grads;
  }

  /** The softmax groups: all R slots, or per rank j the K slots k*r+j. */
  private groups(): number[][] {
    const r = this.config.rank;
    if (this.config.softmax === "all") return [Array.from({ length: this.R }, (_, i) => i)];
    return Array.from({ length: r }, (_, j) => Array.from({ length: this.K }, (_, k) => k * r + j));
  }

  private softmax(logits: Float64Array): Float64Array {
    const out = new Float64Array(logits.length);
    for (const group of this.groups()) {
      let max = -Infinity;
      for (const i of group) max = Math.max(max, logits[i]!);
      let sum = 0;
      for (const i of group) sum += out[i] = Math.exp(logits[i]! - max);
      for (const i of group) out[i]! /= sum;
    }
    return out;
  }

  private softmaxBackward(gates: Float64Array, dG: ArrayLike<number>): Float64Array {
    const dz = new Float64Array(gates.length);
    for (const group of this.groups()) {
      let dot = 0;
      for (const i of group) dot += gates[i]! * dG[i]!;
      for (const i of group) dz[i] = gates[i]! * (dG[i]! - dot);
    }
    return dz;
  }

  /** Total gate mass per module: 1 (softmax over all slots) or r (one softmax per rank). */
  get gateMass(): number {
    return this.config.softmax === "all" ? 1 : this.config.rank;
  }
}

/** The hypernetwork's files (weights with the centroids, then the config), for a folder or a checkpoint. */
export function hypernetFiles(net: Hypernetwork, extra: Record<string, unknown> = {}): Array<[string, Uint8Array | string]> {
  const tensors: TensorToWrite[] = [...net.params].map(([name, data]) => ({ name, dtype: "F32", shape: [data.length], data }));
  tensors.push({ name: "centroids", dtype: "F32", shape: [net.K, net.config.encoder.dimension], data: net.centroids });
  const c = net.config;
  const json = { format: "bdc-hypernet", version: 1, encoder: c.encoder, experts: c.experts, rank: c.rank, hidden: c.hidden, layers: c.layers, targets: c.targets, softmax: c.softmax, gate_scale: c.gateScale, ...extra };
  return [
    [HYPERNET_FILES.weights, safetensorsBytes(tensors, { format: "bdc-hypernet" })],
    [HYPERNET_FILES.config, `${JSON.stringify(json, null, 2)}\n`],
  ];
}

/** Writes the hypernetwork as a folder; each file replaced whole (a crash leaves the old file or the new one), the config last. */
export function writeHypernet(dir: string, net: Hypernetwork, extra: Record<string, unknown> = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, data] of hypernetFiles(net, extra)) writeFileDurably(path.join(dir, name), data);
}

const badFolder = (message: string, hint = "give the folder step/train-hypernet wrote (steps/<step>/hypernet in its run)") => new BdcError({ code: "BDC_HYPERNET_INVALID", message, hint });

export function readHypernet(dir: string): Hypernetwork & { readonly extra: Record<string, unknown> } {
  const configFile = path.join(dir, HYPERNET_FILES.config);
  const weightsFile = path.join(dir, HYPERNET_FILES.weights);
  for (const f of [configFile, weightsFile]) if (!fs.existsSync(f)) throw badFolder(`${f} does not exist`);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(configFile, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw badFolder(`${configFile} is not valid JSON: ${(e as Error).message}`);
  }
  if (raw["format"] !== "bdc-hypernet") throw badFolder(`${configFile} is not a hypernetwork config (format: ${JSON.stringify(raw["format"])})`);
  const config: HypernetConfig = {
    encoder: raw["encoder"] as HypernetConfig["encoder"],
    experts: raw["experts"] as string[],
    rank: raw["rank"] as number,
    hidden: raw["hidden"] as number,
    layers: raw["layers"] as number[],
    targets: raw["targets"] as LoraTarget[],
    softmax: raw["softmax"] as SoftmaxMode,
    gateScale: raw["gate_scale"] as GateScale,
  };
  const weights = openSafetensorsFile(weightsFile);
  try {
    const params = new Map<string, Float32Array>();
    for (const name of weights.names()) if (name !== "centroids") params.set(name, weights.readFloat32(name));
    if (!weights.has("centroids")) throw badFolder(`${weightsFile} has no "centroids" tensor`);
    const { format: _f, version: _v, encoder: _e, experts: _x, rank: _r, hidden: _h, layers: _l, targets: _t, softmax: _s, gate_scale: _g, ...extra } = raw;
    return Object.assign(new Hypernetwork(config, weights.readFloat32("centroids"), params), { extra });
  } finally {
    weights.close();
  }
}
