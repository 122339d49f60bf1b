/**
 * An independent forward pass of the Llama family in plain TypeScript: loops over Float32Arrays,
 * float64 sums, no graph code, written from transformers' modeling_llama / modeling_qwen2 /
 * modeling_mistral. It is slow by design (a few tokens of a tiny model); it exists so that tests
 * can check the ONNX graph against something written separately.
 *
 * Where transformers rounds to float32 (norm outputs, RoPE tables, projections, softmax), this
 * rounds with Math.fround, so the two agree to float32 accumulation-order noise. With
 * `precision: "float64"` it rounds nowhere: finite differences through it are then exact enough
 * to check gradients.
 */
import { BdcError } from "@bdc/core";
import { loraScale, moduleKey, type LoraAdapter, type LoraModule, type LoraTarget } from "../lora/adapter.ts";
import { ropeInverseFrequencies, type ModelConfig } from "./config.ts";
import type { CheckpointWeights } from "./safetensors.ts";

export interface ReferenceForwardOptions {
  /** Each adapted projection becomes `W x + scale * B (A x)`. */
  readonly lora?: LoraAdapter | undefined;
  /**
   * "float32" (default) rounds where transformers rounds; "float64" rounds nowhere, for
   * finite-difference checks of gradients (weights are float32 either way).
   */
  readonly precision?: "float32" | "float64" | undefined;
}

export type Vector = Float32Array | Float64Array;

export interface ReferenceForwardResult {
  /** Per position, vocabSize logits. */
  readonly logits: Vector[];
  /** Per position, the hidden state after the final norm (what lm_head reads). */
  readonly hidden: Vector[];
}

function shapeError(weights: CheckpointWeights, name: string, got: readonly number[], want: readonly number[]): BdcError {
  return new BdcError({
    code: "BDC_MODEL_TENSOR_SHAPE",
    message: `${weights.source}: tensor "${name}" has shape [${got.join(", ")}]; config.json implies [${want.join(", ")}]`,
    hint: "the weights and config.json come from different checkpoints; download the checkpoint again",
  });
}

function load(weights: CheckpointWeights, name: string, shape: readonly number[]): Float32Array {
  const info = weights.info(name);
  if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) throw shapeError(weights, name, info.shape, shape);
  return weights.readFloat32(name);
}

function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

interface Projection {
  readonly w: Float32Array;
  readonly b: Float32Array | undefined;
  readonly out: number;
  readonly inp: number;
  readonly lora: LoraModule | undefined;
}

/** The arithmetic of one precision: `fr` rounds a result (Math.fround, or nothing), `alloc` makes a vector. */
function kernels(precision: "float32" | "float64") {
  const fr = precision === "float32" ? Math.fround : (x: number) => x;
  const alloc = (n: number): Vector => (precision === "float32" ? new Float32Array(n) : new Float64Array(n));

  /** y = W x (+ b), W row-major [out, in]. */
  const linear = (x: Vector, w: ArrayLike<number>, out: number, bias?: Float32Array): Vector => {
    const inp = x.length;
    const y = alloc(out);
    for (let o = 0; o < out; o++) {
      let s = 0;
      const row = o * inp;
      for (let i = 0; i < inp; i++) s += w[row + i]! * x[i]!;
      y[o] = fr(fr(s) + (bias === undefined ? 0 : bias[o]!));
    }
    return y;
  };

  /** HF RMSNorm: x * rsqrt(mean(x^2) + eps) in float32, then * weight. */
  const rmsNorm = (x: Vector, weight: Float32Array, eps: number): Vector => {
    let sq = 0;
    for (let i = 0; i < x.length; i++) sq += x[i]! * x[i]!;
    const variance = fr(sq / x.length);
    const inv = fr(1 / Math.sqrt(fr(variance + eps)));
    const y = alloc(x.length);
    for (let i = 0; i < x.length; i++) y[i] = fr(weight[i]! * fr(x[i]! * inv));
    return y;
  };

  /** Applies rotate_half RoPE in place to each head of `x` ([heads * headDim]). */
  const applyRope = (x: Vector, heads: number, headDim: number, cos: Vector, sin: Vector): void => {
    const half = headDim / 2;
    for (let h = 0; h < heads; h++) {
      const base = h * headDim;
      for (let j = 0; j < half; j++) {
        const a = x[base + j]!;
        const b = x[base + j + half]!;
        // q * cos + rotate_half(q) * sin, rotate_half(q) = cat(-q2, q1); cos/sin repeat over both halves.
        x[base + j] = fr(fr(a * cos[j]!) - fr(b * sin[j]!));
        x[base + j + half] = fr(fr(b * cos[j]!) + fr(a * sin[j]!));
      }
    }
  };

  const project = (p: Projection, x: Vector, scale: number, rank: number): Vector => {
    const y = linear(x, p.w, p.out, p.b);
    if (p.lora === undefined) return y;
    const { A, B } = p.lora;
    const ax = linear(x, A, rank);
    for (let o = 0; o < p.out; o++) {
      let s = 0;
      for (let r = 0; r < rank; r++) s += B[o * rank + r]! * ax[r]!;
      y[o] = fr(y[o]! + fr(scale * s));
    }
    return y;
  };
  return { fr, alloc, linear, rmsNorm, applyRope, project };
}

