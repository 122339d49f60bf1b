/**
 * @bdc/policy-ollama: the policy/ollama plugin, a model served by Ollama as a policy LLM on the
 * shared @bdc/policy layer.
 */
export { default as ollamaPolicy, DEFAULT_HOST, OllamaConfig, explainFor, hostProblems } from "./ollama-plugin.ts";
export { canonicalHost, ollamaClient, statusKind } from "./ollama-client.ts";
export type { OllamaClientOptions } from "./ollama-client.ts";
