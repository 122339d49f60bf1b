/**
 * A Llama-family checkpoint loaded on ONNX Runtime: the model's forward pass with a KV cache,
 * its tokenizer and chat template. Generation, scoring and embeddings are built on `forward`.
 */
import * as path from "node:path";
import { BdcError, findProjectRoot } from "@bdc/core";
import { CUDA_INSTALL_HINT, cudaUnavailableReason, float32ArrayToFloat16, openSession, ort, type Device } from "@bdc/onnx-graph";
import { openCheckpointWeights, type CheckpointWeights } from "../checkpoint/safetensors.ts";
import { readModelConfig, type ModelConfig } from "../checkpoint/config.ts";
import { loadTokenizer, type LoadedTokenizer } from "../checkpoint/tokenizer.ts";
import { compiledKey, compiledModel } from "./compiled-cache.ts";
import { moduleKey, projectionDims, loraScale, type LoraAdapter } from "../lora/adapter.ts";
import { isComposition, type Composition, type ExpertStack } from "../lora/composition.ts";
import { readPeftAdapter } from "../lora/peft.ts";
import { buildLlamaGraph, inputNames, MASKED } from "./llama-graph.ts";
import { LORA_SCALE_INPUT, loraInputNames, slotLayers, type LoraSlots } from "./lora-slots.ts";

export interface LoadOptions {
  readonly device?: Device | undefined;
  readonly deviceId?: number | undefined;
  readonly threads?: number | undefined;
  /** Compute type; float16 is for CUDA (ONNX Runtime's CPU kernels are float32). */
  readonly dtype?: "float32" | "float16" | undefined;
  /** LoRA slots to build into the graph; any adapter whose modules they cover is then given per call. */
  readonly lora?: LoraSlots | undefined;
  /** A PEFT LoRA adapter folder: its modules become the slots, and it is used by calls that bring no adapter. */
  readonly adapter?: string | undefined;
  /** Where built ONNX models are kept (default: <project>/.cache/bdc/onnx, or $BDC_ONNX_CACHE). */
  readonly cacheDir?: string | undefined;
  /** Told about slow work (building the ONNX model). */
  readonly onProgress?: ((message: string) => void) | undefined;
}

type CacheArray = Float32Array | Uint16Array;

/**
 * Keys and values of every layer for the `length` positions seen so far, position-major
 * ([batch, capacity, kvH, D] buffers). `forward` appends to the buffers in place and returns the
 * longer cache, so a cache is consumed by the call that extends it; `forkCache` copies one to
 * continue it two ways.
 */
