/**
 * policy/ollama: a model served by Ollama (local by default) as a policy LLM. No API key; the
 * shared layer (@bdc/policy) gives it the response cache, retries, rate limits and accounting.
 */
import { Schema } from "effect";
import { BdcError, definePlugin, option, optional, type PreflightProblem } from "@bdc/core";
import { createPolicy, policyFields, type ProviderErrorKind } from "@bdc/policy";
import { canonicalHost, ollamaClient } from "./ollama-client.ts";

export const DEFAULT_HOST = "http://127.0.0.1:11434";

export const OllamaConfig = Schema.Struct({
  ...policyFields,
  host: option(Schema.String, DEFAULT_HOST, "the Ollama server"),
  keep_alive: optional(Schema.Union(Schema.String, Schema.Number), 'how long the model stays loaded after a call ("5m", seconds; -1 = forever, 0 = unload at once); the server default when unset'),
  num_ctx: optional(Schema.Int.pipe(Schema.positive()), "context window in tokens; Ollama's default is small and silently truncates longer prompts"),
});
export type OllamaConfig = Schema.Schema.Type<typeof OllamaConfig>;

/** The host must be an http(s) URL. Offline: nothing is contacted. */
export function hostProblems(host: string): PreflightProblem[] {
  let url: URL | undefined;
  try {
    url = new URL(host);
  } catch {
    url = undefined;
  }
  if (url !== undefined && (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "") return [];
  return [
    {
      code: "BDC_CONFIG_VALUE",
      path: ["host"],
      message: `host ${JSON.stringify(host)} is not an http(s) URL`,
      hint: `write the Ollama server's URL with its scheme, e.g. ${DEFAULT_HOST}`,
    },
  ];
}

/** What to tell the user for each failure kind: what to fix. */
export function explainFor(config: Pick<OllamaConfig, "model" | "host" | "timeout_ms">): (kind: ProviderErrorKind) => string | undefined {
  const host = canonicalHost(config.host);
  return (kind) => {
    switch (kind) {
      case "connection":
        return `is \`ollama serve\` running at ${host}? Start it (or set host: to where it listens)`;
      case "timeout":
        return `no answer within timeout_ms (${config.timeout_ms} ms): the first call loads the model, which can take minutes on a slow disk or CPU; raise timeout_ms, or keep the model loaded with keep_alive`;
      case "not_found":
        return `the server at ${host} does not have model "${config.model}": run \`ollama pull ${config.model}\` there (\`ollama list\` shows what it has), or check that host is the server's root URL`;
      case "rate_limit":
        return `the server at ${host} is refusing requests (429): lower concurrency or set requests_per_minute`;
      case "server":
        return `the Ollama server failed: see its log (\`journalctl -u ollama\`, or ~/.ollama/logs/server.log); a model too large for memory is a common cause. Lower concurrency if it is overloaded`;
      case "malformed":
        return `the answer from ${host} is not Ollama's /api/chat protocol: check that host points at an Ollama server (not a proxy page or another API)`;
      case "auth":
        return `the server at ${host} wants credentials (a proxy in front of Ollama?); for https://ollama.com set OLLAMA_API_KEY`;
      case "bad_request":
        return `Ollama rejected the request: check model "${config.model}" and the options (num_ctx, stop, keep_alive, ...)`;
      default:
        return undefined;
    }
  };
}

export default definePlugin({
  id: "policy/ollama",
  version: "0.1.0",
  description: "A model served by Ollama (local by default) as the policy LLM, through the official ollama client",
  config: OllamaConfig,
  preflight: (config) => hostProblems(config.host),
  make(config, _deps, kernel) {
    const problems = hostProblems(config.host);
    if (problems.length > 0) {
      const p = problems[0]!;
      throw new BdcError({ code: "BDC_CONFIG_VALUE", message: p.message, hint: p.hint, path: p.path });
    }
    const client = ollamaClient({ host: config.host, keepAlive: config.keep_alive, numCtx: config.num_ctx });
    return createPolicy({ client, config, kernel, explain: explainFor(config) });
  },
});
