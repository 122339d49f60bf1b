/**
 * The Llama-family decoder (Llama 2/3, Qwen2/2.5, Mistral) as a graph: RMSNorm, RoPE (llama3
 * scaling folded into the inverse frequencies), grouped-query attention over a KV cache, SwiGLU.
 *
 * Inputs: input_ids [B, S], position_ids [B, S], attn_bias [B, 1, S, P+S] (0 where a query may
 * look, a large negative number where not: causality and padding are the caller's, so one graph
 * serves prefill, decode, batches and scoring), past_key.i / past_value.i [B, P, kvH, D], and
 * logits_index [N] (which positions get logits: all of them to score a text, the last one to
 * generate - the vocabulary projection is the largest single matmul).
 * Outputs: logits [B, N, V] (float32), hidden [B, S, H] (after the final norm; embeddings are
 * pooled from it), new_key.i / new_value.i [B, S, kvH, D] (this call's rows of the cache, which a
 * host-side cache appends) and present_key.i / present_value.i [B, P+S, kvH, D] (the whole cache,
 * which a device-resident cache feeds back as the next call's past without leaving the GPU).
 * A caller fetches the outputs it uses; the others cost nothing (the concat is needed anyway).
 *
 * Projections are stored as [in, out] so that MatMul needs no transpose; q/k/v and gate/up are
 * fused into one matmul each (fewer, larger kernels - what matters for one-token decode steps).
 *
 * The decoder stack (`llamaDecoder`) is shared with the training graph (train/training-graph.ts),
 * which has no KV cache and ends in a loss instead of logits.
 */
import { dimAdd, float32ArrayToFloat16, GraphBuilder, type DType, type Graph, type TensorData, type Value } from "@bdc/onnx-graph";
import type { ModelConfig } from "../checkpoint/config.ts";
import { ropeInverseFrequencies } from "../checkpoint/config.ts";
import type { CheckpointWeights } from "../checkpoint/safetensors.ts";
import { LORA_SCALE_INPUT, loraInputNames, slotLayers, type LoraSlots, type LoraTarget } from "./lora-slots.ts";

export interface LlamaGraphOptions {
  /** Compute type: float32 (CPU) or float16 (GPUs). Norms and the attention softmax run in float32 either way. */
  readonly dtype?: "float32" | "float16" | undefined;
  readonly lora?: LoraSlots | undefined;
  /**
   * `ops` (default): attention as MatMul/Softmax over the bias input (any mask: causality,
   * padding, packed rows). `fused`: ONNX Runtime's GroupQueryAttention contrib op (one kernel per
   * layer, fewer dispatches on a GPU) with a [B, kvH, P, D] cache and causal attention only: the
   * bias input is replaced by seqlens_k [B] and total_sequence_length (int32).
   */
  readonly attention?: "ops" | "fused" | undefined;
}

/** Bias added for masked positions (finite, so that a fully masked padding row gives no NaN). */
export const MASKED: Readonly<Record<"float32" | "float16", number>> = { float32: -1e9, float16: -65504 };

export const inputNames = {
  ids: "input_ids",
  positions: "position_ids",
  bias: "attn_bias",
  logitsIndex: "logits_index",
  seqlensK: "seqlens_k",
  totalLength: "total_sequence_length",
  pastKey: (i: number) => `past_key.${i}`,
  pastValue: (i: number) => `past_value.${i}`,
  newKey: (i: number) => `new_key.${i}`,
  newValue: (i: number) => `new_value.${i}`,
  presentKey: (i: number) => `present_key.${i}`,
  presentValue: (i: number) => `present_value.${i}`,
} as const;

/** Reads [out, in] tensors and writes them side by side as one [in, sum(out)] matrix. */
function transposedConcat(weights: CheckpointWeights, names: ReadonlyArray<string>, inDim: number, dtype: DType): () => TensorData {
  return () => {
    const parts = names.map((n) => weights.readFloat32(n));
    const outDims = parts.map((p) => p.length / inDim);
    const total = outDims.reduce((a, b) => a + b, 0);
    const out = new Float32Array(inDim * total);
    let col = 0;
    parts.forEach((p, k) => {
      const o = outDims[k]!;
      for (let r = 0; r < o; r++) {
        const row = r * inDim;
        for (let c = 0; c < inDim; c++) out[c * total + col + r] = p[row + c]!;
      }
      col += o;
    });
    return convert(out, dtype);
  };
}

