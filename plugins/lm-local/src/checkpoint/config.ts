/**
 * The model config of a Hugging Face checkpoint (`config.json`, plus `generation_config.json` for
 * the end-of-sequence ids), read into one typed shape for the Llama family: Llama, Qwen2 and
 * Mistral share the decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU MLP) and differ only
 * in biases, tying and defaults, which this file resolves so that nothing downstream asks "which
 * architecture is it?".
 *
 * Defaults are transformers' own (LlamaConfig, Qwen2Config, MistralConfig) for keys that real
 * configs sometimes omit; the sizes (vocab, hidden, intermediate, layers, heads) are required,
 * because a config without them is not a checkpoint's config and a 7B default would only hide it.
 */
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import { isObject, readJsonObject } from "./files.ts";

export type ModelArch = "llama" | "qwen2" | "mistral";

/** `architectures[0]` of config.json -> the family it is read as. */
export const SUPPORTED_ARCHITECTURES: Readonly<Record<string, ModelArch>> = {
  LlamaForCausalLM: "llama",
  Qwen2ForCausalLM: "qwen2",
  MistralForCausalLM: "mistral",
};

/**
 * RoPE scaling. Both kinds are folded into the inverse frequencies by `ropeInverseFrequencies`,
 * as transformers does (linear: `inv_freq / factor`, the same as dividing positions by factor).
 */
export type RopeScaling =
  | { readonly type: "llama3"; readonly factor: number; readonly lowFreqFactor: number; readonly highFreqFactor: number; readonly originalMaxPositions: number }
  | { readonly type: "linear"; readonly factor: number };

export interface ModelConfig {
  readonly arch: ModelArch;
  /** As config.json names it, e.g. "Qwen2ForCausalLM". */
  readonly architecture: string;
  /** The config.json read. */
  readonly configFile: string;
  /** Rows of the embedding and lm_head (often padded beyond the tokenizer's ids). */
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  /** Key/value heads (grouped-query attention); query head h reads kv head floor(h / (numHeads / numKvHeads)). */
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling | undefined;
  /** max_position_embeddings. */
  readonly maxPositions: number;
  /** lm_head shares model.embed_tokens.weight (and the checkpoint has no lm_head.weight). */
  readonly tieWordEmbeddings: boolean;
  /** q_proj, k_proj and v_proj have biases (Qwen2 always; Llama with `attention_bias`). */
  readonly attentionBias: boolean;
  /** o_proj has a bias (Llama's `attention_bias` covers o_proj too; Qwen2's o_proj never has one). */
  readonly outputBias: boolean;
  /** gate_proj, up_proj and down_proj have biases (Llama `mlp_bias`). */
  readonly mlpBias: boolean;
  readonly bosTokenId: number | undefined;
  /** config.json's eos_token_id(s), then generation_config.json's, without repeats. */
  readonly eosTokenIds: number[];
  readonly padTokenId: number | undefined;
  /** The dtype the weights were saved in ("bfloat16", "float16", "float32"), when the config says. */
  readonly torchDtype: string | undefined;
  /**
   * Sliding-window attention width (Mistral `sliding_window`; Qwen2 only with `use_sliding_window`).
   * Reported, NOT applied: attention here is full causal, which equals the windowed model for
   * sequences no longer than the window (4096 and up in real checkpoints).
   */
  readonly slidingWindow: number | undefined;
}

function unsupported(file: string, message: string, hint: string): BdcError {
  return new BdcError({ code: "BDC_MODEL_UNSUPPORTED", message: `${file}: ${message}`, hint });
}

const FAMILY_HINT = "use a Llama-, Qwen2- or Mistral-family checkpoint (e.g. Qwen/Qwen2.5-Coder-0.5B-Instruct, meta-llama/Llama-3.2-1B-Instruct)";

class Reader {
  constructor(
    readonly file: string,
    readonly raw: Record<string, unknown>,
  ) {}

  invalid(key: string, value: unknown, expected: string): BdcError {
    return new BdcError({
      code: "BDC_MODEL_CONFIG_INVALID",
      message: `${this.file}: "${key}" is ${JSON.stringify(value)}; expected ${expected}`,
      hint: "the config.json is damaged or hand-edited; download the checkpoint again",
    });
  }

  int(key: string, fallback?: number): number {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new BdcError({
        code: "BDC_MODEL_CONFIG_INVALID",
        message: `${this.file}: "${key}" is missing`,
        hint: "the config.json is incomplete; download the checkpoint again",
      });
    }
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) throw this.invalid(key, v, "a positive integer");
    return v;
  }

  num(key: string, fallback: number): number {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw this.invalid(key, v, "a positive number");
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") throw this.invalid(key, v, "true or false");
    return v;
  }

  optionalInt(key: string): number | undefined {
    const v = this.raw[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw this.invalid(key, v, "a token id (an integer >= 0)");
    return v;
  }

  ids(key: string): number[] {
    const v = this.raw[key];
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0)) throw this.invalid(key, v, "a token id or a list of token ids");
    return list as number[];
  }
}

