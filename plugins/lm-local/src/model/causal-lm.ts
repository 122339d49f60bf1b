/**
 * A Llama-family checkpoint loaded on ONNX Runtime: the model's forward pass with a KV cache,
 * its tokenizer and chat template. Generation, scoring and embeddings are built on `forward`.
 */
import * as path from "node:path";
import { BdcError, findProjectRoot } from "@bdc/core";
import { CUDA_INSTALL_HINT, cudaUnavailableReason, float32ToFloat16Bits, openSession, ort, type Device } from "@bdc/onnx-graph";
import { openCheckpointWeights, type CheckpointWeights } from "../checkpoint/safetensors.ts";
import { readModelConfig, type ModelConfig } from "../checkpoint/config.ts";
import { loadTokenizer, type LoadedTokenizer } from "../checkpoint/tokenizer.ts";
import { compiledKey, compiledModel } from "./compiled-cache.ts";
import { buildLlamaGraph, inputNames, MASKED } from "./llama-graph.ts";
import type { LoraSlots } from "./lora-slots.ts";

export interface LoadOptions {
  readonly device?: Device | undefined;
  readonly deviceId?: number | undefined;
  readonly threads?: number | undefined;
  /** Compute type; float16 is for CUDA (ONNX Runtime's CPU kernels are float32). */
  readonly dtype?: "float32" | "float16" | undefined;
  readonly lora?: LoraSlots | undefined;
  /** Where built ONNX models are kept (default: <project>/.cache/bdc/onnx, or $BDC_ONNX_CACHE). */
  readonly cacheDir?: string | undefined;
  /** Told about slow work (building the ONNX model). */
  readonly onProgress?: ((message: string) => void) | undefined;
}

/** Keys and values of every layer for the `length` positions seen so far. */
export interface KvCache {
  readonly batch: number;
  readonly length: number;
  readonly tensors: ReadonlyMap<string, ort.Tensor>;
}

export interface ForwardRequest {
  /** Token ids, batch-major [batch, seq]. */
  readonly ids: ReadonlyArray<ReadonlyArray<number>>;
  /** Positions [batch, seq] (default: cache length + 0..seq-1). */
  readonly positions?: ReadonlyArray<ReadonlyArray<number>> | undefined;
  /** allowed(b, query, key): may query position `query` (0..seq-1 of this call) look at key `key` (0..past+seq-1)? Default: causal. */
  readonly allowed?: ((b: number, query: number, key: number) => boolean) | undefined;
  readonly past?: KvCache | undefined;
  /** Positions of this call that get logits (default: the last). */
  readonly logitsAt?: ReadonlyArray<number> | undefined;
  /** LoRA slot tensors by input name (see lora-slots.ts). */
  readonly lora?: Readonly<Record<string, ort.Tensor>> | undefined;
}

export interface ForwardResult {
  /** [batch, logitsAt.length, vocab]. */
  readonly logits: Float32Array;
  /** Final-norm hidden states [batch, seq, hidden]. */
  readonly hidden: Float32Array;
  readonly cache: KvCache;
}

export function defaultOnnxCache(baseDir = process.cwd()): string {
  return process.env["BDC_ONNX_CACHE"] ?? path.join(findProjectRoot(baseDir), ".cache", "bdc", "onnx");
}

export class CausalLM {
  private constructor(
    readonly dir: string,
    readonly config: ModelConfig,
    readonly tokenizer: LoadedTokenizer,
    private readonly session: ort.InferenceSession,
    readonly options: LoadOptions,
    /** Where the built ONNX model is. */
    readonly modelPath: string,
  ) {}

