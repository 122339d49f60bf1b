/**
 * Random tiny checkpoints in exactly the Hugging Face layout (config.json,
 * generation_config.json, safetensors weights, tokenizer.json, tokenizer_config.json), for tests
 * and demos without a download: every loader of the real thing reads them, and transformers'
 * `AutoModelForCausalLM.from_pretrained(dir)` / `AutoTokenizer.from_pretrained(dir)` load them.
 *
 * Weights are seeded normals: projections and embeddings N(0, initStd) as transformers
 * initialises them, biases too (transformers zeros them, which would leave bias handling
 * untested), norm weights 1 + N(0, 0.1) (transformers: exactly 1, which would leave them
 * untested).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import type { ModelArch, RopeScaling } from "./config.ts";
import { writeJson } from "./files.ts";
import { gaussian } from "./random.ts";
import { writeCheckpointWeights, type FloatDtype, type TensorToWrite } from "./safetensors.ts";
import { buildTinyTokenizer, FAMILY_TOKENS } from "./tiny-tokenizer.ts";

export type TinyDtype = "float32" | "float16" | "bfloat16";

export interface TinyCheckpointOptions {
  /** Default "llama". */
  readonly arch?: ModelArch;
  /** Decoder layers, default 2. */
  readonly layers?: number;
  /** Hidden size, default 64. */
  readonly hidden?: number;
  /** Attention heads, default 4. */
  readonly heads?: number;
  /** Key/value heads, default 2 (grouped-query attention). */
  readonly kvHeads?: number;
  /** MLP size, default 8/3 * hidden rounded to a multiple of 16. */
  readonly intermediate?: number;
  /** Embedding rows (config vocab_size), default 512; the tokenizer uses up to this many ids. */
  readonly vocab?: number;
  /** Default hidden / heads. */
  readonly headDim?: number;
  /** Default 2048. */
  readonly maxPositions?: number;
  /** Default 10000. */
  readonly ropeTheta?: number;
  readonly ropeScaling?: RopeScaling;
  /** Default true for qwen2, else false. */
  readonly tieEmbeddings?: boolean;
  /** Default "float32". */
  readonly dtype?: TinyDtype;
  /** Safetensors shards, default 1 (model.safetensors); more writes model.safetensors.index.json. */
  readonly shards?: number;
  /** Default 0. */
  readonly seed?: number;
  /** Standard deviation of the weights, default 0.02 (transformers' initializer_range). */
  readonly initStd?: number;
  /** Default 1e-6. */
  readonly rmsNormEps?: number;
  /** Llama only: `attention_bias` (q, k, v and o biases); default false. Qwen2 always has q/k/v biases. */
  readonly attentionBias?: boolean;
  /** Llama only: `mlp_bias`; default false. */
  readonly mlpBias?: boolean;
}

export interface TinyCheckpointSummary {
  readonly dir: string;
  readonly files: string[];
  /** Ids the tokenizer uses (the rest of the vocab_size rows are padding). */
  readonly tokenizerIds: number;
}

const DTYPES: Record<TinyDtype, FloatDtype> = { float32: "F32", float16: "F16", bfloat16: "BF16" };

function bad(option: string, value: unknown, expected: string): BdcError {
  return new BdcError({ code: "BDC_CONFIG_VALUE", message: `tiny checkpoint: ${option} is ${JSON.stringify(value)}; expected ${expected}`, hint: "see `pnpm bdc models make-tiny --help`" });
}

function positiveInt(option: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw bad(option, value, "a positive integer");
  return value;
}