/** transformers' defaults per family, for keys a config may leave out. */
const DEFAULTS: Record<ModelArch, { rmsNormEps: number; maxPositions: number; tie: boolean }> = {
  llama: { rmsNormEps: 1e-6, maxPositions: 2048, tie: false },
  qwen2: { rmsNormEps: 1e-6, maxPositions: 32768, tie: false },
  mistral: { rmsNormEps: 1e-6, maxPositions: 4096 * 32, tie: false },
};

function readRopeScaling(r: Reader, scaling: unknown, key: string): RopeScaling | undefined {
  if (scaling === undefined || scaling === null) return undefined;
  if (!isObject(scaling)) throw r.invalid(key, scaling, "an object with rope_type");
  const type = scaling.rope_type ?? scaling.type ?? "default";
  const need = (k: string): number => {
    const v = scaling[k];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw r.invalid(`${key}.${k}`, v, "a positive number");
    return v;
  };
  if (type === "default") return undefined;
  if (type === "linear") return { type: "linear", factor: need("factor") };
  if (type === "llama3") {
    const s = {
      type: "llama3" as const,
      factor: need("factor"),
      lowFreqFactor: need("low_freq_factor"),
      highFreqFactor: need("high_freq_factor"),
      originalMaxPositions: need("original_max_position_embeddings"),
    };
    if (s.highFreqFactor <= s.lowFreqFactor) throw r.invalid(`${key}.high_freq_factor`, s.highFreqFactor, `more than low_freq_factor (${s.lowFreqFactor})`);
    return s;
  }
  throw unsupported(r.file, `${key} type ${JSON.stringify(type)} is not supported (supported: default, linear, llama3)`, FAMILY_HINT);
}

