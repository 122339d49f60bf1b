/**
 * Ollama's /api/chat behind the official `ollama` client, as a ProviderClient: the shared
 * policy layer (@bdc/policy) does retries, rate limits, the cache and accounting.
 *
 * The client has no timeout and no per-request signal for non-streamed calls, so the `fetch` it
 * is given is wrapped: every call runs with its own signal (the caller's, plus timeout_ms) found
 * through AsyncLocalStorage, which also covers reading the body. The wrapper turns HTTP errors
 * into ProviderErrors itself (keeping the status and Retry-After, which the client's
 * ResponseError drops) and checks a stream's NDJSON lines, which the client would otherwise skip
 * with a console warning, so a garbled stream can never be cached as a short answer.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { Ollama, type ChatResponse, type Options } from "ollama";
import { parseRetryAfter, ProviderError, type ProviderClient, type ProviderErrorKind, type ProviderRequest, type ProviderResponse } from "@bdc/policy";

export interface OllamaClientOptions {
  /** The server's root URL, e.g. http://127.0.0.1:11434 (validated by the plugin). */
  readonly host: string;
  /** How long the model stays loaded after a call ("5m", seconds, -1 = forever, 0 = unload). */
  readonly keepAlive?: string | number | undefined;
  /** Context window in tokens; Ollama's default is small and silently truncates long prompts. */
  readonly numCtx?: number | undefined;
  /** The fetch underneath (tests); globalThis.fetch by default. */
  readonly fetch?: typeof fetch;
}

/** The host as one canonical string (no trailing slash), for the cache key and messages. */
export function canonicalHost(host: string): string {
  const url = new URL(host);
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
}

interface Call {
  readonly signal: AbortSignal;
  readonly stream: boolean;
}

const calls = new AsyncLocalStorage<Call>();

export function statusKind(status: number): ProviderErrorKind {
  if (status === 429) return "rate_limit";
  if (status === 408) return "timeout";
  if (status === 401 || status === 403) return "auth";
  if (status === 404) return "not_found";
  if (status >= 500) return "server";
  return "bad_request";
}

async function httpError(response: Response): Promise<ProviderError> {
  const body = await response.text().catch(() => "");
  let message = body.trim();
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed?.error === "string") message = parsed.error;
  } catch {
    // not JSON (a proxy's HTML page, plain text): keep the text
  }
  if (message === "") message = `HTTP ${response.status}${response.statusText === "" ? "" : ` ${response.statusText}`}`;
  return new ProviderError(statusKind(response.status), message.slice(0, 500), response.status, parseRetryAfter(response.headers));
}

/** Passes the bytes through unchanged, failing the stream on a line that is not JSON or is an error. */
function ndjsonCheck(endpoint: string): TransformStream<Uint8Array, Uint8Array> {
  const decoder = new TextDecoder();
  let pending = "";
  const check = (line: string) => {
    if (line.trim() === "") return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new ProviderError("malformed", `${endpoint} streamed a line that is not JSON: ${JSON.stringify(line.slice(0, 200))}`);
    }
    const error = (parsed as { error?: unknown } | null)?.error;
    if (typeof error === "string") throw new ProviderError("server", `the stream failed: ${error.slice(0, 500)}`);
  };
  return new TransformStream({
    transform(chunk, controller) {
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      lines.forEach(check);
      controller.enqueue(chunk);
    },
    flush() {
      check(pending + decoder.decode());
    },
  });
}