export interface KvCache {
  readonly batch: number;
  readonly length: number;
  readonly capacity: number;
  readonly keys: ReadonlyArray<CacheArray>;
  readonly values: ReadonlyArray<CacheArray>;
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
  /** The adapter or composition of experts for this call (its modules must have slots in the graph); default: the load-time adapter, else none. */
  readonly adapter?: LoraAdapter | Composition | undefined;
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
    /** The LoRA slots built into the graph. */
    readonly slots: LoraSlots | undefined,
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
    const adapter = options.adapter === undefined ? undefined : readPeftAdapter(options.adapter, config);
    if (adapter !== undefined && options.lora !== undefined) throw new BdcError({ code: "BDC_USAGE", message: "give either lora slots or an adapter, not both" });
    const graphOptions = { dtype, lora: adapter === undefined ? options.lora : { targets: adapter.config.targets, layers: adapter.config.layers } };
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
          // A line per quarter: an 8B model takes minutes here, a tiny one milliseconds.
          if (Math.floor((done * 4) / total) > Math.floor(((done - 1) * 4) / total)) options.onProgress?.(`writing weights: ${done}/${total} tensors`);
        },
      );
    } finally {
      weights?.close();
    }
    const { modelPath, built } = compiled;
    if (built) options.onProgress?.(`built ${modelPath}`);
    const session = await openSession(modelPath, { device: options.device ?? "cpu", deviceId: options.deviceId, threads: options.threads });
    const lm = new CausalLM(dir, config, tokenizer, session, options, modelPath, graphOptions.lora);
    lm.defaultAdapter = adapter;
    return lm;
  }

  /** The adapter of calls that bring none (the load-time `adapter` folder). */
  defaultAdapter: LoraAdapter | undefined;
  private readonly factorCache = new WeakMap<object, Readonly<Record<string, ort.Tensor>>>();
  private baseFeeds: Readonly<Record<string, ort.Tensor>> | undefined;

  /**
   * The slot inputs for `adapter` (undefined: the base model) or a composition of experts, for a
   * batch of `batch` rows. A slot the adapter does not adapt gets a rank-1 zero update; an adapted
   * module without a slot is an error. Graphs built with gates take ones for a plain adapter and
   * the composition's gates (the same for every row) for a composition.
   */
  loraFeeds(adapter: LoraAdapter | Composition | undefined, batch = 1): Readonly<Record<string, ort.Tensor>> {
    if (this.slots === undefined) {
      if (adapter !== undefined) throw new BdcError({ code: "BDC_ADAPTER_SLOTS", message: `${this.dir} was loaded without LoRA slots; an adapter cannot be applied`, hint: "load the model with the adapter (adapter: DIR) or with lora slots covering its modules" });
      return {};
    }
    const slots = this.slots;
    const composition = adapter !== undefined && isComposition(adapter) ? adapter : undefined;
    if (composition !== undefined && slots.gates !== true) {
      throw new BdcError({ code: "BDC_ADAPTER_SLOTS", message: `${this.dir} was loaded without gated LoRA slots; a composition of experts cannot be applied`, hint: "load the model with lora slots { gates: true } covering the experts' modules" });
    }
    const plain = composition === undefined ? (adapter as LoraAdapter | undefined) : undefined;
    const factors = this.factorFeeds(composition?.stack ?? plain);
    if (slots.gates !== true) return factors;
    const feeds: Record<string, ort.Tensor> = { ...factors };
    if (composition !== undefined) feeds[LORA_SCALE_INPUT] = this.floatTensor(Float32Array.of(composition.scale), [1]);
    for (const layer of slotLayers(slots, this.config.numLayers)) {
      for (const target of slots.targets) {
        const key = moduleKey(layer, target);
        const R = factors[loraInputNames(layer, target).a]!.dims[0]!;
        const gates = new Float32Array(batch * R);
        const g = composition?.gates.get(key);
        if (composition !== undefined && composition.stack.modules.has(key)) {
          if (g === undefined || g.length !== R) throw new BdcError({ code: "BDC_COMPOSITION", message: `the composition has ${g?.length ?? "no"} gates for layer ${layer} ${target}; its ${composition.stack.experts.length} experts of rank ${composition.stack.rank} need ${R}` });
          for (let b = 0; b < batch; b++) gates.set(g, b * R);
        } else gates.fill(1);
        feeds[loraInputNames(layer, target).gates] = this.floatTensor(gates, [batch, 1, R]);
      }
    }
    return feeds;
  }

  /** A/B (and the scale) of every slot for an adapter or a stack of experts, cached per object. */
  private factorFeeds(source: LoraAdapter | ExpertStack | undefined): Readonly<Record<string, ort.Tensor>> {
    const cached = source === undefined ? this.baseFeeds : this.factorCache.get(source);
    if (cached !== undefined) return cached;
    const slots = this.slots!;
    const layers = slotLayers(slots, this.config.numLayers);
    const isStack = source !== undefined && "experts" in source;
    const sourceTargets = source === undefined ? [] : isStack ? source.targets : source.config.targets;
    const sourceLayers = source === undefined ? [] : isStack ? source.layers : source.config.layers;
    for (const layer of sourceLayers) {
      for (const target of sourceTargets) {
        if (!layers.includes(layer) || !slots.targets.includes(target)) {
          throw new BdcError({
            code: "BDC_ADAPTER_SLOTS",
            message: `the ${isStack ? "experts adapt" : "adapter adapts"} layer ${layer} ${target}, but ${this.dir} was loaded with LoRA slots on ${slots.targets.join(", ")} of layers ${layers.join(", ")}`,
            hint: "load the model with slots covering the adapter's target modules and layers",
          });
        }
      }
    }
    const dims = projectionDims(this.config);
    const rank = source === undefined ? 1 : isStack ? source.rank * source.experts.length : source.config.rank;
    const scale = source === undefined || isStack ? 0 : loraScale(source.config);
    const feeds: Record<string, ort.Tensor> = { [LORA_SCALE_INPUT]: this.floatTensor(Float32Array.of(scale), [1]) };
    for (const layer of layers) {
      for (const target of slots.targets) {
        const names = loraInputNames(layer, target);
        const m = source?.modules.get(moduleKey(layer, target));
        const [inDim, outDim] = dims[target];
        const r = m === undefined ? 1 : rank;
        feeds[names.a] = this.floatTensor(m?.A ?? new Float32Array(inDim), [r, inDim]);
        feeds[names.b] = this.floatTensor(m?.B ?? new Float32Array(outDim), [outDim, r]);
      }
    }
    if (source === undefined) this.baseFeeds = feeds;
    else this.factorCache.set(source, feeds);
    return feeds;
  }

  get dtype(): "float32" | "float16" {
    return this.options.dtype ?? "float32";
  }

  emptyCache(batch: number): KvCache {
    const layers = Array.from({ length: this.config.numLayers }, () => this.cacheArray(0));
    return { batch, length: 0, capacity: 0, keys: layers, values: layers };
  }

  forkCache(cache: KvCache): KvCache {
    return { ...cache, keys: cache.keys.map((a) => a.slice()), values: cache.values.map((a) => a.slice()) };
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
      ...this.loraFeeds(request.adapter ?? this.defaultAdapter, batch),
    };
    const rowSize = this.config.numKvHeads * this.config.headDim;
    const pastDims = [batch, past.length, this.config.numKvHeads, this.config.headDim];
    for (let i = 0; i < this.config.numLayers; i++) {
      feeds[inputNames.pastKey(i)] = this.floatTensor(prefix(past.keys[i]!, batch, past.capacity, past.length, rowSize), pastDims);
      feeds[inputNames.pastValue(i)] = this.floatTensor(prefix(past.values[i]!, batch, past.capacity, past.length, rowSize), pastDims);
    }
    const out = await this.session.run(feeds);
    const capacity = total <= past.capacity ? past.capacity : Math.max(total + 256, past.capacity * 2);
    const append = (buffers: ReadonlyArray<CacheArray>, name: (i: number) => string) =>
      buffers.map((buffer, i) => {
        const grown = capacity === past.capacity ? buffer : regrow(buffer, this.cacheArray(batch * capacity * rowSize), batch, past.capacity, capacity, past.length, rowSize);
        const rows = out[name(i)]!.data as CacheArray;
        for (let b = 0; b < batch; b++) grown.set(rows.subarray(b * seq * rowSize, (b + 1) * seq * rowSize), (b * capacity + past.length) * rowSize);
        return grown;
      });
    const cache: KvCache = { batch, length: total, capacity, keys: append(past.keys, inputNames.newKey), values: append(past.values, inputNames.newValue) };
    return { logits: out["logits"]!.data as Float32Array, hidden: out["hidden"]!.data as Float32Array, cache };
  }

  /** Graph inputs the caller must feed (LoRA slots among them). */
  get inputNames(): ReadonlyArray<string> {
    return this.session.inputNames;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }

  private cacheArray(length: number): CacheArray {
    return this.dtype === "float32" ? new Float32Array(length) : new Uint16Array(length);
  }

  /** A float tensor in the compute type; cache arrays already are in it. */
  private floatTensor(data: CacheArray, dims: number[]): ort.Tensor {
    if (this.dtype === "float32") return new ort.Tensor("float32", data as Float32Array, dims);
    return new ort.Tensor("float16", data instanceof Uint16Array ? data : float32ArrayToFloat16(data), dims);
  }
}

/** The first `length` positions of each sequence: a view for one sequence, a copy for a batch. */
function prefix(buffer: CacheArray, batch: number, capacity: number, length: number, rowSize: number): CacheArray {
  if (batch === 1 || length === capacity) return buffer.subarray(0, batch * length * rowSize);
  const out = buffer instanceof Float32Array ? new Float32Array(batch * length * rowSize) : new Uint16Array(batch * length * rowSize);
  for (let b = 0; b < batch; b++) out.set(buffer.subarray(b * capacity * rowSize, (b * capacity + length) * rowSize), b * length * rowSize);
  return out;
}

function regrow(buffer: CacheArray, into: CacheArray, batch: number, oldCapacity: number, capacity: number, length: number, rowSize: number): CacheArray {
  for (let b = 0; b < batch; b++) into.set(buffer.subarray(b * oldCapacity * rowSize, (b * oldCapacity + length) * rowSize), b * capacity * rowSize);
  return into;
}
