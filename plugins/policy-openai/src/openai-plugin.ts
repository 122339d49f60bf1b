/**
 * policy/openai: a policy LLM over OpenAI's Chat Completions API, through the official `openai`
 * SDK. Also any OpenAI-compatible server: set `baseURL` (vLLM: http://host:8000/v1, llama.cpp's
 * llama-server: http://host:8080/v1, the dev echo server: http://127.0.0.1:8099/v1).
 *
 * API key: read from the variable named by `api_key_env` (default OPENAI_API_KEY). It is
 * required for api.openai.com (preflight reports BDC_POLICY_MISSING_KEY); when `baseURL` points
 * to another server a missing key is fine and the placeholder "EMPTY" is sent, as vLLM and
 * llama.cpp expect (a server that does want a key answers 401, reported with the variable to set).
 *
 * Retries, rate limits, the response cache and cost accounting are the shared @bdc/policy layer.
 */
import { Schema } from "effect";
import { BdcError, definePlugin, option, optional, type KernelServices } from "@bdc/core";
import { apiKeyProblems, createPolicy, policyFields, type Policy, type ProviderErrorKind, type Usage } from "@bdc/policy";
import { isOpenAIHost, OPENAI_BASE_URL, openAIClient, PLACEHOLDER_KEY } from "./openai-client.ts";

const HttpUrl = Schema.String.pipe(Schema.pattern(/^https?:\/\/[^\s/]+/, { message: () => "expected an http(s) URL, e.g. http://127.0.0.1:8000/v1" }));

/** Where and as whom: shared by policy/openai and encoder/openai. */
export const connectionFields = {
  baseURL: optional(HttpUrl, "OpenAI-compatible server, up to /v1 (vLLM, llama.cpp, Ollama, ...); default https://api.openai.com/v1. Another server needs no key"),
  api_key_env: option(Schema.String.pipe(Schema.minLength(1)), "OPENAI_API_KEY", "environment variable holding the API key (required for api.openai.com only)"),
  organization: optional(Schema.String, "OpenAI organization id (OpenAI-Organization header)"),
  project: optional(Schema.String, "OpenAI project id (OpenAI-Project header)"),
} as const;

interface ConnectionConfig {
  readonly model: string;
  readonly baseURL?: string | undefined;
  readonly api_key_env: string;
  readonly organization?: string | undefined;
  readonly project?: string | undefined;
  readonly timeout_ms: number;
}

export const OpenAIPolicyConfig = Schema.Struct({
  ...policyFields,
  ...connectionFields,
  max_tokens_param: option(
    Schema.Literal("max_tokens", "max_completion_tokens"),
    "max_tokens",
    "request field for the token limit: max_tokens (vLLM, llama.cpp, older OpenAI models) or max_completion_tokens (newer OpenAI models: o-series, gpt-5)",
  ),
});
export type OpenAIPolicyConfig = Schema.Schema.Type<typeof OpenAIPolicyConfig>;

/** The key to send, or undefined when none is set and the server is OpenAI's. */
export function resolveApiKey(config: Pick<ConnectionConfig, "api_key_env" | "baseURL">, env: Readonly<Record<string, string | undefined>>): string | undefined {
  const value = env[config.api_key_env]?.trim();
  if (value !== undefined && value !== "") return value;
  return isOpenAIHost(config.baseURL) ? undefined : PLACEHOLDER_KEY;
}

/** Another server (vLLM, llama.cpp, the echo server) needs no key: "EMPTY" is sent instead. */
export const connectionPreflight = (config: ConnectionConfig, env: Readonly<Record<string, string | undefined>>) =>
  isOpenAIHost(config.baseURL) ? apiKeyProblems(config.api_key_env, env, "OpenAI") : [];

/**
 * The endpoint and key of an instance (a missing key for OpenAI itself is an error), and what
 * to tell the user for each kind of failure; `api` names the API ("Chat Completions",
 * "Embeddings"), `badRequest` what in the request to check.
 */
export function openAIConnection(config: ConnectionConfig, kernel: KernelServices, what: { readonly api: string; readonly badRequest: string; readonly slot: string }) {
  const apiKey = resolveApiKey(config, process.env);
  const endpoint = (config.baseURL ?? OPENAI_BASE_URL).replace(/\/+$/, "");
  if (apiKey === undefined) {
    throw new BdcError({
      code: "BDC_POLICY_MISSING_KEY",
      message: `${what.slot} instance "${kernel.instance}": ${config.api_key_env} is not set: OpenAI needs an API key`,
      hint: `export ${config.api_key_env}=... (or point api_key_env at the variable holding the key, or baseURL at an OpenAI-compatible server)`,
    });
  }
  const local = !isOpenAIHost(config.baseURL);
  const keySet = apiKey !== PLACEHOLDER_KEY;
  const explain = (kind: ProviderErrorKind): string | undefined => {
    switch (kind) {
      case "auth":
        return keySet
          ? `${endpoint} refused the key in ${config.api_key_env}: check it (and organization / project), or point api_key_env at the right variable`
          : `${endpoint} wants an API key: export ${config.api_key_env}=... (or point api_key_env at the variable holding it)`;
      case "not_found":
        return local
          ? `${endpoint} does not serve model "${config.model}" or is not an OpenAI-compatible /v1 endpoint: check model (GET ${endpoint}/models lists them) and baseURL (it usually ends in /v1)`
          : `OpenAI has no model "${config.model}" available to this key: check the spelling, or your organization's access`;
      case "bad_request":
        return `${endpoint} rejected the request for model "${config.model}": ${what.badRequest}`;
      case "connection":
        return `cannot reach ${endpoint}: is the server running${local ? "" : " and the network up"}? (baseURL)`;
      case "timeout":
        return `${endpoint} did not answer within timeout_ms (${config.timeout_ms} ms): raise timeout_ms, or check the server`;
      case "rate_limit":
        return `${endpoint} kept rate-limiting model "${config.model}": lower concurrency, set requests_per_minute / tokens_per_minute, or raise max_retries`;
      case "malformed":
        return `${endpoint} answered with something that is not ${what.api === "Embeddings" ? "an" : "a"} ${what.api} response: is baseURL an OpenAI-compatible /v1 endpoint?`;
      case "server":
        return `${endpoint} kept failing (5xx): try again later, or raise max_retries`;
      default:
        return undefined;
    }
  };
  return { apiKey, endpoint, explain };
}

export default definePlugin({
  id: "policy/openai",
  version: "0.1.0",
  description: "Policy LLM over OpenAI Chat Completions (official SDK); also vLLM, llama.cpp and other OpenAI-compatible servers via baseURL",
  config: OpenAIPolicyConfig,
  preflight: (config, ctx) => connectionPreflight(config, ctx.env),
  make(config, _deps, kernel): Policy & { stats(): Usage } {
    const { apiKey, endpoint, explain } = openAIConnection(config, kernel, {
      api: "Chat Completions",
      slot: "policy",
      badRequest: `check the sampling options (temperature, top_p, stop, seed)${config.max_tokens_param === "max_tokens" ? "; newer OpenAI models want max_tokens_param: max_completion_tokens" : ""}`,
    });
    const client = openAIClient({
      baseURL: endpoint,
      apiKey,
      organization: config.organization,
      project: config.project,
      maxTokensParam: config.max_tokens_param,
      timeoutMs: config.timeout_ms,
      onNoUsage: () => kernel.warn(`${endpoint} reported no token usage: tokens and cost of this instance are counted as 0`),
    });
    return createPolicy({ client, config, kernel, explain });
  },
});
