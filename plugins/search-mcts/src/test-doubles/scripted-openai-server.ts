/**
 * Test double: an OpenAI-compatible chat-completions server answering with the chain script
 * (the agent name is the request's model), so that the real policy/openai plugin, with its
 * response cache, can drive the search in tests. Loopback only; counts requests.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { chainScript } from "./scripted.ts";

export interface ScriptedServer {
  readonly url: string;
  requests(): number;
  /** Every prompt received (messages joined). */
  prompts(): string[];
  close(): Promise<void>;
}

const words = (s: string) => (s.match(/\S+/g) ?? []).length;

export async function startScriptedServer(): Promise<ScriptedServer> {
  let requests = 0;
  const prompts: string[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) {
        res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: "not found", type: "invalid_request_error" } }));
        return;
      }
      requests++;
      const json = JSON.parse(body) as { model: string; seed?: number; messages: Array<{ content: string }> };
      const prompt = json.messages.map((m) => m.content).join("\n");
      prompts.push(prompt);
      const text = chainScript(prompt, json.model, json.seed === undefined ? undefined : { seed: json.seed });
      const usage = { prompt_tokens: words(prompt), completion_tokens: words(text), total_tokens: words(prompt) + words(text) };
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({ id: `r${requests}`, object: "chat.completion", created: 0, model: json.model, choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }], usage }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    prompts: () => [...prompts],
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
