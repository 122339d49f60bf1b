/**
 * `policy/anthropic`: Claude through the Messages API (official SDK). Everything but the wire
 * protocol (cache, retries, rate limits, accounting) is @bdc/policy's createPolicy.
 */
import { Schema } from "effect";
import { definePlugin, option, optional } from "@bdc/core";
import { apiKeyProblems, createPolicy, policyFields, type Policy, type ProviderErrorKind } from "@bdc/policy";
import { anthropicClient, CURRENT_API_VERSION, DEFAULT_BASE_URL, sendsSampling } from "./anthropic-client.ts";

const EnvVarName = Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: () => "an environment variable name (letters, digits, _)" }));
const HttpUrl = Schema.String.pipe(Schema.pattern(/^https?:\/\/\S+$/, { message: () => "an http(s) URL" }));
const ApiVersion = Schema.String.pipe(Schema.pattern(/^\d{4}-\d{2}-\d{2}$/, { message: () => "an API version date, YYYY-MM-DD" }));

export const AnthropicConfig = Schema.Struct({
  ...policyFields,
  baseURL: optional(HttpUrl, `API root, without /v1/messages (default: $ANTHROPIC_BASE_URL, else ${DEFAULT_BASE_URL}); a gateway or proxy speaking the Messages API`),
  api_key_env: option(EnvVarName, "ANTHROPIC_API_KEY", "environment variable holding the API key"),
  anthropic_version: option(
    ApiVersion,
    CURRENT_API_VERSION,
    `anthropic-version header. ${CURRENT_API_VERSION} has no sampling parameters: temperature and top_p are not sent (the model samples with its own setting); 2023-06-01 sends them (models up to Claude Opus 4.6 honour them; newer ones reject temperature other than 1). seed is never sent: Anthropic has none`,
  ),
});
export type AnthropicConfig = Schema.Schema.Type<typeof AnthropicConfig>;

export default definePlugin({
  id: "policy/anthropic",
  version: "0.1.0",
  description: "Anthropic Claude (Messages API, official SDK): system prompt, streaming, shared cache/retries/rate limits/cost accounting; no seed",
  config: AnthropicConfig,
  preflight(config, ctx) {
    // A replay from the cache never calls the API, so it needs no key.
    if (config.cache === "read-only") return [];
    return apiKeyProblems(config.api_key_env, ctx.env, "Anthropic");
  },
  make(config, _deps, kernel): Policy {
    const key = process.env[config.api_key_env]?.trim();
    const baseURL = (config.baseURL || process.env["ANTHROPIC_BASE_URL"] || DEFAULT_BASE_URL).replace(/\/+$/, "");
    const client = anthropicClient({
      apiKey: key === undefined || key === "" ? undefined : key,
      apiKeyEnv: config.api_key_env,
      baseURL,
      apiVersion: config.anthropic_version,
      timeoutMs: config.timeout_ms,
      onUnsentSampling: (what) =>
        kernel.warn(
          `policy instance "${kernel.instance}": Anthropic (API version ${config.anthropic_version}) does not take ${what}: not sent, the model samples with its own setting` +
            (sendsSampling(config.anthropic_version) ? "" : " (anthropic_version: 2023-06-01 sends temperature and top_p; models up to Claude Opus 4.6 honour them)"),
        ),
    });
    const explain = (kind: ProviderErrorKind): string | undefined => {
      switch (kind) {
        case "auth":
          return `set ${config.api_key_env} to a valid Anthropic API key with access to ${config.model} (or point api_key_env at the variable holding it; a gateway at baseURL may want its own key)`;
        case "not_found":
          return `check the model name "${config.model}" (e.g. claude-sonnet-4-5; see https://docs.anthropic.com/en/docs/about-claude/models) and baseURL ${baseURL} (the API root, without /v1/messages)`;
        case "bad_request":
          return sendsSampling(config.anthropic_version)
            ? `the API rejected the request: models newer than Claude Opus 4.6 reject temperature other than 1 and top_p: drop anthropic_version (or set temperature: 1); also check max_tokens (${config.max_tokens}) against the model's output limit`
            : `the API rejected the request: check max_tokens (${config.max_tokens}) against the model's output limit, stop sequences, and the account's credit balance`;
        case "timeout":
          return `no answer within timeout_ms (${config.timeout_ms} ms): raise timeout_ms, or set stream: true for long generations`;
        case "connection":
          return `cannot reach ${baseURL}: check baseURL, the network and any proxy`;
        case "malformed":
          return `${baseURL} does not answer in the Messages API format: check baseURL`;
        case "rate_limit":
          return `Anthropic kept rate-limiting: lower concurrency, or set requests_per_minute / tokens_per_minute to your tier's limits`;
        default:
          return undefined;
      }
    };
    return createPolicy({ client, config, kernel, explain });
  },
});
