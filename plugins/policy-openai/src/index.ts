/**
 * @bdc/policy-openai: the `policy/openai` plugin (OpenAI and OpenAI-compatible servers through
 * the official SDK) and a dev echo server that speaks the same protocol offline.
 */
export { default as openaiPolicyPlugin, OpenAIPolicyConfig, resolveApiKey } from "./openai-plugin.ts";
export { isOpenAIHost, OPENAI_BASE_URL, openAIClient, PLACEHOLDER_KEY, toProviderError } from "./openai-client.ts";
export type { MaxTokensParam, OpenAIClientOptions } from "./openai-client.ts";
export { startEchoServer } from "./dev/echo-server.ts";
export type { EchoServer } from "./dev/echo-server.ts";
