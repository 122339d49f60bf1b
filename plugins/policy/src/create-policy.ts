/**
 * A Policy from a provider's wire client: the response cache, client-side rate limits, retries
 * with backoff, and accounting (tokens, latency, cost, retries) shared by every provider plugin.
 */
import type { KernelServices } from "@bdc/core";
import { cacheKey, ResponseCache } from "./cache.ts";
import type { PolicyConfig } from "./config.ts";
import { cacheMissError, callProvider, responseCacheDir, type CallContext } from "./provider-call.ts";
import { Limiter } from "./rate-limit.ts";
import { DEFAULT_RETRY, type RetryPolicy } from "./retry.ts";
import type { ChatMessage, Completion, Policy, ProviderClient, ProviderErrorKind, Sampling, Usage } from "./types.ts";

export interface PolicyOptions {
  readonly client: ProviderClient;
  readonly config: PolicyConfig;
  readonly kernel: KernelServices;
  /** What to tell the user for errors that retrying cannot fix (e.g. which env var holds the key). */
  readonly explain?: (kind: ProviderErrorKind) => string | undefined;
  /** Tests shorten the backoff. */
  readonly retry?: Partial<RetryPolicy>;
}

/** Characters per token, roughly, for the tokens-per-minute budget before the real count is known. */
const CHARS_PER_TOKEN = 4;

export function createPolicy(options: PolicyOptions): Policy & { stats(): Usage } {
  const { client, config, kernel } = options;
  const cacheDir = responseCacheDir(config.cache_dir, kernel);
  const cache = config.cache === "off" ? undefined : new ResponseCache(cacheDir);
  const limiter = new Limiter(config.concurrency, config.requests_per_minute, config.tokens_per_minute);
  const retry: RetryPolicy = { ...DEFAULT_RETRY, maxRetries: config.max_retries, ...options.retry };
  const totals = { calls: 0, cached: 0, failed: 0, retries: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0, latency_ms_total: 0 };
  const base: Sampling = { temperature: config.temperature, top_p: config.top_p, max_tokens: config.max_tokens, stop: config.stop, seed: config.seed };
  const cost = (input: number, output: number) => (input * config.price_input_per_million + output * config.price_output_per_million) / 1e6;
  const where = `policy instance "${kernel.instance}" (${client.provider}, model ${config.model})`;
  const call: CallContext = { limiter, retry, kernel, model: config.model, where, explain: options.explain, totals };

  return {
    name: kernel.instance,
    model: config.model,
    provider: client.provider,

    async complete(messages: ReadonlyArray<ChatMessage>, opts = {}): Promise<Completion> {
      const signal = opts.signal === undefined ? kernel.signal : AbortSignal.any([opts.signal, kernel.signal]);
      const sampling: Sampling = { ...base, ...opts.sampling };
      const all = config.system === undefined ? messages : [{ role: "system" as const, content: config.system }, ...messages];
      const keyed = { provider: client.provider, endpoint: client.endpoint, model: config.model, messages: all, sampling };
      const key = cacheKey(keyed);
      const t0 = performance.now();

      const hit = cache?.get(key);
      if (hit !== undefined) {
        const latencyMs = Math.round(performance.now() - t0);
        totals.calls++;
        totals.cached++;
        kernel.emit("llm.call", { model: config.model, cached: true, input_tokens: hit.inputTokens, output_tokens: hit.outputTokens, latency_ms: latencyMs, retries: 0, cost_usd: 0, key });
        return { text: hit.text, inputTokens: hit.inputTokens, outputTokens: hit.outputTokens, cached: true, latencyMs, retries: 0, costUsd: 0, finishReason: hit.finishReason, model: hit.model ?? config.model, ...(hit.composition === undefined ? {} : { composition: hit.composition }) };
      }
      if (config.cache === "read-only") {
        const last = [...all].reverse().find((m) => m.role === "user")?.content ?? "";
        throw cacheMissError(where, key, `last user message "${last}"`, cacheDir);
      }

      const estimate = Math.ceil(all.reduce((n, m) => n + m.content.length, 0) / CHARS_PER_TOKEN) + sampling.max_tokens;
      const outcome = await callProvider(call, signal, estimate, () =>
        client.send({ model: config.model, messages: all, sampling, stream: config.stream, timeoutMs: config.timeout_ms }, signal),
      );
      const r = outcome.value;
      limiter.spend(r.inputTokens + r.outputTokens);
      cache?.put(key, keyed, r);
      const latencyMs = Math.round(performance.now() - t0);
      const costUsd = cost(r.inputTokens, r.outputTokens);
      totals.calls++;
      totals.input_tokens += r.inputTokens;
      totals.output_tokens += r.outputTokens;
      totals.cost_usd += costUsd;
      totals.latency_ms_total += latencyMs;
      kernel.emit("llm.call", { model: r.model ?? config.model, cached: false, input_tokens: r.inputTokens, output_tokens: r.outputTokens, latency_ms: latencyMs, retries: outcome.retries, cost_usd: costUsd, key });
      return { text: r.text, inputTokens: r.inputTokens, outputTokens: r.outputTokens, cached: false, latencyMs, retries: outcome.retries, costUsd, finishReason: r.finishReason, model: r.model ?? config.model, ...(r.composition === undefined ? {} : { composition: r.composition }) };
    },

    usage: () => ({ ...totals, cost_usd: Math.round(totals.cost_usd * 1e6) / 1e6 }),
    stats() {
      return this.usage();
    },
  };
}
