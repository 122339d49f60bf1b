/**
 * The OpenAI Embeddings wire client (POST /v1/embeddings) behind the official SDK: one request
 * per batch, no retries of its own, every failure a ProviderError kind. Also vLLM
 * (`--task embed`), Ollama (/v1/embeddings) and llama.cpp (`--embeddings`).
 *
 * `encoding_format: base64` (the SDK's own default: a third of the bytes, exact float32) or
 * `float` for servers without base64; the answer is decoded either way, whatever the server sent.
 */
import type OpenAI from "openai";
import { ProviderError, type EmbeddingClient, type EmbeddingRequest, type EmbeddingResponse } from "@bdc/policy";
import { malformed, openAISdk, preview, timeoutError, toProviderError, type OpenAIClientOptions } from "./openai-client.ts";

export type EncodingFormat = "base64" | "float";

export interface OpenAIEmbeddingOptions extends Omit<OpenAIClientOptions, "maxTokensParam"> {
  readonly encodingFormat: EncodingFormat;
}

/** A base64 float32 string or a list of numbers, as a Float32Array. */
export function decodeEmbedding(value: unknown, at: number): Float32Array {
  if (typeof value === "string") {
    const bytes = Buffer.from(value, "base64");
    if (bytes.length === 0 || bytes.length % 4 !== 0) throw malformed(`data[${at}].embedding is base64 of ${bytes.length} bytes, not float32 values`);
    const out = new Float32Array(bytes.length / 4);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  if (Array.isArray(value) && value.length > 0 && value.every((x) => typeof x === "number")) return Float32Array.from(value as number[]);
  throw malformed(`data[${at}].embedding is neither a list of numbers nor base64: ${preview(value)}`);
}

export function openAIEmbeddingClient(options: OpenAIEmbeddingOptions): EmbeddingClient {
  const { sdk, endpoint } = openAISdk(options);
  return {
    provider: "openai",
    endpoint,
    async embed(request: EmbeddingRequest, signal: AbortSignal): Promise<EmbeddingResponse> {
      // The SDK's timeout stops at the response headers; this deadline also covers the body.
      const deadline = AbortSignal.timeout(request.timeoutMs);
      const combined = AbortSignal.any([signal, deadline]);
      const interrupted = () => (signal.aborted ? new ProviderError("aborted", "aborted") : deadline.aborted ? timeoutError(request.timeoutMs) : undefined);
      try {
        // Asking for the format explicitly makes the SDK hand the body back as it came (decoded below).
        const body = (await sdk.embeddings.create(
          { model: request.model, input: [...request.input], encoding_format: options.encodingFormat, ...(request.dimensions === undefined ? {} : { dimensions: request.dimensions }) },
          { signal: combined, timeout: request.timeoutMs },
        )) as unknown as Partial<OpenAI.CreateEmbeddingResponse> | null;
        const halt = interrupted();
        if (halt !== undefined) throw halt;
        if (typeof body !== "object" || body === null || !Array.isArray(body.data)) throw malformed(`the response is not an embedding list: ${preview(body)}`);
        const vectors: Array<Float32Array | undefined> = new Array(request.input.length).fill(undefined);
        body.data.forEach((d, i) => {
          const index = typeof d?.index === "number" ? d.index : i;
          if (index < 0 || index >= vectors.length || vectors[index] !== undefined) throw malformed(`data[${i}] has index ${index}: not one of the ${vectors.length} inputs, or repeated`);
          vectors[index] = decodeEmbedding(d.embedding, i);
        });
        const absent = vectors.findIndex((v) => v === undefined);
        if (absent >= 0) throw malformed(`${body.data.length} embeddings for ${vectors.length} inputs (input ${absent} has none)`);
        if (body.usage == null) options.onNoUsage?.();
        return { vectors: vectors as Float32Array[], inputTokens: body.usage?.prompt_tokens ?? 0, model: typeof body.model === "string" ? body.model : undefined };
      } catch (e) {
        throw interrupted() ?? toProviderError(e);
      }
    },
  };
}
