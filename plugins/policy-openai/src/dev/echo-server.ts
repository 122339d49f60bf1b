/**
 * A tiny OpenAI-compatible server for development WITHOUT an API key and without a network:
 * it answers POST /v1/chat/completions (JSON, and SSE streaming with usage) with a
 * deterministic echo of the last user message ("echo: <text>"), and POST /v1/embeddings with
 * hashed bag-of-words vectors (texts sharing words point alike; `dimensions` sets the size,
 * default 64; float or base64; not normalised, as some servers' are not). For trying `bdc ask`
 * and step/embed offline and for the tests; it is not a model.
 *
 *   pnpm exec tsx plugins/policy-openai/src/dev/echo-server.ts [--port 8099]
 *
 * then point an instance at it: `use: policy/openai, with: {model: echo, baseURL:
 * http://127.0.0.1:8099/v1}` (no key needed). Tokens are whitespace-separated words;
 * max_tokens (or max_completion_tokens) truncates with finish_reason "length", stop sequences
 * cut the reply. GET /stats -> {"requests": N} (chat and embedding requests so far); GET
 * /v1/models lists "echo". Listens on 127.0.0.1 only; each request is logged as one line.
 */
import * as http from "node:http";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { listenOnLoopback } from "@bdc/core/testing";

export interface EchoServer {
  /** http://127.0.0.1:PORT (the OpenAI base URL is this + "/v1"). */
  readonly url: string;
  readonly port: number;
  /** Chat completion and embedding requests received so far. */
  requests(): number;
  close(): Promise<void>;
}

export interface EchoServerOptions {
  /** One line per request (the CLI logs to stdout; default: silent). */
  readonly log?: (line: string) => void;
}

const MAX_BODY = 10 * 1024 * 1024;

type Json = Record<string, unknown>;

const countTokens = (s: string) => (s.match(/\S+/g) ?? []).length;

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p === "object" && p !== null && typeof (p as Json).text === "string" ? ((p as Json).text as string) : "")).join("");
  return "";
}

class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = "invalid_request_error",
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

/** The reply for a chat completion request: text, finish reason and usage. */
export function echoReply(body: Json): { text: string; finishReason: "stop" | "length"; promptTokens: number; completionTokens: number } {
  if (typeof body.model !== "string" || body.model === "") throw new RequestError(400, "you must provide a model parameter", "invalid_request_error", null, "model");
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw new RequestError(400, "messages must be a non-empty array", "invalid_request_error", null, "messages");
  for (const [i, m] of messages.entries()) {
    if (typeof m !== "object" || m === null || typeof (m as Json).role !== "string") throw new RequestError(400, `messages[${i}] must be an object with a role`, "invalid_request_error", null, `messages[${i}]`);
  }
  const lastUser = [...messages].reverse().find((m) => (m as Json).role === "user") as Json | undefined;
  let text = `echo: ${textOf(lastUser?.content)}`;
  let finishReason: "stop" | "length" = "stop";
  const stops = typeof body.stop === "string" ? [body.stop] : Array.isArray(body.stop) ? body.stop.filter((s): s is string => typeof s === "string" && s !== "") : [];
  for (const s of stops) {
    const at = text.indexOf(s);
    if (at >= 0) text = text.slice(0, at);
  }
  const limit = typeof body.max_completion_tokens === "number" ? body.max_completion_tokens : typeof body.max_tokens === "number" ? body.max_tokens : undefined;
  if (limit !== undefined && countTokens(text) > limit) {
    text = (text.match(/\s*\S+/g) ?? []).slice(0, Math.max(0, limit)).join("");
    finishReason = "length";
  }
  const promptTokens = messages.reduce((n: number, m) => n + countTokens(textOf((m as Json).content)), 0);
  return { text, finishReason, promptTokens, completionTokens: countTokens(text) };
}

/** FNV-1a, 32-bit: a stable hash for the embedding buckets. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export const ECHO_EMBEDDING_DIMENSION = 64;

/**
 * The echo server's embedding of a text: each lower-cased word adds +-1 to a hashed bucket
 * (feature hashing), plus a constant so that no vector is zero. Deterministic, so tests can
 * compute what to expect.
 */
export function echoEmbedding(text: string, dimension = ECHO_EMBEDDING_DIMENSION): Float32Array {
  const v = new Float32Array(dimension);
  v[0] = 0.5;
  for (const word of text.toLowerCase().match(/[a-z0-9_]+/g) ?? []) {
    const h = fnv1a(word);
    v[h % dimension]! += h & 0x80000000 ? -1 : 1;
  }
  return v;
}

