/**
 * An Encoder from a provider's embeddings client, on the same layer as createPolicy: the
 * response cache (one entry per text, so a rerun or a grown dataset only pays for new texts),
 * client-side rate limits, retries with backoff, and accounting (texts, tokens, latency, cost).
 *
 * Vectors come back L2-normalised whatever the server does (OpenAI's are already; Ollama's and
 * some vLLM pooling modes are not), because the encoder slot promises unit length.
 */
import type { KernelServices } from "@bdc/core";
import { BdcError } from "@bdc/core";
import { cacheKey, ResponseCache } from "./cache.ts";
import type { EmbedderConfig } from "./config.ts";
import { cacheMissError, callProvider, responseCacheDir, type CallContext } from "./provider-call.ts";
import { Limiter } from "./rate-limit.ts";
import { DEFAULT_RETRY, type RetryPolicy } from "./retry.ts";
import type { EmbeddingClient, Encoder, ProviderErrorKind } from "./types.ts";

export interface EmbedderOptions {
  readonly client: EmbeddingClient;
  readonly config: EmbedderConfig;
  readonly kernel: KernelServices;
  readonly explain?: (kind: ProviderErrorKind) => string | undefined;
  readonly retry?: Partial<RetryPolicy>;
}

export interface EmbedderUsage {
  readonly calls: number;
  readonly texts: number;
  readonly cached: number;
  readonly failed: number;
  readonly retries: number;
  readonly input_tokens: number;
  readonly cost_usd: number;
  readonly latency_ms_total: number;
}

/** A cached vector: float32 little-endian, base64 (a third of the size of JSON numbers, and exact). */
interface CachedVector {
  readonly vector: string;
  readonly dimension: number;
  readonly model?: string | undefined;
}

const isCachedVector = (r: unknown): r is CachedVector => typeof (r as CachedVector | undefined)?.vector === "string" && Number.isInteger((r as CachedVector).dimension);

