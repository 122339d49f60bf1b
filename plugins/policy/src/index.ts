/**
 * @bdc/policy: what every remote-model plugin shares. A provider plugin implements a
 * ProviderClient (chat) or EmbeddingClient (embeddings) with its official SDK and calls
 * createPolicy or createEmbedder; it gets the response cache, retries, rate limits and
 * accounting for free.
 */
export * from "./types.ts";
export { policyFields, PolicyConfig, CacheMode, embedderFields, EmbedderConfig } from "./config.ts";
export { createPolicy } from "./create-policy.ts";
export { compositionHeatmapHtml } from "./composition-page.ts";
export type { PolicyOptions } from "./create-policy.ts";
export { createEmbedder, DIMENSION_PROBE } from "./create-embedder.ts";
export type { EmbedderOptions, EmbedderUsage } from "./create-embedder.ts";
export { apiKeyProblems } from "./api-key.ts";
export { cacheKey, canonicalJson, ResponseCache } from "./cache.ts";
export { backoffMs, parseRetryAfter, withRetries, DEFAULT_RETRY } from "./retry.ts";
export type { RetryPolicy } from "./retry.ts";
export { Limiter } from "./rate-limit.ts";
export { BUILTIN_PROMPTS_DIR, promptLibrary, renderTemplate, variablesOf } from "./prompts/templates.ts";
export type { PromptLibrary } from "./prompts/templates.ts";