function convert(values: Float32Array, dtype: DType): TensorData {
  return dtype === "float16" ? float32ArrayToFloat16(values) : values;
}

function concatVectors(weights: CheckpointWeights, names: ReadonlyArray<string>, dtype: DType): () => TensorData {
  return () => {
    const parts = names.map((n) => weights.readFloat32(n));
    const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return convert(out, dtype);
  };
}

export function buildLlamaGraph(config: ModelConfig, weights: CheckpointWeights, options: LlamaGraphOptions = {}): Graph {
  const dtype = options.dtype ?? "float32";
  const g = new GraphBuilder(`${config.arch}-${config.numLayers}x${config.hiddenSize}`);
  const ids = g.input(inputNames.ids, "int64", ["B", "S"]);
  const positions = g.input(inputNames.positions, "int64", ["B", "S"]);
  const fused = options.attention === "fused" ? { seqlensK: g.input(inputNames.seqlensK, "int32", ["B"]), total: g.input(inputNames.totalLength, "int32", []) } : undefined;
  const bias = fused === undefined ? g.input(inputNames.bias, dtype, ["B", 1, "S", dimAdd("P", "S")]) : undefined;
  const logitsIndex = g.input(inputNames.logitsIndex, "int64", ["N"]);
  const { hidden, lmHead } = llamaDecoder(g, config, weights, { ...options, ids, positions, bias, kvCache: fused ?? true });
  g.output(dtype === "float32" ? hidden : g.cast(hidden, "float32"), "hidden");
  const picked = g.gather(hidden, logitsIndex, 1);
  const logits = g.matMul(picked, lmHead);
  g.output(dtype === "float32" ? logits : g.cast(logits, "float32"), "logits");
  const graph = g.build();
  return { ...graph, outputs: [...graph.outputs].sort((a, b) => outputRank(a.name) - outputRank(b.name)) };
}

/**
 * Outputs in a fixed order: logits, hidden, then the present cache, then the new rows. A
 * resident-cache run fetches exactly the first 2 + 2L of them, so their positions among the
 * fetched outputs equal their positions in the graph (onnxruntime-node's IO-binding path has
 * looked output locations up by the position among the fetched ones in some versions).
 */
function outputRank(name: string): number {
  if (name === "logits") return 0;
  if (name === "hidden") return 1;
  const m = /^(present|new)_(key|value)\.(\d+)$/.exec(name);
  if (m === null) return Number.MAX_SAFE_INTEGER;
  return (m[1] === "present" ? 2 : 1e6) + 2 * Number(m[3]) + (m[2] === "value" ? 1 : 0);
}

export interface DecoderOptions extends LlamaGraphOptions {
  readonly ids: Value;
  readonly positions: Value;
  /** [B, 1, S, keys]: keys are P+S with a KV cache, S without (absent with fused attention). */
  readonly bias: Value | undefined;
  /**
   * Inference: past_key/past_value inputs and new_key/new_value + present outputs per layer, or,
   * for fused attention, GroupQueryAttention's sequence-length inputs. Training: false.
   */
  readonly kvCache: boolean | { readonly seqlensK: Value; readonly total: Value };
}

export interface Decoder {
  /** Final-norm hidden states [B, S, H], in the compute type. */
  readonly hidden: Value;
  /** The vocabulary projection [H, V]. */
  readonly lmHead: Value;
  /** The LoRA slot inputs that were added, by input name. */
  readonly loraInputs: ReadonlyMap<string, Value>;
}

