/**
 * The Anthropic Messages API as a ProviderClient, through the official SDK (@anthropic-ai/sdk).
 * Only the wire protocol lives here: retries (the SDK's own are switched off), rate limits, the
 * response cache and accounting are @bdc/policy's.
 *
 * Protocol notes:
 * - System messages go to the top-level `system` parameter (several are joined with a blank
 *   line); user and assistant turns go to `messages`.
 * - `max_tokens` is required by the API; `stop` becomes `stop_sequences`.
 * - Sampling: API version 2026-10-21 (the SDK's default since 1.0) has no `temperature`,
 *   `top_p` or `top_k`; sending them is a 400 even at their defaults. They are sent only
 *   under an older `anthropic-version` (2023-06-01), where models up to Claude Opus 4.6
 *   honour them. Anthropic has no `seed`: it is never sent.
 * - The key goes out as `Authorization: Bearer` (the SDK's way) and as `x-api-key` (what
 *   gateways and proxies written for the 2023-06-01 API read); the API accepts either.
 * - Timeouts: the SDK's `timeout` covers the wait for the response headers only, so the whole
 *   request is also bounded here: a plain request by `timeoutMs` in all, a stream by
 *   `timeoutMs` without an event (a long generation keeps streaming).
 */
import Anthropic, { AnthropicError, APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "@anthropic-ai/sdk";
import { parseRetryAfter, ProviderError, type ProviderClient, type ProviderErrorKind, type ProviderRequest, type ProviderResponse } from "@bdc/policy";

/** The API version SDK 1.x speaks (and the plugin's default). */
export const CURRENT_API_VERSION = "2026-10-21";
export const DEFAULT_BASE_URL = "https://api.anthropic.com";

/** Whether `temperature` / `top_p` exist in this API version (they were removed in 2026-10-21). */
export const sendsSampling = (apiVersion: string): boolean => apiVersion < CURRENT_API_VERSION;

export interface AnthropicClientOptions {
  /** The key; undefined when the variable is not set (a request then fails with `auth`). */
  readonly apiKey: string | undefined;
  /** Name of the variable the key comes from (for messages). */
  readonly apiKeyEnv: string;
  /** The API root (the SDK appends /v1/messages). */
  readonly baseURL: string;
  readonly apiVersion: string;
  readonly timeoutMs: number;
  /** Called once, on the first request that has sampling settings the API version cannot take. */
  readonly onUnsentSampling?: (what: string) => void;
  /** Tests inject a fetch; the SDK's default (global fetch) otherwise. */
  readonly fetch?: typeof fetch;
}

type Params = Anthropic.MessageCreateParamsNonStreaming;

/** The Messages API request body for a provider request. */
export function toMessageParams(request: ProviderRequest, apiVersion: string): { params: Params; unsent: string[] } {
  const system = request.messages.filter((m) => m.role === "system").map((m) => m.content);
  const messages = request.messages
    .filter((m) => m.role !== "system")
    .map((m) => ({ role: m.role as "user" | "assistant", content: m.content }));
  const s = request.sampling;
  const params: Params & { temperature?: number; top_p?: number } = {
    model: request.model,
    max_tokens: s.max_tokens,
    messages,
    ...(system.length > 0 ? { system: system.join("\n\n") } : {}),
    ...(s.stop !== undefined && s.stop.length > 0 ? { stop_sequences: [...s.stop] } : {}),
  };
  const unsent: string[] = [];
  if (sendsSampling(apiVersion)) {
    params.temperature = s.temperature;
    if (s.top_p !== undefined) params.top_p = s.top_p;
  } else {
    // 1 is the API's own default: nothing is lost by not sending it.
    if (s.temperature !== 1) unsent.push(`temperature=${s.temperature}`);
    if (s.top_p !== undefined) unsent.push(`top_p=${s.top_p}`);
  }
  if (s.seed !== undefined) unsent.push(`seed=${s.seed}`);
  return { params, unsent };
}

export function anthropicClient(options: AnthropicClientOptions): ProviderClient {
  const sdk =
    options.apiKey === undefined
      ? undefined
      : new Anthropic({
          apiKey: options.apiKey,
          baseURL: options.baseURL,
          maxRetries: 0, // @bdc/policy retries
          timeout: options.timeoutMs,
          defaultHeaders: { "anthropic-version": options.apiVersion, "x-api-key": options.apiKey },
          // Failures reach the user as BdcErrors and llm.* events; the SDK's console lines would be noise.
          ...(process.env["ANTHROPIC_LOG"] === undefined ? { logLevel: "off" as const } : {}),
          ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
        });
  let warned = false;

  return {
    provider: "anthropic",
    endpoint: options.baseURL,

    async send(request: ProviderRequest, signal: AbortSignal): Promise<ProviderResponse> {
      if (sdk === undefined) throw new ProviderError("auth", `${options.apiKeyEnv} is not set: Anthropic needs an API key`);
      const { params, unsent } = toMessageParams(request, options.apiVersion);
      if (unsent.length > 0 && !warned) {
        warned = true;
        options.onUnsentSampling?.(unsent.join(", "));
      }

      // The SDK's timeout stops at the response headers; this one bounds the body too.
      const deadline = new AbortController();
      let timedOut = false;
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          timedOut = true;
          deadline.abort();
        }, request.timeoutMs);
      };
      arm();
      const requestOptions = { signal: AbortSignal.any([signal, deadline.signal]), timeout: request.timeoutMs };
      try {
        let message: unknown;
        if (request.stream) {
          const stream = sdk.messages.stream(params, requestOptions);
          stream.on("streamEvent", arm); // a stream times out when it stalls, not when it is long
          message = await stream.finalMessage();
        } else {
          message = await sdk.messages.create(params, requestOptions);
        }
        return toResponse(message);
      } catch (e) {
        throw toProviderError(e, { timedOut, aborted: signal.aborted, timeoutMs: request.timeoutMs, stream: request.stream });
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** A Message body to a ProviderResponse; anything else is `malformed`. */
export function toResponse(body: unknown): ProviderResponse {
  const m = body as Partial<Anthropic.Message> | null;
  const bad = (what: string) => new ProviderError("malformed", `the response is not a Messages API message: ${what}`);
  if (m === null || typeof m !== "object" || Array.isArray(m)) throw bad(`got ${typeof body === "string" ? `text "${body.slice(0, 120)}"` : JSON.stringify(body)?.slice(0, 120)}`);
  if (!Array.isArray(m.content)) throw bad("no content array");
  const usage = m.usage as Partial<Anthropic.Usage> | undefined;
  if (typeof usage?.input_tokens !== "number" || typeof usage.output_tokens !== "number") throw bad("no usage.input_tokens / usage.output_tokens");
  let text = "";
  for (const block of m.content as unknown[]) {
    const b = block as { type?: unknown; text?: unknown } | null;
    if (b === null || typeof b !== "object" || typeof b.type !== "string") throw bad("a content block without a type");
    if (b.type === "text") {
      if (typeof b.text !== "string") throw bad("a text block without text");
      text += b.text;
    }
  }
  return {
    text,
    inputTokens: usage.input_tokens,
    outputTokens: usage.output_tokens,
    finishReason: typeof m.stop_reason === "string" ? m.stop_reason : undefined,
    model: typeof m.model === "string" ? m.model : undefined,
  };
}

const KIND_OF_ERROR_TYPE: Record<string, ProviderErrorKind> = {
  rate_limit_error: "rate_limit",
  overloaded_error: "server",
  api_error: "server",
  timeout_error: "timeout",
  authentication_error: "auth",
  permission_error: "auth",
  not_found_error: "not_found",
  invalid_request_error: "bad_request",
  request_too_large: "bad_request",
  billing_error: "bad_request",
};

export function kindOfStatus(status: number): ProviderErrorKind {
  if (status === 429) return "rate_limit";
  if (status === 408) return "timeout";
  if (status >= 500) return "server"; // 529 overloaded_error included
  if (status === 401 || status === 403) return "auth";
  if (status === 404) return "not_found";
  return "bad_request";
}

/** Any failure of the SDK (or of the body) as a ProviderError, so that @bdc/policy knows what to retry. */
export function toProviderError(e: unknown, ctx: { timedOut: boolean; aborted: boolean; timeoutMs: number; stream?: boolean }): ProviderError {
  if (e instanceof ProviderError) return e;
  // The caller's signal first: an abort is never retried, whatever it interrupted.
  if (ctx.aborted) return new ProviderError("aborted", "aborted");
  if (ctx.timedOut || e instanceof APIConnectionTimeoutError) {
    return new ProviderError("timeout", ctx.stream === true ? `the stream stalled for ${ctx.timeoutMs} ms` : `no response within ${ctx.timeoutMs} ms`);
  }
  if (e instanceof APIUserAbortError) return new ProviderError("aborted", "aborted");
  if (e instanceof APIConnectionError) return new ProviderError("connection", `connection failed: ${describe(e.cause) ?? e.message}`);
  if (e instanceof APIError) {
    const body = e.error as { error?: { type?: unknown; message?: unknown } } | undefined;
    const type = e.type ?? (typeof body?.error?.type === "string" ? body.error.type : undefined);
    const said = e.apiMessage ?? (typeof body?.error?.message === "string" ? body.error.message : undefined) ?? e.message;
    const message = `${type === undefined || type === null ? "error" : type}: ${said}`;
    const retryAfterMs = parseRetryAfter(e.headers ?? undefined);
    if (e.status === undefined) {
      // An `event: error` inside a 200 stream (e.g. overloaded_error mid-generation).
      return new ProviderError((type && KIND_OF_ERROR_TYPE[type]) || "server", `${message} (in the stream)`, undefined, retryAfterMs);
    }
    return new ProviderError(kindOfStatus(e.status), message, e.status, retryAfterMs);
  }
  if (e instanceof SyntaxError) return new ProviderError("malformed", `the response body is not JSON: ${e.message}`);
  if (e instanceof AnthropicError) {
    // The stream helper wraps what went wrong underneath: bad JSON in an event, a reset socket.
    const cause = (e as { cause?: unknown }).cause;
    if (cause instanceof SyntaxError) return new ProviderError("malformed", `a stream event is not JSON: ${cause.message}`);
    if (cause instanceof Error && !(cause instanceof AnthropicError)) return new ProviderError("connection", `the stream broke off: ${describe(cause)}`);
    return new ProviderError("malformed", `the stream does not follow the Messages protocol: ${e.message}`);
  }
  // fetch's own failures while reading a body ("terminated", ECONNRESET).
  return new ProviderError("connection", describe(e) ?? String(e));
}

function describe(e: unknown): string | undefined {
  if (!(e instanceof Error)) return e === undefined ? undefined : String(e);
  const cause = (e as { cause?: unknown }).cause;
  const inner = cause instanceof Error ? ` (${(cause as NodeJS.ErrnoException).code ?? cause.message})` : "";
  return `${e.message}${inner}`;
}