function sortedKeys(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function ropeScalingJson(s: RopeScaling | undefined): Record<string, unknown> | null {
  if (s === undefined) return null;
  if (s.type === "linear") return { factor: s.factor, rope_type: "linear" };
  return {
    factor: s.factor,
    high_freq_factor: s.highFreqFactor,
    low_freq_factor: s.lowFreqFactor,
    original_max_position_embeddings: s.originalMaxPositions,
    rope_type: "llama3",
  };
}

/** Writes a random checkpoint of the given shape into `dir` (created; existing files of the same names are replaced). */
export function writeTinyCheckpoint(dir: string, options: TinyCheckpointOptions = {}): TinyCheckpointSummary {
  const arch = options.arch ?? "llama";
  if (!(arch in FAMILY_TOKENS)) throw bad("arch", arch, "llama, qwen2 or mistral");
  const layers = positiveInt("layers", options.layers ?? 2);
  const hidden = positiveInt("hidden", options.hidden ?? 64);
  const heads = positiveInt("heads", options.heads ?? 4);
  const kvHeads = positiveInt("kvHeads", options.kvHeads ?? Math.min(2, heads));
  if (heads % kvHeads !== 0) throw bad("kvHeads", kvHeads, `a divisor of heads (${heads})`);
  if (options.headDim === undefined && hidden % heads !== 0) throw bad("hidden", hidden, `a multiple of heads (${heads}), or pass headDim`);
  const headDim = positiveInt("headDim", options.headDim ?? hidden / heads);
  if (headDim % 2 !== 0) throw bad("headDim", headDim, "an even number (RoPE rotates pairs)");
  const intermediate = positiveInt("intermediate", options.intermediate ?? Math.max(16, Math.round((8 * hidden) / 3 / 16) * 16));
  const vocab = positiveInt("vocab", options.vocab ?? 512);
  const maxPositions = positiveInt("maxPositions", options.maxPositions ?? 2048);
  const ropeTheta = options.ropeTheta ?? 10000;
  if (!(ropeTheta > 0)) throw bad("ropeTheta", ropeTheta, "a positive number");
  const dtype = options.dtype ?? "float32";
  if (!(dtype in DTYPES)) throw bad("dtype", dtype, "float32, float16 or bfloat16");
  const tie = options.tieEmbeddings ?? arch === "qwen2";
  const initStd = options.initStd ?? 0.02;
  const rmsNormEps = options.rmsNormEps ?? 1e-6;
  if (arch !== "llama" && options.attentionBias !== undefined) throw bad("attentionBias", options.attentionBias, "unset: it is a Llama option (Qwen2 always has q/k/v biases, Mistral none)");
  if (arch !== "llama" && options.mlpBias !== undefined) throw bad("mlpBias", options.mlpBias, "unset: it is a Llama option");
  const qkvBias = arch === "qwen2" || (options.attentionBias ?? false);
  const oBias = arch === "llama" && (options.attentionBias ?? false);
  const mlpBias = options.mlpBias ?? false;

  const tokenizer = buildTinyTokenizer(arch, vocab, maxPositions);
  const eos = tokenizer.configEosIds.length === 1 ? tokenizer.configEosIds[0] : tokenizer.configEosIds;
  const common: Record<string, unknown> = {
    architectures: [{ llama: "LlamaForCausalLM", qwen2: "Qwen2ForCausalLM", mistral: "MistralForCausalLM" }[arch]],
    attention_dropout: 0.0,
    bos_token_id: tokenizer.configBosId,
    eos_token_id: eos,
    hidden_act: "silu",
    hidden_size: hidden,
    initializer_range: initStd,
    intermediate_size: intermediate,
    max_position_embeddings: maxPositions,
    model_type: arch,
    num_attention_heads: heads,
    num_hidden_layers: layers,
    num_key_value_heads: kvHeads,
    rms_norm_eps: rmsNormEps,
    rope_scaling: ropeScalingJson(options.ropeScaling),
    rope_theta: ropeTheta,
    tie_word_embeddings: tie,
    torch_dtype: dtype,
    transformers_version: "4.46.0",
    use_cache: true,
    vocab_size: vocab,
  };
  const perArch: Record<ModelArch, Record<string, unknown>> = {
    llama: { attention_bias: oBias, head_dim: headDim, mlp_bias: mlpBias, pretraining_tp: 1 },
    // Qwen2's config has no head_dim unless it differs from hidden / heads (newer transformers read it).
    qwen2: { max_window_layers: layers, sliding_window: maxPositions, use_sliding_window: false, ...(headDim === hidden / heads ? {} : { head_dim: headDim }) },
    mistral: { head_dim: headDim, sliding_window: null },
  };
  const config = sortedKeys({ ...common, ...perArch[arch] });

  const normal = gaussian(options.seed ?? 0);
  const st = DTYPES[dtype];
  const tensors: TensorToWrite[] = [];
  const add = (name: string, shape: number[], init: "normal" | "norm") => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = init === "norm" ? 1 + 0.1 * normal() : initStd * normal();
    tensors.push({ name, dtype: st, shape, data });
  };
  const linear = (name: string, out: number, inp: number, bias: boolean) => {
    add(`${name}.weight`, [out, inp], "normal");
    if (bias) add(`${name}.bias`, [out], "normal");
  };
  // The order of transformers' state_dict (module definition order).
  add("model.embed_tokens.weight", [vocab, hidden], "normal");
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}`;
    linear(`${p}.self_attn.q_proj`, heads * headDim, hidden, qkvBias);
    linear(`${p}.self_attn.k_proj`, kvHeads * headDim, hidden, qkvBias);
    linear(`${p}.self_attn.v_proj`, kvHeads * headDim, hidden, qkvBias);
    linear(`${p}.self_attn.o_proj`, hidden, heads * headDim, oBias);
    linear(`${p}.mlp.gate_proj`, intermediate, hidden, mlpBias);
    linear(`${p}.mlp.up_proj`, intermediate, hidden, mlpBias);
    linear(`${p}.mlp.down_proj`, hidden, intermediate, mlpBias);
    add(`${p}.input_layernorm.weight`, [hidden], "norm");
    add(`${p}.post_attention_layernorm.weight`, [hidden], "norm");
  }
  add("model.norm.weight", [hidden], "norm");
  if (!tie) add("lm_head.weight", [vocab, hidden], "normal");
  const shards = options.shards ?? 1;
  if (!Number.isSafeInteger(shards) || shards < 1 || shards > tensors.length) throw bad("shards", shards, `1 to ${tensors.length} (the number of tensors)`);

  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const json = (name: string, value: unknown) => {
    const file = path.join(dir, name);
    writeJson(file, value);
    files.push(file);
  };
  json("config.json", config);
  json("generation_config.json", {
    _from_model_config: true,
    bos_token_id: tokenizer.configBosId,
    eos_token_id: tokenizer.generationEosIds.length === 1 ? tokenizer.generationEosIds[0] : tokenizer.generationEosIds,
    transformers_version: "4.46.0",
  });
  files.push(...writeCheckpointWeights(dir, tensors, { shards }));
  json("tokenizer.json", tokenizer.tokenizerJson);
  json("tokenizer_config.json", tokenizer.tokenizerConfig);
  const family = FAMILY_TOKENS[arch];
  json("special_tokens_map.json", Object.fromEntries(Object.entries({ bos_token: family.bos, eos_token: family.eos, pad_token: family.pad }).filter(([, v]) => v !== null)));
  return { dir, files, tokenizerIds: tokenizer.usedIds };
}