/** The decoder stack of the Llama family on `g`, from token ids to the final-norm hidden states. */
export function llamaDecoder(g: GraphBuilder, config: ModelConfig, weights: CheckpointWeights, options: DecoderOptions): Decoder {
  const dtype: DType = options.dtype ?? "float32";
  const H = config.hiddenSize;
  const D = config.headDim;
  const nH = config.numHeads;
  const kvH = config.numKvHeads;
  const G = nH / kvH;
  const I = config.intermediateSize;
  const V = config.vocabSize;
  const { ids, positions, bias } = options;
  const lora = options.lora;
  const loraLayers = new Set(lora === undefined ? [] : slotLayers(lora, config.numLayers));
  const loraInputs = new Map<string, Value>();
  const loraInput = (name: string, shape: ReadonlyArray<number | string>) => {
    const v = g.input(name, dtype, shape);
    loraInputs.set(name, v);
    return v;
  };
  const loraScale = lora === undefined ? undefined : loraInput(LORA_SCALE_INPUT, [1]);

  const w = (name: string, shape: number[], read: () => TensorData) => g.weight(name, dtype, shape, read);
  const vector = (name: string) => w(name, [weights.info(name).shape[0]!], () => convert(weights.readFloat32(name), dtype));
  const eps = g.scalar(config.rmsNormEps);

  /** x W^T (+ b when the checkpoint has a bias). */
  const linear = (x: Value, name: string, inDim: number, outDim: number): Value => {
    const y = g.matMul(x, w(`${name}.weight`, [inDim, outDim], transposedConcat(weights, [`${name}.weight`], inDim, dtype)));
    return weights.has(`${name}.bias`) ? g.add(y, vector(`${name}.bias`)) : y;
  };

  const two = g.scalar(2);
  const rmsNorm = (x: Value, weightName: string): Value =>
    g.scope(weightName.replace(/\.weight$/, ""), () => {
      // In float32 whatever the compute type, as transformers does; written as the pattern
      // (Pow, ReduceMean, Add, Sqrt, Div, Mul) that ONNX Runtime fuses into one RMSNorm kernel.
      const x32 = dtype === "float32" ? x : g.cast(x, "float32");
      const normed = g.div(x32, g.sqrt(g.add(g.reduceMean(g.pow(x32, two), [-1]), eps)));
      return g.mul(dtype === "float32" ? normed : g.cast(normed, dtype), vector(weightName));
    });

  const hasSlot = (layer: number, target: LoraTarget) => lora !== undefined && loraLayers.has(layer) && lora.targets.includes(target);
  /** y += scale * (dropout(x) A^T) B^T for the projection's slot, when it has one (A [r, in], B [out, r] as PEFT stores them). */
  const withLora = (layer: number, target: LoraTarget, x: Value, y: Value, inDim: number, outDim: number): Value => {
    if (lora === undefined || !hasSlot(layer, target)) return y;
    const names = loraInputNames(layer, target);
    const r = `r.${layer}.${target}`;
    const a = loraInput(names.a, [r, inDim]);
    const b = loraInput(names.b, [outDim, r]);
    return g.scope(`lora.${target}`, () => {
      const input = lora.dropout === true ? g.mul(x, loraInput(names.dropout, ["B", "S", inDim])) : x;
      // ONNX Runtime fuses Transpose into MatMul (FusedMatMul with transB): A and B are read in place.
      let down = g.matMul(input, g.transpose(a, [1, 0]));
      if (lora.gates === true) down = g.mul(down, loraInput(names.gates, ["B", 1, r]));
      return g.add(y, g.mul(g.matMul(down, g.transpose(b, [1, 0])), loraScale!));
    });
  };

  // Rotary tables, shared by every layer: [B, S, 1, D]. rotate_half(x) * sin is computed as
  // swap_halves(x) * (sin with its first half negated), which saves a Neg per rotation.
  const [cos, sinSigned] = g.scope("rope", () => {
    const invFreq = g.weight("rope.inv_freq", "float32", [D / 2], ropeInverseFrequencies(config));
    const freqs = g.unsqueeze(g.mul(g.unsqueeze(g.cast(positions, "float32"), [2]), invFreq), [2]);
    const c = g.cos(g.concat([freqs, freqs], -1));
    const sinHalf = g.sin(freqs);
    const s = g.concat([g.neg(sinHalf), sinHalf], -1);
    return dtype === "float32" ? [c, s] : [g.cast(c, dtype), g.cast(s, dtype)];
  });
  /** RoPE on [B, S, heads, D]. */
  const rope = (x: Value): Value =>
    g.scope("rope", () => {
      const swapped = g.concat([g.slice(x, [D / 2], [D], [3]), g.slice(x, [0], [D / 2], [3])], -1);
      return g.add(g.mul(x, cos), g.mul(swapped, sinSigned));
    });

  // The vocabulary projection is stored as [H, V] for its matmul. With tied embeddings the
  // lookup gathers columns of that same matrix rather than keeping a second [V, H] copy.
  const tied = config.tieWordEmbeddings || !weights.has("lm_head.weight");
  const lmHead = w("lm_head.weight_t", [H, V], transposedConcat(weights, [tied ? "model.embed_tokens.weight" : "lm_head.weight"], H, dtype));
  let h = tied
    ? g.transpose(g.gather(lmHead, ids, 1), [1, 2, 0])
    : g.gather(w("model.embed_tokens.weight", [V, H], () => convert(weights.readFloat32("model.embed_tokens.weight"), dtype)), ids, 0);
  const scale = g.scalar(1 / Math.sqrt(D));
  const scaleT = dtype === "float32" ? scale : g.cast(scale, dtype);
  const qOut = nH * D;
  const kvOut = kvH * D;

  /** Attention as plain ops over the bias input, with the position-major [B, P, kvH, D] cache when inference has one. */
  const opsAttention = (i: number, qr: Value, kr: Value, vr: Value): Value => {
    if (bias === undefined) throw new Error("llamaDecoder: attention as ops needs the bias input");
    // q: [B, S, nH, D] -> [B, kvH, G*S, D] so that each kv head serves its G query heads in one matmul.
    const qg = g.reshape(g.transpose(g.reshape(qr, [0, 0, kvH, G, D]), [0, 2, 3, 1, 4]), [0, 0, -1, D]);
    // The cache is position-major ([B, P, kvH, D]): the caller appends the new rows to a
    // buffer and feeds its prefix, so only this call's keys and values leave the graph.
    let keys = kr;
    let values = vr;
    if (options.kvCache) {
      g.output(kr, inputNames.newKey(i));
      g.output(vr, inputNames.newValue(i));
      keys = g.concat([g.input(inputNames.pastKey(i), dtype, ["B", "P", kvH, D]), kr], 1);
      values = g.concat([g.input(inputNames.pastValue(i), dtype, ["B", "P", kvH, D]), vr], 1);
      g.output(keys, inputNames.presentKey(i));
      g.output(values, inputNames.presentValue(i));
    }
    values = g.transpose(values, [0, 2, 1, 3]);

    const scores = g.mul(g.matMul(qg, g.transpose(keys, [0, 2, 3, 1])), scaleT);
    // The bias rows follow the (g, s) order of the query rows.
    const tiled = G === 1 ? bias : g.concat(Array.from({ length: G }, () => bias), 2);
    // As transformers does (softmax(..., dtype=float32)): half-precision scores are summed in
    // float32, where a long context's sum of exponentials keeps its precision.
    const biased = g.add(scores, tiled);
    const probs = dtype === "float32" ? g.softmax(biased, -1) : g.cast(g.softmax(g.cast(biased, "float32"), -1), dtype);
    const ctx = g.matMul(probs, values);
    return g.reshape(g.transpose(g.reshape(ctx, [0, 0, G, -1, D]), [0, 3, 1, 2, 4]), [0, 0, -1]);
  };

  /** ONNX Runtime's GroupQueryAttention over the [B, kvH, P, D] cache: causal, one kernel per layer. */
  const fusedAttention = (i: number, qr: Value, kr: Value, vr: Value, lengths: { readonly seqlensK: Value; readonly total: Value }): Value => {
    const past = (name: string) => g.input(name, dtype, ["B", kvH, "P", D]);
    const cacheShape = { dtype, shape: ["B", kvH, dimAdd("P", "S"), D] };
    const [out, presentKey, presentValue] = g.node(
      "GroupQueryAttention",
      [g.reshape(qr, [0, 0, qOut]), g.reshape(kr, [0, 0, kvOut]), g.reshape(vr, [0, 0, kvOut]), past(inputNames.pastKey(i)), past(inputNames.pastValue(i)), lengths.seqlensK, lengths.total],
      [{ dtype, shape: ["B", "S", qOut] }, cacheShape, cacheShape],
      { num_heads: nH, kv_num_heads: kvH, scale: 1 / Math.sqrt(D) },
      undefined,
      "com.microsoft",
    );
    g.output(presentKey!, inputNames.presentKey(i));
    g.output(presentValue!, inputNames.presentValue(i));
    return out!;
  };

  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    h = g.scope(`layers.${i}`, () => {
      const x = rmsNorm(h, `${p}.input_layernorm.weight`);
      const attnOut = g.scope("attn", () => {
        const proj = [`${p}.self_attn.q_proj`, `${p}.self_attn.k_proj`, `${p}.self_attn.v_proj`];
        let qkv = g.matMul(x, w(`${p}.self_attn.qkv_proj.weight`, [H, qOut + 2 * kvOut], transposedConcat(weights, proj.map((n) => `${n}.weight`), H, dtype)));
        // Qwen2 (and Llama with attention_bias) have q/k/v biases: the checkpoint says which.
        if (weights.has(`${proj[0]}.bias`)) qkv = g.add(qkv, w(`${p}.self_attn.qkv_proj.bias`, [qOut + 2 * kvOut], concatVectors(weights, proj.map((n) => `${n}.bias`), dtype)));
        const loraOnQk = hasSlot(i, "q_proj") || hasSlot(i, "k_proj");
        let qr: Value;
        let kr: Value;
        if (loraOnQk) {
          const q = withLora(i, "q_proj", x, g.slice(qkv, [0], [qOut], [2]), H, qOut);
          const k = withLora(i, "k_proj", x, g.slice(qkv, [qOut], [qOut + kvOut], [2]), H, kvOut);
          qr = rope(g.reshape(q, [0, 0, nH, D]));
          kr = rope(g.reshape(k, [0, 0, kvH, D]));
        } else {
          // One rotation for the query and key heads together: half the small ops per layer.
          const qk = rope(g.reshape(g.slice(qkv, [0], [qOut + kvOut], [2]), [0, 0, nH + kvH, D]));
          qr = g.slice(qk, [0], [nH], [2]);
          kr = g.slice(qk, [nH], [nH + kvH], [2]);
        }
        const v = withLora(i, "v_proj", x, g.slice(qkv, [qOut + kvOut], [qOut + 2 * kvOut], [2]), H, kvOut);

        const vr = g.reshape(v, [0, 0, kvH, D]);
        const merged = typeof options.kvCache === "object" ? fusedAttention(i, qr, kr, vr, options.kvCache) : opsAttention(i, qr, kr, vr);
        const o = linear(merged, `${p}.self_attn.o_proj`, qOut, H);
        return withLora(i, "o_proj", merged, o, qOut, H);
      });
      const h1 = g.add(h, attnOut);
      const x2 = rmsNorm(h1, `${p}.post_attention_layernorm.weight`);
      const mlpOut = g.scope("mlp", () => {
        let gu = g.matMul(x2, w(`${p}.mlp.gate_up_proj.weight`, [H, 2 * I], transposedConcat(weights, [`${p}.mlp.gate_proj.weight`, `${p}.mlp.up_proj.weight`], H, dtype)));
        if (weights.has(`${p}.mlp.gate_proj.bias`)) gu = g.add(gu, w(`${p}.mlp.gate_up_proj.bias`, [2 * I], concatVectors(weights, [`${p}.mlp.gate_proj.bias`, `${p}.mlp.up_proj.bias`], dtype)));
        const gate = withLora(i, "gate_proj", x2, g.slice(gu, [0], [I], [2]), H, I);
        const up = withLora(i, "up_proj", x2, g.slice(gu, [I], [2 * I], [2]), H, I);
        const act = g.mul(g.mul(gate, g.sigmoid(gate)), up);
        const down = linear(act, `${p}.mlp.down_proj`, I, H);
        return withLora(i, "down_proj", act, down, I, H);
      });
      return g.add(h1, mlpOut);
    });
  }

  return { hidden: rmsNorm(h, "model.norm.weight"), lmHead, loraInputs };
}