const encodeVector = (v: Float32Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");

function decodeVector(entry: CachedVector): Float32Array | undefined {
  const bytes = Buffer.from(entry.vector, "base64");
  if (bytes.length !== entry.dimension * 4) return undefined;
  const out = new Float32Array(entry.dimension);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** Characters per token, roughly, for the tokens-per-minute budget before the real count is known. */
const CHARS_PER_TOKEN = 4;

/** The text the dimension is probed with when `dimensions` is not set (cached like any other). */
export const DIMENSION_PROBE = "dimension probe";

export async function createEmbedder(options: EmbedderOptions): Promise<Encoder & { stats(): EmbedderUsage }> {
  const { client, config, kernel } = options;
  const cacheDir = responseCacheDir(config.cache_dir, kernel);
  const cache = config.cache === "off" ? undefined : new ResponseCache<CachedVector>(cacheDir, isCachedVector);
  const limiter = new Limiter(config.concurrency, config.requests_per_minute, config.tokens_per_minute);
  const retry: RetryPolicy = { ...DEFAULT_RETRY, maxRetries: config.max_retries, ...options.retry };
  const totals = { calls: 0, texts: 0, cached: 0, failed: 0, retries: 0, input_tokens: 0, cost_usd: 0, latency_ms_total: 0 };
  const where = `encoder instance "${kernel.instance}" (${client.provider}, model ${config.model})`;
  const call: CallContext = { limiter, retry, kernel, model: config.model, where, explain: options.explain, totals };
  const requestOf = (input: string) => ({ kind: "embedding", provider: client.provider, endpoint: client.endpoint, model: config.model, dimensions: config.dimensions, input });
  const keyOf = (input: string) => cacheKey(requestOf(input));
  let dimension = config.dimensions;

  /** Checks and normalises one returned vector; the first one fixes the dimension when it was not configured. */
  function unit(v: Float32Array, text: string): Float32Array {
    dimension ??= v.length;
    if (v.length !== dimension) {
      throw new BdcError({
        code: "BDC_ENCODER_DIMENSION",
        message: `${where}: returned a vector of ${v.length} values, expected ${dimension}${config.dimensions === undefined ? " (the dimension the first vector had)" : " (dimensions)"}`,
        hint: config.dimensions === undefined ? "the server changed models mid-run? set dimensions to the size you expect" : "this model may not support dimensions; remove it to use the model's own size",
      });
    }
    let sq = 0;
    for (const x of v) sq += x * x;
    if (!Number.isFinite(sq) || sq === 0) {
      throw new BdcError({
        code: "BDC_ENCODER_OUTPUT",
        message: `${where}: returned ${Number.isFinite(sq) ? "an all-zero vector" : "a vector with non-finite values"} for "${text.slice(0, 80)}${text.length > 80 ? "..." : ""}"`,
        hint: "the server's model or pooling is broken for this input; check it with a direct request",
      });
    }
    const inv = 1 / Math.sqrt(sq);
    return v.map((x) => x * inv);
  }

  async function send(batch: ReadonlyArray<string>, signal: AbortSignal): Promise<Float32Array[]> {
    const t0 = performance.now();
    const estimate = Math.ceil(batch.reduce((n, t) => n + t.length, 0) / CHARS_PER_TOKEN);
    const outcome = await callProvider(call, signal, estimate, () => client.embed({ model: config.model, input: batch, dimensions: config.dimensions, timeoutMs: config.timeout_ms }, signal));
    const r = outcome.value;
    if (r.vectors.length !== batch.length) {
      throw new BdcError({ code: "BDC_ENCODER_OUTPUT", message: `${where}: asked for ${batch.length} embeddings, got ${r.vectors.length}`, hint: "the server dropped inputs; lower batch_size" });
    }
    const vectors = r.vectors.map((v, i) => unit(v, batch[i]!));
    limiter.spend(r.inputTokens);
    const latencyMs = Math.round(performance.now() - t0);
    const costUsd = (r.inputTokens * config.price_input_per_million) / 1e6;
    totals.calls++;
    totals.texts += batch.length;
    totals.input_tokens += r.inputTokens;
    totals.cost_usd += costUsd;
    totals.latency_ms_total += latencyMs;
    kernel.emit("llm.embed", { model: r.model ?? config.model, texts: batch.length, input_tokens: r.inputTokens, latency_ms: latencyMs, retries: outcome.retries, cost_usd: costUsd });
    batch.forEach((text, i) => cache?.put(keyOf(text), requestOf(text), { vector: encodeVector(vectors[i]!), dimension: vectors[i]!.length, model: r.model }));
    return vectors;
  }

  async function embed(texts: ReadonlyArray<string>, opts: { readonly signal?: AbortSignal } = {}): Promise<Float32Array[]> {
    const signal = opts.signal === undefined ? kernel.signal : AbortSignal.any([opts.signal, kernel.signal]);
    const found = new Map<string, Float32Array>();
    const missing: string[] = [];
    for (const text of new Set(texts)) {
      const hit = cache?.get(keyOf(text));
      const vector = hit === undefined ? undefined : decodeVector(hit);
      if (vector !== undefined && (dimension === undefined || vector.length === dimension)) {
        dimension ??= vector.length;
        found.set(text, vector);
      } else missing.push(text);
    }
    totals.cached += texts.filter((t) => found.has(t)).length;
    if (missing.length > 0 && config.cache === "read-only") throw cacheMissError(where, keyOf(missing[0]!), `text "${missing[0]!}"`, cacheDir);
    const batches: string[][] = [];
    for (let i = 0; i < missing.length; i += config.batch_size) batches.push(missing.slice(i, i + config.batch_size));
    // Batches go out together; the limiter holds them to `concurrency` and the per-minute budgets.
    const results = await Promise.all(batches.map((b) => send(b, signal)));
    batches.forEach((b, i) => b.forEach((text, j) => found.set(text, results[i]![j]!)));
    return texts.map((t) => found.get(t)!);
  }

  if (dimension === undefined) await embed([DIMENSION_PROBE]);
  return {
    name: kernel.instance,
    model: config.model,
    get dimension() {
      return dimension!;
    },
    embed,
    stats: () => ({ ...totals, cost_usd: Math.round(totals.cost_usd * 1e6) / 1e6 }),
  };
}
