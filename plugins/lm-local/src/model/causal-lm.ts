/**
 * A Llama-family checkpoint loaded on ONNX Runtime: the model's forward pass with a KV cache,
 * its tokenizer and chat template. Generation, scoring and embeddings are built on `forward`.
 */
import * as path from "node:path";
import { BdcError, findProjectRoot } from "@bdc/core";
import { deviceInstallHint, deviceUnavailableReason, DeviceUploader, float32ArrayToFloat16, openSession, ort, type Device } from "@bdc/onnx-graph";
import { openCheckpointWeights, type CheckpointWeights } from "../checkpoint/safetensors.ts";
import { readModelConfig, type ModelConfig } from "../checkpoint/config.ts";
import { loadTokenizer, type LoadedTokenizer } from "../checkpoint/tokenizer.ts";
import { compiledKey, compiledModel } from "./compiled-cache.ts";
import { moduleKey, projectionDims, loraScale, type LoraAdapter } from "../lora/adapter.ts";
import { isComposition, type Composition, type ExpertStack } from "../lora/composition.ts";
import { readPeftAdapter } from "../lora/peft.ts";
import { buildLlamaGraph, inputNames, MASKED } from "./llama-graph.ts";
import { LORA_SCALE_INPUT, loraInputNames, slotLayers, type LoraSlots } from "./lora-slots.ts";
import { CacheLease, prefix, regrow, ResidentTensors, type CacheArray, type CacheOwner, type KvCache, type ResidentKvCache } from "./kv-cache.ts";

export interface LoadOptions {
  readonly device?: Device | undefined;
  readonly deviceId?: number | undefined;
  readonly threads?: number | undefined;
  /** Compute type; float16 is for GPUs (ONNX Runtime's CPU kernels are float32). */
  readonly dtype?: "float32" | "float16" | undefined;
  /**
   * Where the KV cache lives between calls. `host` (default on CPU and CUDA): JS buffers the
   * graph's new rows are appended to, fed whole each call - the fast path on the CPU. `resident`
   * (default on WebGPU): the graph's whole present cache is fed back as ORT gave it, which on
   * WebGPU is a GPU buffer that never leaves the device. On the CPU, `resident` exists to test
   * the resident path against the host one.
   */
  readonly kvCache?: "host" | "resident" | undefined;
  /**
   * Copy each adapter's (or stack of experts') LoRA factors into the device's memory once, rather
   * than feeding them from the host every call (default: on WebGPU). On the CPU the copy exists
   * to test this path.
   */
  readonly uploadAdapters?: boolean | undefined;
  /**
   * Attention as plain ops (default: any mask) or `fused`: ONNX Runtime's GroupQueryAttention, one
   * kernel per layer (what a GPU's one-token steps gain from), causal attention only and a
   * resident cache. An option to measure (the device check compares both), not yet a default.
   */
  readonly attention?: "ops" | "fused" | undefined;
  /** LoRA slots to build into the graph; any adapter whose modules they cover is then given per call. */
  readonly lora?: LoraSlots | undefined;
  /** A PEFT LoRA adapter folder: its modules become the slots, and it is used by calls that bring no adapter. */
  readonly adapter?: string | undefined;
  /** Where built ONNX models are kept (default: <project>/.cache/bdc/onnx, or $BDC_ONNX_CACHE). */
  readonly cacheDir?: string | undefined;
  /** Told about slow work (building the ONNX model). */
  readonly onProgress?: ((message: string) => void) | undefined;
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
  /** Return the final-norm hidden states too (embeddings); by default only logits leave the device. */
  readonly hidden?: boolean | undefined;
  /** The adapter or composition of experts for this call (its modules must have slots in the graph); default: the load-time adapter, else none. */
  readonly adapter?: LoraAdapter | Composition | undefined;
}