  static async load(dir: string, options: LoadOptions = {}): Promise<CausalLM> {
    if (options.device === "cuda") {
      // Before building: an 8B model takes minutes to build, only to fail on opening.
      const reason = cudaUnavailableReason();
      if (reason !== undefined) throw new BdcError({ code: "BDC_DEVICE_UNAVAILABLE", message: `device: cuda was asked for the model ${dir}, but ${reason}`, hint: CUDA_INSTALL_HINT });
    }
    const config = readModelConfig(dir);
    const tokenizer = loadTokenizer(dir);
    const dtype = options.dtype ?? "float32";
    const graphOptions = { dtype, lora: options.lora };
    const cacheDir = options.cacheDir ?? defaultOnnxCache();
    // Weights are read lazily, while the model is written, so the reader stays open until then.
    let weights: CheckpointWeights | undefined;
    let compiled: { modelPath: string; built: boolean };
    try {
      compiled = compiledModel(
        cacheDir,
        compiledKey(dir, graphOptions),
        () => {
          options.onProgress?.(`building the ONNX graph of ${dir} (${config.numLayers} layers, ${dtype}) in ${cacheDir}`);
          weights = openCheckpointWeights(dir);
          return buildLlamaGraph(config, weights, graphOptions);
        },
        (done, total) => {
          if (done === total || done % 16 === 0) options.onProgress?.(`writing weights ${done}/${total}`);
        },
      );
    } finally {
      weights?.close();
    }
    const { modelPath, built } = compiled;
    if (built) options.onProgress?.(`built ${modelPath}`);
    const session = await openSession(modelPath, { device: options.device ?? "cpu", deviceId: options.deviceId, threads: options.threads });
    return new CausalLM(dir, config, tokenizer, session, options, modelPath);
  }

  get dtype(): "float32" | "float16" {
    return this.options.dtype ?? "float32";
  }

  emptyCache(batch: number): KvCache {
    const { numKvHeads, headDim, numLayers } = this.config;
    const tensors = new Map<string, ort.Tensor>();
    for (let i = 0; i < numLayers; i++) {
      tensors.set(inputNames.pastKey(i), this.floatTensor(new Float32Array(0), [batch, numKvHeads, 0, headDim]));
      tensors.set(inputNames.pastValue(i), this.floatTensor(new Float32Array(0), [batch, numKvHeads, 0, headDim]));
    }
    return { batch, length: 0, tensors };
  }

  async forward(request: ForwardRequest): Promise<ForwardResult> {
    const batch = request.ids.length;
    const seq = request.ids[0]?.length ?? 0;
    if (batch === 0 || seq === 0 || request.ids.some((row) => row.length !== seq)) throw new Error("forward: ids must be a non-empty rectangular [batch, seq] array");
    const past = request.past ?? this.emptyCache(batch);
    const total = past.length + seq;
    const ids = new BigInt64Array(batch * seq);
    const positions = new BigInt64Array(batch * seq);
    const bias = new Float32Array(batch * seq * total);
    const masked = MASKED[this.dtype];
    for (let b = 0; b < batch; b++) {
      for (let s = 0; s < seq; s++) {
        ids[b * seq + s] = BigInt(request.ids[b]![s]!);
        positions[b * seq + s] = BigInt(request.positions?.[b]?.[s] ?? past.length + s);
        for (let t = 0; t < total; t++) {
          const ok = request.allowed === undefined ? t <= past.length + s : request.allowed(b, s, t);
          if (!ok) bias[(b * seq + s) * total + t] = masked;
        }
      }
    }
    const logitsAt = request.logitsAt ?? [seq - 1];
    const feeds: Record<string, ort.Tensor> = {
      [inputNames.ids]: new ort.Tensor("int64", ids, [batch, seq]),
      [inputNames.positions]: new ort.Tensor("int64", positions, [batch, seq]),
      [inputNames.bias]: this.floatTensor(bias, [batch, 1, seq, total]),
      [inputNames.logitsIndex]: new ort.Tensor("int64", BigInt64Array.from(logitsAt.map(BigInt)), [logitsAt.length]),
      ...Object.fromEntries(past.tensors),
      ...request.lora,
    };
    const out = await this.session.run(feeds);
    const tensors = new Map<string, ort.Tensor>();
    for (let i = 0; i < this.config.numLayers; i++) {
      tensors.set(inputNames.pastKey(i), out[inputNames.presentKey(i)]!);
      tensors.set(inputNames.pastValue(i), out[inputNames.presentValue(i)]!);
    }
    return { logits: out["logits"]!.data as Float32Array, hidden: out["hidden"]!.data as Float32Array, cache: { batch, length: total, tensors } };
  }

  /** Graph inputs the caller must feed (LoRA slots among them). */
  get inputNames(): ReadonlyArray<string> {
    return this.session.inputNames;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }

  private floatTensor(data: Float32Array, dims: number[]): ort.Tensor {
    if (this.dtype === "float32") return new ort.Tensor("float32", data, dims);
    return new ort.Tensor("float16", float32ToFloat16Bits(data), dims);
  }
}
