/** @bdc/policy-anthropic: Claude as a BDC policy (`policy/anthropic`). */
export { default as anthropicPlugin, AnthropicConfig } from "./anthropic-plugin.ts";
export { anthropicClient, CURRENT_API_VERSION, DEFAULT_BASE_URL, kindOfStatus, sendsSampling, toMessageParams, toProviderError, toResponse } from "./anthropic-client.ts";
export type { AnthropicClientOptions } from "./anthropic-client.ts";