/** Reads `config.json` (and `generation_config.json` when present) of a checkpoint directory. */
export function readModelConfig(dir: string): ModelConfig {
  const file = path.join(dir, "config.json");
  const raw = readJsonObject(file, "the model config of a Hugging Face checkpoint");
  const r = new Reader(file, raw);
  const architectures = raw.architectures;
  const architecture =
    Array.isArray(architectures) && typeof architectures[0] === "string"
      ? architectures[0]
      : Object.entries(SUPPORTED_ARCHITECTURES).find(([, arch]) => arch === raw.model_type)?.[0];
  const supported = Object.entries(SUPPORTED_ARCHITECTURES).map(([name, arch]) => `${name} (${arch})`).join(", ");
  if (architecture === undefined) {
    throw unsupported(file, `names no architecture ("architectures" is ${JSON.stringify(architectures)}, "model_type" is ${JSON.stringify(raw.model_type)}); supported: ${supported}`, FAMILY_HINT);
  }
  const arch = SUPPORTED_ARCHITECTURES[architecture];
  if (arch === undefined) throw unsupported(file, `architecture "${architecture}" is not supported; supported: ${supported}`, FAMILY_HINT);
  const hiddenAct = raw.hidden_act ?? raw.hidden_activation ?? "silu";
  if (hiddenAct !== "silu") throw unsupported(file, `hidden_act ${JSON.stringify(hiddenAct)} is not supported (the SwiGLU MLP here is "silu")`, FAMILY_HINT);
  if (raw.quantization_config !== undefined && raw.quantization_config !== null) {
    throw unsupported(file, `the checkpoint is quantised (quantization_config ${JSON.stringify(isObject(raw.quantization_config) ? raw.quantization_config.quant_method : raw.quantization_config)})`, "use the unquantised checkpoint (float32, float16 or bfloat16 safetensors)");
  }

  const defaults = DEFAULTS[arch];
  const hiddenSize = r.int("hidden_size");
  const numHeads = r.int("num_attention_heads");
  const numKvHeads = r.int("num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) throw r.invalid("num_key_value_heads", numKvHeads, `a divisor of num_attention_heads (${numHeads})`);
  if (raw.head_dim === undefined || raw.head_dim === null) {
    if (hiddenSize % numHeads !== 0) throw r.invalid("hidden_size", hiddenSize, `a multiple of num_attention_heads (${numHeads}) when head_dim is absent`);
  }
  const headDim = r.int("head_dim", hiddenSize / numHeads);
  if (headDim % 2 !== 0) throw r.invalid("head_dim", headDim, "an even number (RoPE rotates pairs)");

  // transformers v5 moved rope_theta and rope_scaling into one `rope_parameters` object.
  const ropeParameters = raw.rope_parameters;
  const ropeTheta = isObject(ropeParameters) && ropeParameters.rope_theta !== undefined ? new Reader(file, ropeParameters).num("rope_theta", 10000) : r.num("rope_theta", 10000);
  const ropeScaling = isObject(ropeParameters) ? readRopeScaling(r, ropeParameters, "rope_parameters") : readRopeScaling(r, raw.rope_scaling, "rope_scaling");

  const llamaBias = arch === "llama" && r.bool("attention_bias", false);
  const slidingWindow =
    arch === "mistral" || (arch === "qwen2" && r.bool("use_sliding_window", false)) ? (raw.sliding_window === null ? undefined : r.optionalInt("sliding_window")) : undefined;

  const generationFile = path.join(dir, "generation_config.json");
  const generation = readJsonObject(generationFile, "generation defaults", true);
  const eosTokenIds = [...new Set([...r.ids("eos_token_id"), ...(generation === undefined ? [] : new Reader(generationFile, generation).ids("eos_token_id"))])];
  const dtype = raw.torch_dtype ?? raw.dtype;

  return {
    arch,
    architecture,
    configFile: file,
    vocabSize: r.int("vocab_size"),
    hiddenSize,
    intermediateSize: r.int("intermediate_size"),
    numLayers: r.int("num_hidden_layers"),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: r.num("rms_norm_eps", defaults.rmsNormEps),
    ropeTheta,
    ropeScaling,
    maxPositions: r.int("max_position_embeddings", defaults.maxPositions),
    tieWordEmbeddings: r.bool("tie_word_embeddings", defaults.tie),
    attentionBias: arch === "qwen2" || llamaBias,
    outputBias: llamaBias,
    mlpBias: arch === "llama" && r.bool("mlp_bias", false),
    bosTokenId: r.optionalInt("bos_token_id") ?? (generation === undefined ? undefined : new Reader(generationFile, generation).optionalInt("bos_token_id")),
    eosTokenIds,
    padTokenId: r.optionalInt("pad_token_id"),
    torchDtype: typeof dtype === "string" ? dtype : undefined,
    slidingWindow,
  };
}

const fround = Math.fround;

/**
 * RoPE inverse frequencies, `headDim / 2` of them, computed as transformers does in float32:
 * `inv_freq[i] = 1 / theta^(float32(2i) / headDim)`, then the scaling folded in:
 *
 * - linear: `inv_freq / factor` (transformers' `_compute_linear_scaling_rope_parameters`; the same
 *   as dividing the position ids by factor, so there is no separate position scale);
 * - llama3 (`_compute_llama3_parameters`): with `wavelen = 2π / inv_freq`,
 *   `low_freq_wavelen = original_max_position_embeddings / low_freq_factor` and
 *   `high_freq_wavelen = original_max_position_embeddings / high_freq_factor`:
 *   wavelen > low_freq_wavelen -> `inv_freq / factor`; wavelen < high_freq_wavelen -> unchanged;
 *   in between -> `(1 - smooth) * inv_freq / factor + smooth * inv_freq` with
 *   `smooth = (original / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)`.
 *
 * Every step is rounded to float32 like the torch tensors; torch's powf may differ from this by an
 * ulp, far below what the cos/sin tables resolve.
 */
export function ropeInverseFrequencies(config: Pick<ModelConfig, "headDim" | "ropeTheta" | "ropeScaling">): Float32Array {
  const d = config.headDim;
  const inv = new Float32Array(d / 2);
  for (let i = 0; i < d / 2; i++) {
    const exponent = fround((2 * i) / d);
    inv[i] = fround(1 / fround(Math.pow(config.ropeTheta, exponent)));
  }
  const s = config.ropeScaling;
  if (s === undefined) return inv;
  if (s.type === "linear") {
    for (let i = 0; i < inv.length; i++) inv[i] = fround(inv[i]! / s.factor);
    return inv;
  }
  const lowFreqWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositions / s.highFreqFactor;
  for (let i = 0; i < inv.length; i++) {
    const f = inv[i]!;
    const wavelen = fround((2 * Math.PI) / f);
    if (wavelen > lowFreqWavelen) {
      inv[i] = fround(f / s.factor);
    } else if (wavelen >= highFreqWavelen) {
      const smooth = fround((fround(s.originalMaxPositions / wavelen) - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor));
      inv[i] = fround(fround(fround(fround(1 - smooth) * f) / s.factor) + fround(smooth * f));
    }
  }
  return inv;
}
