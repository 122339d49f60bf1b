/**
 * A loopback server speaking the Anthropic Messages API wire protocol, for tests: POST
 * /v1/messages with the key (x-api-key or Authorization: Bearer) and anthropic-version checked,
 * the body validated as the API does, JSON or SSE answers, and the API's error bodies. Each
 * request takes the next scripted behaviour; with none left it answers normally.
 */
import * as http from "node:http";
import { listenOnLoopback } from "@bdc/core/testing";

export interface Recorded {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Record<string, unknown>;
}

export type Behaviour =
  | { readonly kind: "reply"; readonly text?: string; readonly stopReason?: string }
  | { readonly kind: "error"; readonly status: number; readonly type: string; readonly message?: string; readonly headers?: Record<string, string> }
  /** Accepts the request and never answers. */
  | { readonly kind: "hang" }
  /** A 200 with this body, as is. */
  | { readonly kind: "raw"; readonly body: string; readonly contentType?: string }
  /** A stream whose events are these frames, as is (a broken stream). */
  | { readonly kind: "raw-stream"; readonly frames: ReadonlyArray<string> }
  /** A 200 whose headers and first bytes come, and then nothing. */
  | { readonly kind: "stall-body" }
  /** A stream that sends message_start and then stalls. */
  | { readonly kind: "stall-stream" };

export interface FakeServer {
  readonly url: string;
  readonly requests: Recorded[];
  script(...behaviours: Behaviour[]): void;
  close(): Promise<void>;
}

const MODELS = new Set(["claude-test-1", "claude-test-2"]);

/** Rough token count, as stable as the tests need. */
export const tokens = (s: string): number => Math.max(1, s.split(/\s+/).filter(Boolean).length);

export async function startFakeMessagesServer(apiKey: string): Promise<FakeServer> {
  const requests: Recorded[] = [];
  const queue: Behaviour[] = [];

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, unknown>;
      } catch {
        return error(res, 400, "invalid_request_error", "request body is not JSON");
      }
      requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      if (req.method !== "POST" || req.url !== "/v1/messages") return error(res, 404, "not_found_error", `no route ${req.method} ${req.url}`);
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      const given = req.headers["x-api-key"] ?? bearer;
      if (given === undefined) return error(res, 401, "authentication_error", "x-api-key header is required");
      if (given !== apiKey) return error(res, 401, "authentication_error", "invalid x-api-key");
      const version = req.headers["anthropic-version"];
      if (typeof version !== "string") return error(res, 400, "invalid_request_error", "anthropic-version: header is required");

      const behaviour = queue.shift() ?? { kind: "reply" };
      if (behaviour.kind === "hang") return; // the socket stays open until the client gives up
      if (behaviour.kind === "error") return error(res, behaviour.status, behaviour.type, behaviour.message ?? behaviour.type, behaviour.headers);
      if (behaviour.kind === "stall-body") {
        res.writeHead(200, { "content-type": "application/json" });
        return void res.write('{"id": "msg_0", ');
      }
      if (behaviour.kind === "raw") {
        res.writeHead(200, { "content-type": behaviour.contentType ?? "application/json" });
        return res.end(behaviour.body);
      }

      const problem = validate(body, version);
      if (problem !== undefined) return error(res, 400, "invalid_request_error", problem);
      if (!MODELS.has(body["model"] as string)) return error(res, 404, "not_found_error", `model: ${String(body["model"])}`);

      if (behaviour.kind === "raw-stream") {
        res.writeHead(200, { "content-type": "text/event-stream" });
        return res.end(behaviour.frames.join(""));
      }
      const messages = body["messages"] as Array<{ role: string; content: string }>;
      const last = messages.at(-1)?.content ?? "";
      const text = behaviour.kind === "reply" && behaviour.text !== undefined ? behaviour.text : `echo: ${last}`;
      const stopReason = behaviour.kind === "reply" && behaviour.stopReason !== undefined ? behaviour.stopReason : "end_turn";
      const input = tokens(`${(body["system"] as string | undefined) ?? ""} ${messages.map((m) => m.content).join(" ")}`);
      const output = tokens(text);
      const id = `msg_${requests.length}`;
      const model = body["model"] as string;

      if (body["stream"] !== true) {
        res.writeHead(200, { "content-type": "application/json", "request-id": `req_${requests.length}` });
        return res.end(
          JSON.stringify({ id, type: "message", role: "assistant", model, content: [{ type: "text", text }], stop_reason: stopReason, stop_sequence: null, usage: { input_tokens: input, output_tokens: output } }),
        );
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const frame = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      frame("message_start", { type: "message_start", message: { id, type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: input, output_tokens: 1 } } });
      if (behaviour.kind === "stall-stream") return; // no more events, socket open
      frame("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
      frame("ping", { type: "ping" });
      // Split into a few deltas, as the API does.
      const pieces = text.match(/.{1,5}/gs) ?? [""];
      for (const piece of pieces) frame("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: piece } });
      frame("content_block_stop", { type: "content_block_stop", index: 0 });
      frame("message_delta", { type: "message_delta", delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: output } });
      frame("message_stop", { type: "message_stop" });
      res.end();
    });
  });

  const { url, close } = await listenOnLoopback(server);
  return {
    url,
    requests,
    script: (...behaviours) => void queue.push(...behaviours),
    close,
  };
}

function error(res: http.ServerResponse, status: number, type: string, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ type: "error", error: { type, message } }));
}

/** What the API checks of a request body (the subset these tests use). */
function validate(body: Record<string, unknown>, version: string): string | undefined {
  if (typeof body["model"] !== "string") return "model: Field required";
  if (!Number.isInteger(body["max_tokens"]) || (body["max_tokens"] as number) < 1) return "max_tokens: Field required";
  const messages = body["messages"];
  if (!Array.isArray(messages) || messages.length === 0) return "messages: at least one message is required";
  for (const m of messages as Array<Record<string, unknown>>) {
    if (m["role"] !== "user" && m["role"] !== "assistant") return `messages: Unexpected role "${String(m["role"])}"`;
    if (typeof m["content"] !== "string") return "messages.content: Input should be a valid string";
  }
  if (body["system"] !== undefined && typeof body["system"] !== "string") return "system: Input should be a valid string";
  if (body["stop_sequences"] !== undefined && !Array.isArray(body["stop_sequences"])) return "stop_sequences: Input should be a valid list";
  if (body["stream"] !== undefined && typeof body["stream"] !== "boolean") return "stream: Input should be a valid boolean";
  for (const key of ["temperature", "top_p", "top_k"]) {
    if (body[key] === undefined) continue;
    // 2026-10-21 removed the sampling parameters: a 400 even at their defaults.
    if (version >= "2026-10-21") return `${key}: Extra inputs are not permitted`;
    if (typeof body[key] !== "number") return `${key}: Input should be a valid number`;
  }
  for (const key of Object.keys(body)) {
    if (!["model", "max_tokens", "messages", "system", "stop_sequences", "stream", "temperature", "top_p", "top_k", "metadata"].includes(key)) return `${key}: Extra inputs are not permitted`;
  }
  return undefined;
}
