/**
 * The config keys every remote-model plugin shares. Provider plugins spread `policyFields` (a
 * policy LLM) or `embedderFields` (an encoder over an embeddings endpoint) into their
 * Schema.Struct and add their own (`baseURL`, `host`, ...).
 */
import { Schema } from "effect";
import { FilePath, option, optional, required } from "@bdc/core";

const NonNegative = Schema.Number.pipe(Schema.nonNegative());
const PositiveInt = Schema.Int.pipe(Schema.positive());

export const CacheMode = Schema.Literal("read-write", "read-only", "off");
export type CacheMode = Schema.Schema.Type<typeof CacheMode>;

/** Transport: timeouts, retries, rate limits, input price, the response cache. */
const serviceFields = {
  timeout_ms: option(PositiveInt, 120_000, "per request; a timed-out request is retried"),
  max_retries: option(Schema.Int.pipe(Schema.nonNegative()), 6, "retries on 429, 5xx, timeouts and connection errors (exponential backoff with jitter, honouring Retry-After)"),
  concurrency: option(PositiveInt, 8, "requests in flight at once"),
  requests_per_minute: optional(PositiveInt, "client-side request rate limit"),
  tokens_per_minute: optional(PositiveInt, "client-side token rate limit (input + output)"),
  price_input_per_million: option(NonNegative, 0, "USD per million input tokens (cost accounting)"),
  cache: option(CacheMode, "read-write", "response cache: read-write, read-only (replay: a miss is an error), off"),
  cache_dir: optional(FilePath, "cache folder (default: .cache/bdc/responses under the project root)"),
} as const;

export const policyFields = {
  model: required(Schema.String.pipe(Schema.minLength(1)), "model name as the provider spells it"),
  temperature: option(Schema.Number.pipe(Schema.between(0, 2)), 0, "sampling temperature; 0 = greedy, as in the paper"),
  top_p: optional(Schema.Number.pipe(Schema.between(0, 1)), "nucleus sampling mass"),
  max_tokens: option(PositiveInt, 1024, "most tokens to generate per call"),
  stop: optional(Schema.Array(Schema.String), "stop sequences"),
  seed: optional(Schema.Int, "sampling seed, where the provider supports one"),
  system: optional(Schema.String, "system prompt put before every conversation"),
  stream: option(Schema.Boolean, false, "stream the response (same result; the provider's streaming protocol)"),
  ...serviceFields,
  price_output_per_million: option(NonNegative, 0, "USD per million output tokens (cost accounting)"),
} as const;

export const PolicyConfig = Schema.Struct(policyFields);
export type PolicyConfig = Schema.Schema.Type<typeof PolicyConfig>;

export const embedderFields = {
  model: required(Schema.String.pipe(Schema.minLength(1)), "embedding model name as the provider spells it"),
  dimensions: optional(PositiveInt, "ask for vectors of this size (models that support it, e.g. text-embedding-3-*); default: the model's own, probed once"),
  batch_size: option(PositiveInt, 64, "texts per request"),
  ...serviceFields,
} as const;

export const EmbedderConfig = Schema.Struct(embedderFields);
export type EmbedderConfig = Schema.Schema.Type<typeof EmbedderConfig>;