function embeddingsReply(body: Json): Json {
  if (typeof body.model !== "string" || body.model === "") throw new RequestError(400, "you must provide a model parameter", "invalid_request_error", null, "model");
  const input = typeof body.input === "string" ? [body.input] : body.input;
  if (!Array.isArray(input) || input.length === 0 || !input.every((t) => typeof t === "string")) {
    throw new RequestError(400, "input must be a string or a non-empty array of strings", "invalid_request_error", null, "input");
  }
  const dimension = body.dimensions === undefined ? ECHO_EMBEDDING_DIMENSION : body.dimensions;
  if (typeof dimension !== "number" || !Number.isInteger(dimension) || dimension < 1 || dimension > 4096) throw new RequestError(400, "dimensions must be an integer in 1..4096", "invalid_request_error", null, "dimensions");
  const format = body.encoding_format ?? "float";
  if (format !== "float" && format !== "base64") throw new RequestError(400, "encoding_format must be float or base64", "invalid_request_error", null, "encoding_format");
  const tokens = (input as string[]).reduce((n, t) => n + countTokens(t), 0);
  return {
    object: "list",
    model: body.model,
    data: (input as string[]).map((t, index) => {
      const v = echoEmbedding(t, dimension);
      return { object: "embedding", index, embedding: format === "base64" ? Buffer.from(v.buffer).toString("base64") : Array.from(v) };
    }),
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

const errorBody = (e: RequestError) => ({ error: { message: e.message, type: e.type, param: e.param, code: e.code } });

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new RequestError(413, "request body too large"));
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Starts the echo server on 127.0.0.1 (port 0: a free one). */
export async function startEchoServer(port = 0, options: EchoServerOptions = {}): Promise<EchoServer> {
  let requests = 0;
  let seq = 0;
  const log = options.log ?? (() => {});

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const route = url.pathname.replace(/\/+$/, "");
    let note = "";
    res.on("finish", () => log(`${req.method} ${req.url} ${res.statusCode}${note}`));
    try {
      if (req.method === "GET" && route === "/stats") return sendJson(res, 200, { requests });
      if (req.method === "GET" && route === "/v1/models") {
        return sendJson(res, 200, { object: "list", data: [{ id: "echo", object: "model", created: 0, owned_by: "bdc-echo-server" }] });
      }
      if (route !== "/v1/chat/completions" && route !== "/v1/embeddings") {
        throw new RequestError(404, `unknown path ${req.method} ${url.pathname} (this echo server serves POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models, GET /stats)`, "invalid_request_error", "unknown_url");
      }
      if (req.method !== "POST") throw new RequestError(405, `use POST for ${url.pathname}`);
      requests++;
      let body: Json;
      try {
        const parsed: unknown = JSON.parse(await readBody(req));
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
        body = parsed as Json;
      } catch (e) {
        if (e instanceof RequestError) throw e;
        throw new RequestError(400, "the request body is not a JSON object");
      }
      if (route === "/v1/embeddings") {
        const reply = embeddingsReply(body);
        note = ` (model ${String(body.model)}, ${(reply.data as unknown[]).length} embeddings)`;
        return sendJson(res, 200, reply);
      }
      const reply = echoReply(body);
      const model = body.model as string;
      const id = `chatcmpl-echo-${++seq}`;
      const created = Math.floor(Date.now() / 1000);
      const usage = { prompt_tokens: reply.promptTokens, completion_tokens: reply.completionTokens, total_tokens: reply.promptTokens + reply.completionTokens };
      note = ` (model ${model}${body.stream === true ? ", stream" : ""}, ${usage.prompt_tokens}+${usage.completion_tokens} tokens)`;

      if (body.stream !== true) {
        return sendJson(res, 200, {
          id,
          object: "chat.completion",
          created,
          model,
          choices: [{ index: 0, message: { role: "assistant", content: reply.text, refusal: null }, logprobs: null, finish_reason: reply.finishReason }],
          usage,
          system_fingerprint: "bdc-echo",
        });
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
      const chunk = (choices: unknown[], extra: Json = {}) => res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, system_fingerprint: "bdc-echo", choices, ...extra })}\n\n`);
      const includeUsage = (body.stream_options as Json | undefined)?.include_usage === true;
      chunk([{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }], includeUsage ? { usage: null } : {});
      for (const piece of reply.text.match(/\s*\S+|\s+/g) ?? []) chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }], includeUsage ? { usage: null } : {});
      chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: reply.finishReason }], includeUsage ? { usage: null } : {});
      if (includeUsage) chunk([], { usage });
      res.end("data: [DONE]\n\n");
    } catch (e) {
      const error = e instanceof RequestError ? e : new RequestError(500, e instanceof Error ? e.message : String(e), "server_error");
      if (res.headersSent) res.destroy();
      else sendJson(res, error.status, errorBody(error));
    }
  });

  return { ...(await listenOnLoopback(server, port)), requests: () => requests };
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);

if (isMain) {
  const args = process.argv.slice(2);
  const at = args.findIndex((a) => a === "--port" || a.startsWith("--port="));
  const raw = at < 0 ? "8099" : args[at]!.includes("=") ? args[at]!.split("=")[1]! : (args[at + 1] ?? "");
  const port = Number(raw);
  if (args.includes("--help") || !Number.isInteger(port) || port < 0 || port > 65535) {
    console.error("usage: pnpm exec tsx plugins/policy-openai/src/dev/echo-server.ts [--port 8099]");
    process.exit(args.includes("--help") ? 0 : 2);
  }
  const server = await startEchoServer(port, { log: (line) => console.log(`${new Date().toISOString()} ${line}`) });
  console.log(`OpenAI-compatible echo server on ${server.url}/v1 (baseURL; any model name, no key needed). Ctrl-C stops.`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
