/**
 * A loopback server for the tests of the OpenAI clients: it records every request and answers
 * POSTs to one route from a script of handlers (then `fallback`), anything else with OpenAI's
 * 404 error body.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export type Json = Record<string, unknown>;
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: Json) => void;

export interface Wire {
  readonly url: string;
  readonly seen: Array<{ body: Json; headers: http.IncomingHttpHeaders; path: string }>;
  close(): Promise<void>;
}

export function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const data = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "x-request-id": "req_test", ...headers });
  res.end(data);
}

/** An error in OpenAI's `{"error": {...}}` shape. */
export function apiError(status: number, message: string, type: string, code: string | null, headers: Record<string, string> = {}): Handler {
  return (_req, res) => json(res, status, { error: { message, type, param: null, code } }, headers);
}

export const raw = (status: number, contentType: string, text: string): Handler => (_req, res) => {
  res.writeHead(status, { "content-type": contentType });
  res.end(text);
};

export async function wireServer(route: string, script: Handler[], fallback: Handler): Promise<Wire> {
  const seen: Wire["seen"] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Json;
      seen.push({ body, headers: req.headers, path: req.url ?? "" });
      if (req.method !== "POST" || req.url !== route) return apiError(404, "unknown url", "invalid_request_error", "unknown_url")(req, res, body);
      (script.shift() ?? fallback)(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
