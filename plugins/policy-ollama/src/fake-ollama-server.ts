/**
 * A scripted Ollama server on 127.0.0.1 (random port) for tests, speaking the real /api/chat wire
 * protocol: a JSON object for `stream: false`; NDJSON `done: false` chunks then one `done: true`
 * chunk with the counts otherwise (a missing `stream` means true, as on the real server); errors
 * as `{"error": "..."}` with the HTTP status. Each request takes the next scripted reply.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { listenOnLoopback } from "@bdc/core/testing";

export type Reply =
  | { readonly chat: string; readonly promptEvalCount?: number | null; readonly evalCount?: number; readonly doneReason?: string; readonly model?: string }
  | { readonly status: number; readonly error: string; readonly headers?: Record<string, string> }
  | { readonly status: number; readonly raw: string; readonly contentType?: string }
  /** NDJSON lines written as they are (each split across two writes); no done chunk is added. */
  | { readonly lines: ReadonlyArray<string> }
  /** Accept the request and never answer (after `afterChunks` streamed chunks, if given). */
  | { readonly hang: true; readonly afterChunks?: number };

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: any;
}

export interface FakeOllama {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Replies for the next requests, in order; when none is left, each request gets `{chat: "ok"}`. */
  script(...replies: Reply[]): void;
  close(): Promise<void>;
}

const tick = () => new Promise((r) => setImmediate(r));

export async function fakeOllama(): Promise<FakeOllama> {
  const requests: RecordedRequest[] = [];
  const queue: Reply[] = [];

  const server = http.createServer((req, res) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (raw += c));
    req.on("end", () => {
      void answer(req, res, raw).catch(() => res.destroy());
    });
  });

  async function answer(req: http.IncomingMessage, res: http.ServerResponse, raw: string) {
    let body: any;
    try {
      body = raw === "" ? undefined : JSON.parse(raw);
    } catch {
      body = raw;
    }
    requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
    if (req.method !== "POST" || req.url !== "/api/chat") {
      res.writeHead(404, { "content-type": "text/plain" }).end("404 page not found");
      return;
    }
    if (body === null || typeof body !== "object") {
      res.writeHead(400, { "content-type": "application/json; charset=utf-8" }).end(JSON.stringify({ error: "invalid request body" }));
      return;
    }
    const reply: Reply = queue.shift() ?? { chat: "ok" };
    const model = "model" in reply && reply.model !== undefined ? reply.model : body.model;
    const created_at = new Date().toISOString();

    if ("error" in reply) {
      res.writeHead(reply.status, { "content-type": "application/json; charset=utf-8", ...reply.headers }).end(JSON.stringify({ error: reply.error }));
    } else if ("raw" in reply) {
      res.writeHead(reply.status, { "content-type": reply.contentType ?? "application/json; charset=utf-8" }).end(reply.raw);
    } else if ("lines" in reply) {
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      for (const line of reply.lines) {
        const half = Math.floor(line.length / 2);
        res.write(line.slice(0, half));
        await tick();
        res.write(`${line.slice(half)}\n`);
        await tick();
      }
      res.end();
    } else if ("hang" in reply) {
      if (reply.afterChunks !== undefined) {
        res.writeHead(200, { "content-type": "application/x-ndjson" });
        for (let i = 0; i < reply.afterChunks; i++) res.write(`${JSON.stringify({ model, created_at, message: { role: "assistant", content: `part${i} ` }, done: false })}\n`);
      }
      // never ends; close() destroys the socket
    } else {
      const final = {
        model,
        created_at,
        done_reason: reply.doneReason ?? "stop",
        done: true,
        total_duration: 1_234_567,
        load_duration: 12_345,
        ...(reply.promptEvalCount === null ? {} : { prompt_eval_count: reply.promptEvalCount ?? 12 }),
        prompt_eval_duration: 23_456,
        eval_count: reply.evalCount ?? 5,
        eval_duration: 345_678,
      };
      if (body.stream === false) {
        res.writeHead(200, { "content-type": "application/json; charset=utf-8" }).end(JSON.stringify({ ...final, message: { role: "assistant", content: reply.chat } }));
        return;
      }
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      const pieces = reply.chat.match(/.{1,3}/gsu) ?? [];
      for (const piece of pieces) {
        const line = JSON.stringify({ model, created_at, message: { role: "assistant", content: piece }, done: false });
        const half = Math.floor(line.length / 2);
        res.write(line.slice(0, half));
        await tick();
        res.write(`${line.slice(half)}\n`);
      }
      res.end(`${JSON.stringify({ ...final, message: { role: "assistant", content: "" } })}\n`);
    }
  }

  const { url, close } = await listenOnLoopback(server);
  return {
    url,
    requests,
    script: (...replies) => void queue.push(...replies),
    close,
  };
}

/** A port on 127.0.0.1 that nothing listens on (connections are refused). */
export async function closedPort(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
