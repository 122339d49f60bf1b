/**
 * @bdc/policy-openai: the `policy/openai` and `encoder/openai` plugins (OpenAI and
 * OpenAI-compatible servers through the official SDK) and a dev echo server that speaks the same
 * protocols offline.
 */
export { default as openaiPolicyPlugin, OpenAIPolicyConfig, resolveApiKey } from "./openai-plugin.ts";
export { default as openaiEncoderPlugin, OpenAIEncoderConfig } from "./openai-encoder.ts";
export { isOpenAIHost, OPENAI_BASE_URL, openAIClient, PLACEHOLDER_KEY, toProviderError } from "./openai-client.ts";
export type { MaxTokensParam, OpenAIClientOptions } from "./openai-client.ts";
export { decodeEmbedding, openAIEmbeddingClient } from "./openai-embeddings.ts";
export { ECHO_EMBEDDING_DIMENSION, echoEmbedding, startEchoServer } from "./dev/echo-server.ts";
export type { EchoServer } from "./dev/echo-server.ts";
