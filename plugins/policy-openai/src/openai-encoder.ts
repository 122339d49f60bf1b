/**
 * encoder/openai: text embeddings from OpenAI's Embeddings API (text-embedding-3-small/-large,
 * with `dimensions` to shorten them) or any OpenAI-compatible server: vLLM serving an embedding
 * model (http://host:8000/v1), Ollama (http://host:11434/v1, e.g. nomic-embed-text), llama.cpp's
 * llama-server started with --embeddings (http://host:8080/v1), the dev echo server.
 *
 * Key handling as policy/openai. Retries, rate limits, the per-text response cache and
 * accounting are the shared @bdc/policy layer (createEmbedder); vectors are L2-normalised.
 * Without `dimensions` the size is probed with one request when the instance starts (cached).
 */
import { Schema } from "effect";
import { definePlugin, option } from "@bdc/core";
import { createEmbedder, embedderFields, type Encoder, type EmbedderUsage } from "@bdc/policy";
import { openAIEmbeddingClient } from "./openai-embeddings.ts";
import { connectionFields, connectionPreflight, openAIConnection } from "./openai-plugin.ts";

export const OpenAIEncoderConfig = Schema.Struct({
  ...embedderFields,
  ...connectionFields,
  encoding_format: option(Schema.Literal("base64", "float"), "base64", "how vectors travel: base64 float32 (smaller, exact; OpenAI, vLLM, llama.cpp) or float (JSON numbers, for servers without base64)"),
});
export type OpenAIEncoderConfig = Schema.Schema.Type<typeof OpenAIEncoderConfig>;

export default definePlugin({
  id: "encoder/openai",
  version: "0.1.0",
  description: "Text embeddings over OpenAI's Embeddings API (official SDK); also vLLM, Ollama, llama.cpp and other OpenAI-compatible servers via baseURL",
  config: OpenAIEncoderConfig,
  preflight: (config, ctx) => connectionPreflight(config, ctx.env),
  make(config, _deps, kernel): Promise<Encoder & { stats(): EmbedderUsage }> {
    const { apiKey, endpoint, explain } = openAIConnection(config, kernel, {
      api: "Embeddings",
      slot: "encoder",
      badRequest: `is it an embedding model${config.dimensions === undefined ? "" : `, and does it support dimensions (${config.dimensions})`}? Inputs longer than its context are refused too: shorten the texts`,
    });
    const client = openAIEmbeddingClient({
      baseURL: endpoint,
      apiKey,
      organization: config.organization,
      project: config.project,
      encodingFormat: config.encoding_format,
      timeoutMs: config.timeout_ms,
      onNoUsage: () => kernel.warn(`${endpoint} reported no token usage: tokens and cost of this instance are counted as 0`),
    });
    return createEmbedder({ client, config, kernel, explain });
  },
});