function wrapFetch(base: typeof fetch, endpoint: string): typeof fetch {
  return async (input, init) => {
    const call = calls.getStore();
    const signals = [init?.signal, call?.signal].filter((s): s is AbortSignal => s !== undefined && s !== null);
    const response = await base(input, { ...init, ...(signals.length === 0 ? {} : { signal: AbortSignal.any(signals) }) });
    if (!response.ok) throw await httpError(response);
    if (call?.stream !== true || response.body === null) return response;
    return new Response(response.body.pipeThrough(ndjsonCheck(endpoint)), { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

const count = (n: unknown): number => (typeof n === "number" && Number.isFinite(n) && n >= 0 ? n : 0);
const str = (s: unknown): string | undefined => (typeof s === "string" && s !== "" ? s : undefined);

const CONNECTION_CODES: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  EPIPE: "connection closed",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ETIMEDOUT: "connect timed out",
  UND_ERR_SOCKET: "the server closed the connection",
  UND_ERR_CONNECT_TIMEOUT: "connect timed out",
};

function errorCode(e: unknown): string | undefined {
  for (let c: unknown = e, depth = 0; c !== null && typeof c === "object" && depth < 5; c = (c as { cause?: unknown }).cause, depth++) {
    const code = (c as { code?: unknown }).code;
    if (typeof code === "string") return code;
    const inner = (c as { errors?: unknown }).errors;
    if (Array.isArray(inner) && typeof (inner[0] as { code?: unknown } | undefined)?.code === "string") return (inner[0] as { code: string }).code;
  }
  return undefined;
}

/** Any failure of one call, as the ProviderError the shared retry policy understands. */
function classify(e: unknown, signal: AbortSignal, timeout: AbortSignal, timeoutMs: number, endpoint: string): ProviderError {
  if (signal.aborted) return new ProviderError("aborted", "aborted");
  if (e instanceof ProviderError) return e;
  if (timeout.aborted) return new ProviderError("timeout", `no complete answer from ${endpoint} within ${timeoutMs} ms`);
  if (e instanceof SyntaxError) return new ProviderError("malformed", `${endpoint} answered with a body that is not JSON: ${e.message}`);
  const message = e instanceof Error ? e.message : String(e);
  if (/did not receive done|missing body/i.test(message)) return new ProviderError("malformed", `${endpoint}: the stream ended without its final (done) chunk`);
  const code = errorCode(e);
  const cause = (e as { cause?: unknown } | null)?.cause;
  const detail = cause instanceof Error && cause.message !== "" ? `${message}: ${cause.message}` : message;
  const what = code === undefined ? detail : (CONNECTION_CODES[code] ?? code);
  return new ProviderError("connection", `cannot reach ${endpoint}: ${what}${code === undefined || what === code ? "" : ` (${code})`}`);
}

/** The ProviderClient of the policy/ollama plugin. */
export function ollamaClient(options: OllamaClientOptions): ProviderClient & { readonly ollama: Ollama } {
  const host = canonicalHost(options.host);
  // num_ctx changes what the model sees (a prompt beyond it is truncated), so it is part of the
  // cache key, which covers the endpoint; keep_alive does not change answers and is not.
  const endpoint = options.numCtx === undefined ? host : `${host}#num_ctx=${options.numCtx}`;
  const ollama = new Ollama({ host, fetch: wrapFetch(options.fetch ?? globalThis.fetch, host) });

  const request = (r: ProviderRequest) => {
    const opts: Partial<Options> = { temperature: r.sampling.temperature, num_predict: r.sampling.max_tokens };
    if (r.sampling.top_p !== undefined) opts.top_p = r.sampling.top_p;
    if (r.sampling.stop !== undefined) opts.stop = [...r.sampling.stop];
    if (r.sampling.seed !== undefined) opts.seed = r.sampling.seed;
    if (options.numCtx !== undefined) opts.num_ctx = options.numCtx;
    return {
      model: r.model,
      messages: r.messages.map((m) => ({ role: m.role, content: m.content })),
      options: opts,
      ...(options.keepAlive === undefined ? {} : { keep_alive: options.keepAlive }),
    };
  };

  const finish = (last: Partial<ChatResponse>, text: string, requested: string): ProviderResponse => ({
    text,
    inputTokens: count(last.prompt_eval_count),
    outputTokens: count(last.eval_count),
    finishReason: str(last.done_reason),
    model: str(last.model) ?? requested,
  });

  async function chat(r: ProviderRequest): Promise<ProviderResponse> {
    const body = (await ollama.chat({ ...request(r), stream: false })) as unknown as Partial<ChatResponse> & { error?: unknown };
    if (body === null || typeof body !== "object") throw new ProviderError("malformed", `${host} answered /api/chat with ${JSON.stringify(body)}`);
    if (typeof body.error === "string") throw new ProviderError("server", body.error.slice(0, 500));
    const content = (body.message as { content?: unknown } | undefined)?.content;
    if (typeof content !== "string") throw new ProviderError("malformed", `${host} answered /api/chat without message.content: ${JSON.stringify(body).slice(0, 200)}`);
    return finish(body, content, r.model);
  }

  async function chatStream(r: ProviderRequest): Promise<ProviderResponse> {
    let text = "";
    let last: Partial<ChatResponse> | undefined;
    for await (const part of await ollama.chat({ ...request(r), stream: true })) {
      const content = (part.message as { content?: unknown } | undefined)?.content;
      if (typeof content === "string") text += content;
      if (part.done) last = part;
    }
    if (last === undefined) throw new ProviderError("malformed", `${host}: the stream ended without its final (done) chunk`);
    return finish(last, text, r.model);
  }

  return {
    provider: "ollama",
    endpoint,
    ollama,
    async send(r, signal) {
      const timeout = AbortSignal.timeout(r.timeoutMs);
      const call: Call = { signal: AbortSignal.any([signal, timeout]), stream: r.stream };
      try {
        if (call.signal.aborted) throw call.signal.reason;
        return await calls.run(call, () => (r.stream ? chatStream(r) : chat(r)));
      } catch (e) {
        throw classify(e, signal, timeout, r.timeoutMs, host);
      }
    },
  };
}
