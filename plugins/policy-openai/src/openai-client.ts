/**
 * The OpenAI Chat Completions wire client behind the official `openai` SDK: one request per
 * `send`, no retries of its own (the shared @bdc/policy layer retries), every failure mapped to
 * a ProviderError kind. Works against api.openai.com and OpenAI-compatible servers (vLLM,
 * llama.cpp's llama-server, LM Studio, the dev echo server in ./dev/echo-server.ts).
 */
import OpenAI from "openai";
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionCreateParamsBase } from "openai/resources/chat/completions";
import { parseRetryAfter, ProviderError, type ProviderClient, type ProviderRequest, type ProviderResponse } from "@bdc/policy";

export const OPENAI_BASE_URL = "https://api.openai.com/v1";

/** The key sent to OpenAI-compatible servers that want none (vLLM and llama.cpp accept any; "EMPTY" is their convention). */
export const PLACEHOLDER_KEY = "EMPTY";

export type MaxTokensParam = "max_tokens" | "max_completion_tokens";

export interface OpenAIClientOptions {
  /** Default: https://api.openai.com/v1. */
  readonly baseURL?: string | undefined;
  readonly apiKey: string;
  readonly organization?: string | undefined;
  readonly project?: string | undefined;
  /** Which request field carries the token limit (newer OpenAI models want max_completion_tokens). */
  readonly maxTokensParam?: MaxTokensParam;
  /** The SDK's own timeout (until response headers); `send` also enforces `request.timeoutMs` on the body. */
  readonly timeoutMs: number;
  /** Called once when the server reports no token usage (accounting then counts 0 tokens). */
  readonly onNoUsage?: () => void;
}

/** True when the base URL is OpenAI's own API (a key is then required). */
export function isOpenAIHost(baseURL: string | undefined): boolean {
  if (baseURL === undefined) return true;
  try {
    const host = new URL(baseURL).hostname.toLowerCase();
    return host === "openai.com" || host.endsWith(".openai.com");
  } catch {
    return false;
  }
}

/** The SDK, configured from options only; it never retries (the shared layer does). */
export function openAISdk(options: Omit<OpenAIClientOptions, "maxTokensParam" | "onNoUsage">): { sdk: OpenAI; endpoint: string } {
  const endpoint = (options.baseURL ?? OPENAI_BASE_URL).replace(/\/+$/, "");
  const sdk = new OpenAI({
    apiKey: options.apiKey,
    baseURL: endpoint,
    // Explicit, so that OPENAI_ORG_ID / OPENAI_PROJECT_ID / OPENAI_BASE_URL in the environment change nothing behind the config's back.
    organization: options.organization ?? null,
    project: options.project ?? null,
    maxRetries: 0,
    timeout: options.timeoutMs,
  });
  return { sdk, endpoint };
}