export interface ForwardResult {
  /** [batch, logitsAt.length, vocab]. */
  readonly logits: Float32Array;
  /** Final-norm hidden states [batch, seq, hidden], when asked for. */
  readonly hidden: Float32Array | undefined;
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
    const device = options.device ?? "cpu";
    // Before building: an 8B model takes minutes to build, only to fail on opening.
    const reason = await deviceUnavailableReason(device, options.deviceId ?? 0);
    if (reason !== undefined) throw new BdcError({ code: "BDC_DEVICE_UNAVAILABLE", message: `device: ${device} was asked for the model ${dir}, but ${reason}`, hint: deviceInstallHint(device) });
    const config = readModelConfig(dir);
    const tokenizer = loadTokenizer(dir);
    const dtype = options.dtype ?? "float32";
    const adapter = options.adapter === undefined ? undefined : readPeftAdapter(options.adapter, config);
    if (adapter !== undefined && options.lora !== undefined) throw new BdcError({ code: "BDC_USAGE", message: "give either lora slots or an adapter, not both" });
    const attention = options.attention ?? "ops";
    if (attention === "fused" && options.kvCache === "host") throw new BdcError({ code: "BDC_USAGE", message: "fused attention keeps its cache as GroupQueryAttention lays it out: give kvCache resident (or leave it unset)" });
    const graphOptions = { dtype, lora: adapter === undefined ? options.lora : { targets: adapter.config.targets, layers: adapter.config.layers }, ...(attention === "fused" ? { attention } : {}) };
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
    const kvCache = options.kvCache ?? (device === "webgpu" || attention === "fused" ? "resident" : "host");
    const present = Array.from({ length: config.numLayers }, (_, i) => [inputNames.presentKey(i), inputNames.presentValue(i)]).flat();
    const session = await openSession(modelPath, { device, deviceId: options.deviceId, threads: options.threads, outputsOnDevice: kvCache === "resident" ? present : undefined });
    const lm = new CausalLM(dir, config, tokenizer, session, { ...options, kvCache }, modelPath, graphOptions.lora);
    if (options.uploadAdapters ?? device === "webgpu") lm.uploader = new DeviceUploader({ device, threads: 1 });
    lm.defaultAdapter = adapter;
    return lm;
  }

  /** The adapter of calls that bring none (the load-time `adapter` folder). */
  defaultAdapter: LoraAdapter | undefined;
  private factorCache = new WeakMap<object, Promise<Readonly<Record<string, ort.Tensor>>>>();
  private baseFeeds: Promise<Readonly<Record<string, ort.Tensor>>> | undefined;
  /** On WebGPU: copies LoRA factors onto the GPU once per adapter or stack of experts. */
  private uploader: DeviceUploader | undefined;

  /**
   * The slot inputs for `adapter` (undefined: the base model) or a composition of experts, for a
   * batch of `batch` rows. A slot the adapter does not adapt gets a rank-1 zero update; an adapted
   * module without a slot is an error. Graphs built with gates take ones for a plain adapter and
   * the composition's gates (the same for every row) for a composition.
   */
  async loraFeeds(adapter: LoraAdapter | Composition | undefined, batch = 1): Promise<Readonly<Record<string, ort.Tensor>>> {
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
    const factors = await this.factorFeeds(composition?.stack ?? plain);
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

  /**
   * A/B (and the scale) of every slot for an adapter or a stack of experts, cached per object; on
   * WebGPU uploaded once, so that a decode step feeds no LoRA weights from the host.
   */
  private factorFeeds(source: LoraAdapter | ExpertStack | undefined): Promise<Readonly<Record<string, ort.Tensor>>> {
    const cached = source === undefined ? this.baseFeeds : this.factorCache.get(source);
    if (cached !== undefined) return cached;
    const host = this.hostFactorFeeds(source);
    const uploader = this.uploader;
    const feeds = uploader === undefined ? Promise.resolve(host) : Promise.all(Object.entries(host).map(async ([name, t]) => [name, await uploader.upload(t)] as const)).then(Object.fromEntries);
    if (source === undefined) this.baseFeeds = feeds;
    else this.factorCache.set(source, feeds);
    // A failed upload is not kept: the next call tries again.
    feeds.catch(() => (source === undefined ? (this.baseFeeds = undefined) : this.factorCache.delete(source)));
    return feeds;
  }

  private hostFactorFeeds(source: LoraAdapter | ExpertStack | undefined): Readonly<Record<string, ort.Tensor>> {
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
    return feeds;
  }

  get dtype(): "float32" | "float16" {
    return this.options.dtype ?? "float32";
  }

  /** Attention by GroupQueryAttention (LoadOptions.attention). */
  get fused(): boolean {
    return this.options.attention === "fused";
  }

  /** Where the KV cache lives between calls (see LoadOptions.kvCache). */
  get kvCache(): "host" | "resident" {
    return this.options.kvCache ?? "host";
  }

  emptyCache(batch: number): KvCache {
    if (this.kvCache === "resident") {
      // Fused attention's cache is head-major ([B, kvH, P, D], GroupQueryAttention's layout).
      const dims = this.fused ? [batch, this.config.numKvHeads, 0, this.config.headDim] : [batch, 0, this.config.numKvHeads, this.config.headDim];
      const layers = Array.from({ length: this.config.numLayers }, () => this.floatTensor(this.cacheArray(0), dims));
      return this.residentCache(batch, 0, new ResidentTensors(layers, layers, this.owner));
    }
    const layers = Array.from({ length: this.config.numLayers }, () => this.cacheArray(0));
    return { kind: "host", batch, length: 0, capacity: 0, keys: layers, values: layers };
  }

  /** A second handle on `cache`, to continue it another way (a copy on the host; shared device tensors when resident). */
  forkCache(cache: KvCache): KvCache {
    if (cache.kind === "host") return { ...cache, keys: cache.keys.map((a) => a.slice()), values: cache.values.map((a) => a.slice()) };
    const tensors = cache.lease.peek();
    tensors.retain();
    return this.residentCache(cache.batch, cache.length, tensors);
  }

  /** Frees a cache that will not be continued (GPU memory at once, rather than when it is garbage collected). */
  releaseCache(cache: KvCache): void {
    if (cache.kind === "resident" && cache.lease.isLive) cache.lease.take().release();
  }

  async forward(request: ForwardRequest): Promise<ForwardResult> {
    const batch = request.ids.length;
    const seq = request.ids[0]?.length ?? 0;
    if (batch === 0 || seq === 0 || request.ids.some((row) => row.length !== seq)) throw new Error("forward: ids must be a non-empty rectangular [batch, seq] array");
    const past = request.past ?? this.emptyCache(batch);
    if (past.kind !== this.kvCache) throw new BdcError({ code: "BDC_USAGE", message: `forward: a ${past.kind} KV cache was given to a model whose cache is ${this.kvCache}` });
    if (past.batch !== batch) throw new BdcError({ code: "BDC_USAGE", message: `forward: the cache holds ${past.batch} rows, the call ${batch}` });
    const total = past.length + seq;
    if (this.fused && request.allowed !== undefined) {
      throw new BdcError({ code: "BDC_USAGE", message: `${this.dir} was loaded with fused attention, which is causal only; this call brings its own mask (padding or packed rows)`, hint: "load the model with attention: ops for masked batches (embeddings, packed scoring)" });
    }
    if (this.fused && batch > 1 && seq > 1 && past.length > 0) {
      throw new BdcError({ code: "BDC_USAGE", message: `fused attention continues a cache of ${batch} rows one token at a time only (GroupQueryAttention's rule); this call brings ${seq} tokens per row`, hint: "feed the tokens one step at a time, or load the model with attention: ops" });
    }
    const ids = new BigInt64Array(batch * seq);
    const positions = new BigInt64Array(batch * seq);
    for (let b = 0; b < batch; b++) {
      for (let s = 0; s < seq; s++) {
        ids[b * seq + s] = BigInt(request.ids[b]![s]!);
        positions[b * seq + s] = BigInt(request.positions?.[b]?.[s] ?? past.length + s);
      }
    }
    const logitsAt = request.logitsAt ?? [seq - 1];
    const feeds: Record<string, ort.Tensor> = {
      [inputNames.ids]: new ort.Tensor("int64", ids, [batch, seq]),
      [inputNames.positions]: new ort.Tensor("int64", positions, [batch, seq]),
      [inputNames.logitsIndex]: new ort.Tensor("int64", BigInt64Array.from(logitsAt.map(BigInt)), [logitsAt.length]),
      ...(await this.loraFeeds(request.adapter ?? this.defaultAdapter, batch)),
    };
    if (this.fused) {
      // GroupQueryAttention's lengths: every row holds `total` positions; its mask is causal.
      feeds[inputNames.seqlensK] = new ort.Tensor("int32", new Int32Array(batch).fill(total - 1), [batch]);
      feeds[inputNames.totalLength] = new ort.Tensor("int32", Int32Array.of(total), []);
    } else feeds[inputNames.bias] = this.floatTensor(attentionBias(request, batch, seq, past.length, MASKED[this.dtype]), [batch, 1, seq, total]);
    const L = this.config.numLayers;
    if (past.kind === "resident") {
      // Always the same outputs, in graph order (see llama-graph's outputRank): onnxruntime-node's
      // IO binding keeps outputs bound from one run to the next. Hidden states come to the host
      // every call (a row per token: small next to the run).
      const fetches = ["logits", "hidden"];
      const pastTensors = past.lease.take();
      try {
        const { keys, values } = pastTensors.get();
        for (let i = 0; i < L; i++) {
          feeds[inputNames.pastKey(i)] = keys[i]!;
          feeds[inputNames.pastValue(i)] = values[i]!;
        }
        for (let i = 0; i < L; i++) fetches.push(inputNames.presentKey(i), inputNames.presentValue(i));
        const out = await this.run(feeds, fetches, request, batch);
        const present = new ResidentTensors(
          Array.from({ length: L }, (_, i) => out[inputNames.presentKey(i)]!),
          Array.from({ length: L }, (_, i) => out[inputNames.presentValue(i)]!),
          this.owner,
        );
        return { logits: out["logits"]!.data as Float32Array, hidden: request.hidden === true ? (out["hidden"]!.data as Float32Array) : undefined, cache: this.residentCache(batch, total, present) };
      } finally {
        pastTensors.release();
      }
    }
    // Only what the caller uses leaves the session: logits, the cache's new rows, hidden states if asked.
    const fetches = ["logits", ...(request.hidden === true ? ["hidden"] : [])];
    const rowSize = this.config.numKvHeads * this.config.headDim;
    const pastDims = [batch, past.length, this.config.numKvHeads, this.config.headDim];
    for (let i = 0; i < L; i++) {
      feeds[inputNames.pastKey(i)] = this.floatTensor(prefix(past.keys[i]!, batch, past.capacity, past.length, rowSize), pastDims);
      feeds[inputNames.pastValue(i)] = this.floatTensor(prefix(past.values[i]!, batch, past.capacity, past.length, rowSize), pastDims);
      fetches.push(inputNames.newKey(i), inputNames.newValue(i));
    }
    const out = await this.run(feeds, fetches, request, batch);
    const capacity = total <= past.capacity ? past.capacity : Math.max(total + 256, past.capacity * 2);
    const append = (buffers: ReadonlyArray<CacheArray>, name: (i: number) => string) =>
      buffers.map((buffer, i) => {
        const grown = capacity === past.capacity ? buffer : regrow(buffer, this.cacheArray(batch * capacity * rowSize), batch, past.capacity, capacity, past.length, rowSize);
        const rows = out[name(i)]!.data as CacheArray;
        for (let b = 0; b < batch; b++) grown.set(rows.subarray(b * seq * rowSize, (b + 1) * seq * rowSize), (b * capacity + past.length) * rowSize);
        return grown;
      });
    const cache: KvCache = { kind: "host", batch, length: total, capacity, keys: append(past.keys, inputNames.newKey), values: append(past.values, inputNames.newValue) };
    return { logits: out["logits"]!.data as Float32Array, hidden: out["hidden"]?.data as Float32Array | undefined, cache };
  }

  /**
   * One run. Should the device refuse the LoRA factors uploaded to it (they come from another
   * session; onnxruntime-node's GPU-buffer feeds are new), the run is repeated with the factors
   * fed from the host, and so are later ones: said once, and still on the device.
   */
  private async run(feeds: Record<string, ort.Tensor>, fetches: ReadonlyArray<string>, request: ForwardRequest, batch: number): Promise<ort.InferenceSession.ReturnType> {
    try {
      return await this.session.run(feeds, fetches);
    } catch (e) {
      if (this.uploader === undefined || this.slots === undefined) throw e;
      this.options.onProgress?.(`warning: ${this.options.device ?? "cpu"} refused the LoRA factors uploaded to it (${(e as Error).message.split("\n")[0]}); they are fed from the host on every call from now on`);
      const uploader = this.uploader;
      this.uploader = undefined;
      this.factorCache = new WeakMap();
      this.baseFeeds = undefined;
      await uploader.dispose();
      return await this.session.run({ ...feeds, ...(await this.loraFeeds(request.adapter ?? this.defaultAdapter, batch)) }, fetches);
    }
  }

  private readonly liveCaches = new Set<WeakRef<ResidentTensors>>();
  private readonly owner: CacheOwner = { alive: true };

  private residentCache(batch: number, length: number, tensors: ResidentTensors): ResidentKvCache {
    this.liveCaches.add(new WeakRef(tensors));
    if (this.liveCaches.size > 1024) for (const r of this.liveCaches) if (r.deref() === undefined) this.liveCaches.delete(r);
    return { kind: "resident", batch, length, lease: new CacheLease(tensors) };
  }

  /** Graph inputs the caller must feed (LoRA slots among them). */
  get inputNames(): ReadonlyArray<string> {
    return this.session.inputNames;
  }

  async dispose(): Promise<void> {
    // Device memory first, while the session's GPU context is alive: caches still held, uploads.
    for (const r of this.liveCaches) r.deref()?.releaseAll();
    this.liveCaches.clear();
    this.owner.alive = false;
    await this.uploader?.dispose();
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

/** [batch, 1, seq, past + seq]: 0 where a query may look, `masked` where not (causal unless the request says). */
function attentionBias(request: ForwardRequest, batch: number, seq: number, past: number, masked: number): Float32Array {
  const total = past + seq;
  const bias = new Float32Array(batch * seq * total);
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s < seq; s++) {
      for (let t = 0; t < total; t++) {
        const ok = request.allowed === undefined ? t <= past + s : request.allowed(b, s, t);
        if (!ok) bias[(b * seq + s) * total + t] = masked;
      }
    }
  }
  return bias;
}
