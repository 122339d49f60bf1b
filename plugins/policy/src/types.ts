/**
 * The policy contract: an LLM that turns chat messages into a completion. Provider plugins
 * (OpenAI, Anthropic, Ollama, ...) implement only a `ProviderClient`; retries, rate limits, the
 * response cache and cost accounting are shared (createPolicy).
 */

export interface ChatMessage {
  readonly role: "system" | "user" | "assistant";
  readonly content: string;
}

/** Sampling parameters; every one of them is part of the cache key. */
export interface Sampling {
  /** 0 = greedy (the paper's setting). */
  readonly temperature: number;
  readonly top_p?: number | undefined;
  readonly max_tokens: number;
  readonly stop?: ReadonlyArray<string> | undefined;
  readonly seed?: number | undefined;
}

/** What a provider is asked: the messages (system prompt included) and the sampling. */
export interface ProviderRequest {
  readonly model: string;
  readonly messages: ReadonlyArray<ChatMessage>;
  readonly sampling: Sampling;
  readonly stream: boolean;
  readonly timeoutMs: number;
}

export interface ProviderResponse {
  readonly text: string;
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** "stop", "length", ... as the provider says. */
  readonly finishReason?: string | undefined;
  /** The model that answered (providers may resolve aliases). */
  readonly model?: string | undefined;
  /** With a composition of experts (policy/local with a composer): how much each expert weighed for this input. */
  readonly composition?: CompositionRecord | undefined;
}

/** Which experts an input-aware composition leaned on for one request. */
export interface CompositionRecord {
  readonly experts: ReadonlyArray<string>;
  /** Gate mass per expert, averaged over the composed modules (sums to 1). */
  readonly mass: ReadonlyArray<number>;
  /** Gate mass per expert for each composed module ("<layer>.<target>"). */
  readonly modules?: Readonly<Record<string, ReadonlyArray<number>>> | undefined;
}

/**
 * Why a request failed, normalised across providers so that one retry policy serves all:
 * rate_limit, server, timeout, connection and malformed are retried; the others fail fast.
 */
export type ProviderErrorKind =
  | "rate_limit" // 429
  | "server" // 5xx, 529 overloaded
  | "timeout"
  | "connection" // reset, refused, DNS
  | "malformed" // a 2xx whose body is not what the protocol says
  | "auth" // 401/403: bad or missing key
  | "not_found" // 404: unknown model or wrong base URL
  | "bad_request" // other 4xx
  | "aborted";

export class ProviderError extends Error {
  override readonly name = "ProviderError";
  constructor(
    readonly kind: ProviderErrorKind,
    message: string,
    readonly status?: number,
    /** From Retry-After (or the provider's equivalent), when given. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export const RETRYABLE: ReadonlySet<ProviderErrorKind> = new Set(["rate_limit", "server", "timeout", "connection", "malformed"]);

/** A provider's wire protocol, behind its official SDK. Must throw ProviderError on failure. */
export interface ProviderClient {
  /** "openai", "anthropic", "ollama": part of the cache key and of messages. */
  readonly provider: string;
  /** Where requests go (part of the cache key: two servers may serve different weights under one name). */
  readonly endpoint: string;
  send(request: ProviderRequest, signal: AbortSignal): Promise<ProviderResponse>;
}

export interface Completion {
  readonly text: string;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly cached: boolean;
  readonly latencyMs: number;
  readonly retries: number;
  /** USD, from the instance's prices (0 when cached or unpriced). */
  readonly costUsd: number;
  readonly finishReason?: string | undefined;
  readonly model: string;
  readonly composition?: CompositionRecord | undefined;
}

export interface Usage {
  readonly calls: number;
  readonly cached: number;
  readonly failed: number;
  readonly retries: number;
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly cost_usd: number;
  readonly latency_ms_total: number;
}

/** The `policy` slot: what search plugins call. */
export interface Policy {
  /** The instance name (agents are told apart by it). */
  readonly name: string;
  readonly model: string;
  readonly provider: string;
  complete(messages: ReadonlyArray<ChatMessage>, options?: { readonly sampling?: Partial<Sampling>; readonly signal?: AbortSignal }): Promise<Completion>;
  /** Totals so far (also in the run's summary.json under instances.<name>). */
  usage(): Usage;
}

/** What an embeddings endpoint is asked: one batch of texts. */
export interface EmbeddingRequest {
  readonly model: string;
  readonly input: ReadonlyArray<string>;
  /** Asked-for output size (models with Matryoshka embeddings, e.g. OpenAI's text-embedding-3-*); undefined: the model's own. */
  readonly dimensions?: number | undefined;
  readonly timeoutMs: number;
}

export interface EmbeddingResponse {
  /** One vector per input, in input order. */
  readonly vectors: ReadonlyArray<Float32Array>;
  readonly inputTokens: number;
  readonly model?: string | undefined;
}

/** A provider's embeddings wire protocol. Must throw ProviderError on failure. */
export interface EmbeddingClient {
  readonly provider: string;
  readonly endpoint: string;
  embed(request: EmbeddingRequest, signal: AbortSignal): Promise<EmbeddingResponse>;
}

/** The `encoder` slot: texts in, unit-length vectors out (clustering compares them by cosine). */
export interface Encoder {
  readonly name: string;
  readonly model: string;
  readonly dimension: number;
  embed(texts: ReadonlyArray<string>, options?: { readonly signal?: AbortSignal }): Promise<Float32Array[]>;
  /** The encoder's window in tokens (longer texts are truncated), when it has a known one. */
  readonly maxTokens?: number | undefined;
  /** How many tokens `text` is to this encoder (with its special tokens), to count truncated inputs. */
  countTokens?(text: string): number;
}

declare module "@bdc/core" {
  interface SlotTypes {
    policy: Policy;
    encoder: Encoder;
  }
}