export function openAIClient(options: OpenAIClientOptions): ProviderClient {
  const { sdk, endpoint } = openAISdk(options);
  const maxTokensParam = options.maxTokensParam ?? "max_tokens";
  let warnedNoUsage = false;
  const noUsage = () => {
    if (!warnedNoUsage) options.onNoUsage?.();
    warnedNoUsage = true;
  };

  return {
    provider: "openai",
    endpoint,
    async send(request: ProviderRequest, signal: AbortSignal): Promise<ProviderResponse> {
      const { sampling } = request;
      const body: ChatCompletionCreateParamsBase = {
        model: request.model,
        messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
        temperature: sampling.temperature,
        ...(sampling.top_p === undefined ? {} : { top_p: sampling.top_p }),
        [maxTokensParam]: sampling.max_tokens,
        ...(sampling.stop === undefined || sampling.stop.length === 0 ? {} : { stop: [...sampling.stop] }),
        ...(sampling.seed === undefined ? {} : { seed: sampling.seed }),
      };
      // The SDK's timeout stops at the response headers; this deadline also covers the body.
      // Streaming: it is an idle timeout, restarted by every chunk (long generations may stream for minutes).
      const deadline = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => deadline.abort(), request.timeoutMs);
      };
      const combined = AbortSignal.any([signal, deadline.signal]);
      const interrupted = () => (signal.aborted ? new ProviderError("aborted", "aborted") : deadline.signal.aborted ? timeoutError(request.timeoutMs) : undefined);
      arm();
      try {
        if (!request.stream) {
          const completion = await sdk.chat.completions.create({ ...body, stream: false }, { signal: combined, timeout: request.timeoutMs });
          const halt = interrupted();
          if (halt !== undefined) throw halt;
          return fromCompletion(completion, noUsage);
        }
        const stream = await sdk.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }, { signal: combined, timeout: request.timeoutMs });
        let text = "";
        let finishReason: string | undefined;
        let model: string | undefined;
        let usage: ChatCompletionChunk["usage"];
        let chunks = 0;
        for await (const chunk of stream) {
          arm();
          chunks++;
          if (typeof chunk !== "object" || chunk === null || !Array.isArray(chunk.choices)) throw malformed(`a stream chunk is not a chat.completion.chunk: ${preview(chunk)}`);
          model ??= chunk.model;
          const choice = chunk.choices.find((c) => c.index === 0) ?? chunk.choices[0];
          if (typeof choice?.delta?.content === "string") text += choice.delta.content;
          if (choice?.finish_reason != null) finishReason = choice.finish_reason;
          if (chunk.usage != null) usage = chunk.usage;
        }
        // The SDK ends the iteration silently when the request is aborted: tell why it ended.
        const halt = interrupted();
        if (halt !== undefined) throw halt;
        if (chunks === 0) throw malformed("the stream ended without a single chunk");
        if (finishReason === undefined) throw malformed("the stream ended without a finish_reason (cut off)");
        if (usage == null) noUsage();
        return { text, inputTokens: usage?.prompt_tokens ?? 0, outputTokens: usage?.completion_tokens ?? 0, finishReason, model };
      } catch (e) {
        throw interrupted() ?? toProviderError(e);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function fromCompletion(completion: ChatCompletion | unknown, noUsage: () => void): ProviderResponse {
  const c = completion as Partial<ChatCompletion> | null;
  if (typeof c !== "object" || c === null) throw malformed(`the response is not a JSON chat.completion: ${preview(completion)}`);
  if (!Array.isArray(c.choices) || c.choices.length === 0) throw malformed(`the response has no choices: ${preview(completion)}`);
  const choice = c.choices.find((x) => x.index === 0) ?? c.choices[0]!;
  const message = choice.message as { content?: unknown } | undefined;
  if (typeof message !== "object" || message === null) throw malformed(`choices[0] has no message: ${preview(completion)}`);
  // null content: a refusal or tool calls (never asked for); the text is then empty.
  if (message.content !== null && message.content !== undefined && typeof message.content !== "string") throw malformed(`choices[0].message.content is not a string: ${preview(completion)}`);
  if (c.usage == null) noUsage();
  return {
    text: (message.content as string | null | undefined) ?? "",
    inputTokens: c.usage?.prompt_tokens ?? 0,
    outputTokens: c.usage?.completion_tokens ?? 0,
    finishReason: choice.finish_reason ?? undefined,
    model: typeof c.model === "string" ? c.model : undefined,
  };
}

export const timeoutError = (ms: number) => new ProviderError("timeout", `timed out: no complete response within ${ms} ms`);
export const malformed = (message: string) => new ProviderError("malformed", message);
export const preview = (v: unknown) => {
  const s = typeof v === "string" ? v : JSON.stringify(v) ?? String(v);
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
};

/** An SDK (or fetch) error as a ProviderError. */
export function toProviderError(e: unknown): ProviderError {
  if (e instanceof ProviderError) return e;
  if (e instanceof OpenAI.APIUserAbortError) return new ProviderError("aborted", "aborted");
  if (e instanceof OpenAI.APIConnectionTimeoutError) return new ProviderError("timeout", "timed out: no response headers within timeout_ms");
  if (e instanceof OpenAI.APIConnectionError) {
    const cause = (e as { cause?: unknown }).cause;
    const detail = cause instanceof Error ? ((cause as { cause?: unknown }).cause instanceof Error ? ((cause as { cause: Error }).cause.message) : cause.message) : "";
    return new ProviderError("connection", `${e.message.replace(/\.$/, "")}${detail !== "" && !e.message.includes(detail) ? `: ${detail}` : ""}`);
  }
  if (e instanceof OpenAI.APIError) {
    const status = e.status;
    const message = apiMessage(e);
    const retryAfterMs = parseRetryAfter(e.headers);
    if (status === undefined) return new ProviderError("server", `error event in the response stream: ${message}`); // {"error": ...} inside an SSE stream
    if (status === 429) return new ProviderError("rate_limit", message, status, retryAfterMs);
    if (status >= 500) return new ProviderError("server", message, status, retryAfterMs);
    if (status === 401 || status === 403) return new ProviderError("auth", message, status);
    if (status === 404) return new ProviderError("not_found", message, status);
    if (status === 408) return new ProviderError("timeout", message, status, retryAfterMs);
    if (status >= 400) return new ProviderError("bad_request", message, status);
    return new ProviderError("malformed", `unexpected HTTP ${status}: ${message}`, status);
  }
  if (e instanceof SyntaxError) return malformed(`the response body is not valid JSON: ${e.message}`);
  if (e instanceof Error && e.name === "AbortError") return new ProviderError("aborted", "aborted");
  // fetch's own failures while reading a body ("terminated", socket reset).
  if (e instanceof TypeError) return new ProviderError("connection", `${e.message}${e.cause instanceof Error ? `: ${e.cause.message}` : ""}`);
  if (e instanceof OpenAI.OpenAIError) return malformed(e.message);
  return new ProviderError("connection", e instanceof Error ? e.message : String(e));
}

/** The server's own words, from OpenAI's `{"error": {"message", "type", "code"}}` body. */
function apiMessage(e: InstanceType<typeof OpenAI.APIError>): string {
  const body = e.error as { message?: unknown } | undefined;
  const text = typeof body?.message === "string" && body.message !== "" ? body.message : e.message;
  const code = typeof e.code === "string" && e.code !== "" ? e.code : typeof e.type === "string" && e.type !== "" ? e.type : undefined;
  return code === undefined || text.includes(code) ? text : `${text} [${code}]`;
}