/**
 * Runs the model on `tokenIds` (positions 0..n-1, causal) and returns every position's logits
 * and final hidden state. Reads the weights it needs from `weights` on every call.
 */
export function referenceForward(weights: CheckpointWeights, config: ModelConfig, tokenIds: ReadonlyArray<number>, options: ReferenceForwardOptions = {}): ReferenceForwardResult {
  const { hiddenSize: H, numHeads, numKvHeads, headDim: D, intermediateSize: I, vocabSize: V } = config;
  const group = numHeads / numKvHeads;
  const n = tokenIds.length;
  const lora = options.lora;
  const { fr: fround, alloc, linear, rmsNorm, applyRope, project } = kernels(options.precision ?? "float32");
  const rank = lora?.config.rank ?? 0;
  for (const id of tokenIds) {
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new BdcError({ code: "BDC_MODEL_TOKEN_RANGE", message: `token id ${id} is outside the vocabulary (0 to ${V - 1})` });
  }

  const proj = (layer: number, module: "self_attn" | "mlp", target: LoraTarget, out: number, inp: number, bias: boolean): Projection => {
    const prefix = `model.layers.${layer}.${module}.${target}`;
    const factors = lora?.modules.get(moduleKey(layer, target));
    if (factors !== undefined) {
      if (factors.A.length !== rank * inp || factors.B.length !== out * rank) {
        throw new BdcError({
          code: "BDC_LORA_SHAPE",
          message: `LoRA for layer ${layer} ${target}: A has ${factors.A.length} values and B ${factors.B.length}; rank ${rank} needs A [${rank}, ${inp}] and B [${out}, ${rank}]`,
        });
      }
    }
    return {
      w: load(weights, `${prefix}.weight`, [out, inp]),
      b: bias ? load(weights, `${prefix}.bias`, [out]) : undefined,
      out,
      inp,
      lora: factors,
    };
  };

  // RoPE tables per position: freqs = position * inv_freq in float32, as the rotary embedding's matmul.
  const invFreq = ropeInverseFrequencies(config);
  const cos: Vector[] = [];
  const sin: Vector[] = [];
  for (let p = 0; p < n; p++) {
    const c = alloc(D / 2);
    const s = alloc(D / 2);
    for (let j = 0; j < D / 2; j++) {
      const f = fround(p * invFreq[j]!);
      c[j] = fround(Math.cos(f));
      s[j] = fround(Math.sin(f));
    }
    cos.push(c);
    sin.push(s);
  }

  const embed = load(weights, "model.embed_tokens.weight", [V, H]);
  let h: Vector[] = tokenIds.map((id) => {
    const row = alloc(H);
    row.set(embed.subarray(id * H, (id + 1) * H));
    return row;
  });
  const scaling = 1 / Math.sqrt(D);
  const scale = lora === undefined ? 0 : loraScale(lora.config);

  for (let l = 0; l < config.numLayers; l++) {
    const prefix = `model.layers.${l}`;
    const inNorm = load(weights, `${prefix}.input_layernorm.weight`, [H]);
    const postNorm = load(weights, `${prefix}.post_attention_layernorm.weight`, [H]);
    const q = proj(l, "self_attn", "q_proj", numHeads * D, H, config.attentionBias);
    const k = proj(l, "self_attn", "k_proj", numKvHeads * D, H, config.attentionBias);
    const v = proj(l, "self_attn", "v_proj", numKvHeads * D, H, config.attentionBias);
    const o = proj(l, "self_attn", "o_proj", H, numHeads * D, config.outputBias);
    const gate = proj(l, "mlp", "gate_proj", I, H, config.mlpBias);
    const up = proj(l, "mlp", "up_proj", I, H, config.mlpBias);
    const down = proj(l, "mlp", "down_proj", H, I, config.mlpBias);

    const qs: Vector[] = [];
    const ks: Vector[] = [];
    const vs: Vector[] = [];
    for (let t = 0; t < n; t++) {
      const x = rmsNorm(h[t]!, inNorm, config.rmsNormEps);
      const qt = project(q, x, scale, rank);
      const kt = project(k, x, scale, rank);
      applyRope(qt, numHeads, D, cos[t]!, sin[t]!);
      applyRope(kt, numKvHeads, D, cos[t]!, sin[t]!);
      qs.push(qt);
      ks.push(kt);
      vs.push(project(v, x, scale, rank));
    }
    const next: Vector[] = [];
    for (let t = 0; t < n; t++) {
      const attn = alloc(numHeads * D);
      for (let head = 0; head < numHeads; head++) {
        const kvHead = Math.floor(head / group);
        const qOff = head * D;
        const kOff = kvHead * D;
        // Causal: position t attends to 0..t.
        const scores = new Float64Array(t + 1);
        let max = -Infinity;
        for (let u = 0; u <= t; u++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += qs[t]![qOff + d]! * ks[u]![kOff + d]!;
          scores[u] = fround(fround(s) * scaling);
          max = Math.max(max, scores[u]!);
        }
        let sum = 0;
        for (let u = 0; u <= t; u++) {
          scores[u] = Math.exp(scores[u]! - max);
          sum += scores[u]!;
        }
        for (let d = 0; d < D; d++) {
          let s = 0;
          for (let u = 0; u <= t; u++) s += fround(scores[u]! / sum) * vs[u]![kOff + d]!;
          attn[qOff + d] = fround(s);
        }
      }
      const afterAttn = project(o, attn, scale, rank);
      const resid = alloc(H);
      for (let i = 0; i < H; i++) resid[i] = fround(h[t]![i]! + afterAttn[i]!);
      const x = rmsNorm(resid, postNorm, config.rmsNormEps);
      const g = project(gate, x, scale, rank);
      const u = project(up, x, scale, rank);
      const act = alloc(I);
      for (let i = 0; i < I; i++) act[i] = fround(fround(silu(g[i]!)) * u[i]!);
      const mlp = project(down, act, scale, rank);
      const out = alloc(H);
      for (let i = 0; i < H; i++) out[i] = fround(resid[i]! + mlp[i]!);
      next.push(out);
    }
    h = next;
  }

  const finalNorm = load(weights, "model.norm.weight", [H]);
  const lmHead = config.tieWordEmbeddings ? embed : load(weights, "lm_head.weight", [V, H]);
  const hidden = h.map((x) => rmsNorm(x, finalNorm, config.rmsNormEps));
  return { logits: hidden.map((x) => linear(x, lmHead, V)), hidden };
}

/** log(softmax(row)), computed in float64 with the max subtracted. */
export function logSoftmax(row: ArrayLike<number>): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]!);
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  const lse = max + Math.log(sum);
  const out = new Float32Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = row[i]! - lse;
  return out;
}
