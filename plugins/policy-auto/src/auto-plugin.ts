/**
 * policy/auto: a policy on whatever model access the user has, so that one workflow (the
 * quickstart) runs anywhere it can, and stops in preflight, before any work, where it cannot.
 *
 * Providers, and when each counts as available (from the environment):
 *   openai             OPENAI_API_KEY is set                      -> policy/openai (api.openai.com)
 *   anthropic          ANTHROPIC_API_KEY is set                   -> policy/anthropic
 *   openai-compatible  OPENAI_BASE_URL is set (vLLM, llama.cpp,   -> policy/openai with baseURL
 *                      LM Studio, ...; a key is optional)
 *   ollama             OLLAMA_HOST is set, or a server answers    -> policy/ollama
 *                      GET /api/version on http://127.0.0.1:11434
 *                      within 300 ms (the only network call of
 *                      preflight; loopback only)
 *
 * `prefer` orders them; `rank: 1` takes the first available one, `rank: 2` the second (the first
 * when only one is available), so two agents `rank: 1` and `rank: 2` are two different models
 * where the user has two, and the same one otherwise. `make` builds the chosen provider plugin's
 * own instance (its config decoded through its own schema) with the same kernel services, so the
 * cache, retries, rate limits and accounting are exactly that plugin's.
 */
import { Schema } from "effect";
import { BdcError, decodeConfig, definePlugin, formatPath, option, type AnyPlugin, type ConfigPath, type ConfigSchema, type KernelServices, type Plugin, type PreflightProblem } from "@bdc/core";
import { policyFields, type Policy } from "@bdc/policy";
import { anthropicPlugin } from "@bdc/policy-anthropic";
import { DEFAULT_HOST, ollamaPolicy } from "@bdc/policy-ollama";
import { openaiPolicyPlugin } from "@bdc/policy-openai";

export type Env = Readonly<Record<string, string | undefined>>;

export const PROVIDERS = ["openai", "anthropic", "openai-compatible", "ollama"] as const;
export type Provider = (typeof PROVIDERS)[number];
export const DEFAULT_PREFER: ReadonlyArray<Provider> = PROVIDERS;

/** Where the no-access hint sends the user. */
export const README_SECTION = 'README.md, section "Policies: the agents"';

/** How long the Ollama probe waits for GET /api/version. */
export const OLLAMA_PROBE_TIMEOUT_MS = 300;

const ProviderName = Schema.Literal(...PROVIDERS);
const ModelName = Schema.String.pipe(Schema.minLength(1));

// Every key the provider plugins share except `model` (a model name only makes sense per provider).
const { model: _model, ...sharedFields } = policyFields;
const SHARED_KEYS = Object.keys(sharedFields) as ReadonlyArray<keyof typeof sharedFields>;

export const AutoConfig = Schema.Struct({
  rank: option(
    Schema.Int.pipe(Schema.positive()),
    1,
    "which available provider, in `prefer` order: 1 = the first available, 2 = the second (the first when fewer are available)",
  ),
  prefer: option(
    Schema.Array(ProviderName).pipe(Schema.minItems(1)),
    DEFAULT_PREFER,
    "providers in order of preference: openai (OPENAI_API_KEY), anthropic (ANTHROPIC_API_KEY), openai-compatible (OPENAI_BASE_URL), ollama (OLLAMA_HOST or a local server)",
  ),
  openai_model: option(ModelName, "gpt-4o-mini", "model when OpenAI is chosen"),
  anthropic_model: option(ModelName, "claude-3-5-sonnet-20241022", "model when Anthropic is chosen"),
  compatible_model: option(ModelName, "default", "model when the OpenAI-compatible server at OPENAI_BASE_URL is chosen (vLLM wants its served model name; llama.cpp takes any)"),
  ollama_model: option(ModelName, "qwen2.5-coder:7b", "model when Ollama is chosen (`ollama pull` it first)"),
  ...sharedFields,
});
export type AutoConfig = Schema.Schema.Type<typeof AutoConfig>;

/** Which provider was chosen, and why. */
export interface Choice {
  readonly provider: Provider;
  /** Why it counts as available, for the log ("OPENAI_API_KEY is set"). */
  readonly reason: string;
  /** openai-compatible: the baseURL; ollama: the host. */
  readonly endpoint?: string | undefined;
  /** The rank asked for, and whether it fell back to the first available provider. */
  readonly rank: number;
  readonly fellBack: boolean;
}

const isSet = (v: string | undefined): v is string => v !== undefined && v.trim() !== "";

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * Does an Ollama server answer GET /api/version at `base` within `timeoutMs`? Loopback hosts
 * only (anything else is `false` without a request): this runs in preflight.
 */
export async function probeOllama(base: string = DEFAULT_HOST, timeoutMs: number = OLLAMA_PROBE_TIMEOUT_MS): Promise<boolean> {
  let url: URL;
  try {
    url = new URL("/api/version", base);
  } catch {
    return false;
  }
  if (url.protocol !== "http:" || !isLoopback(url.hostname)) return false;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) {
      await res.body?.cancel();
      return false;
    }
    const body = (await res.json()) as unknown;
    return typeof body === "object" && body !== null && typeof (body as { version?: unknown }).version === "string";
  } catch {
    return false;
  }
}

/**
 * OLLAMA_HOST as the ollama CLI reads it: `host`, `host:port` or a URL; without a scheme it is
 * http and the port defaults to 11434. A bind-all address (0.0.0.0, ::) means this machine.
 */
export function ollamaHostUrl(value: string): string {
  let v = value.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
    let hostport = v === "" ? "127.0.0.1" : v;
    if (!hostport.startsWith("[") && (hostport.match(/:/g) ?? []).length > 1) hostport = `[${hostport}]`; // a bare IPv6 address
    if (!/:\d+$/.test(hostport)) hostport += ":11434";
    v = `http://${hostport}`;
  }
  try {
    const url = new URL(v);
    if (url.hostname === "0.0.0.0" || url.hostname === "[::]") url.hostname = "127.0.0.1";
    return url.href.replace(/\/+$/, "");
  } catch {
    return v; // policy/ollama's own check reports it (with OLLAMA_HOST named)
  }
}

async function availability(provider: Provider, env: Env, probe: () => Promise<boolean>): Promise<Omit<Choice, "rank" | "fellBack"> | undefined> {
  switch (provider) {
    case "openai":
      return isSet(env["OPENAI_API_KEY"]) ? { provider, reason: "OPENAI_API_KEY is set" } : undefined;
    case "anthropic":
      return isSet(env["ANTHROPIC_API_KEY"]) ? { provider, reason: "ANTHROPIC_API_KEY is set" } : undefined;
    case "openai-compatible": {
      const base = env["OPENAI_BASE_URL"];
      return isSet(base) ? { provider, reason: `OPENAI_BASE_URL=${base.trim()}`, endpoint: base.trim() } : undefined;
    }
    case "ollama": {
      const host = env["OLLAMA_HOST"];
      if (isSet(host)) return { provider, reason: `OLLAMA_HOST=${host.trim()}`, endpoint: ollamaHostUrl(host) };
      return (await probe()) ? { provider, reason: `an Ollama server answers at ${DEFAULT_HOST}`, endpoint: DEFAULT_HOST } : undefined;
    }
  }
}

/**
 * The provider for `config.rank` in `config.prefer` order, or undefined when none is available.
 * Lazy: the Ollama probe runs only when the providers preferred over it do not already fill the rank.
 */
export async function chooseProvider(
  env: Env,
  config: Pick<AutoConfig, "rank" | "prefer">,
  probe: () => Promise<boolean> = () => probeOllama(),
): Promise<Choice | undefined> {
  const found: Array<Omit<Choice, "rank" | "fellBack">> = [];
  for (const provider of new Set(config.prefer)) {
    if (found.length >= config.rank) break;
    const a = await availability(provider, env, probe);
    if (a !== undefined) found.push(a);
  }
  if (found.length === 0) return undefined;
  const exact = found[config.rank - 1];
  return { ...(exact ?? found[0]!), rank: config.rank, fellBack: exact === undefined };
}

const OPTIONS: Record<Provider, { readonly verb: "set" | "run"; readonly text: string }> = {
  openai: { verb: "set", text: "OPENAI_API_KEY (OpenAI)" },
  anthropic: { verb: "set", text: "ANTHROPIC_API_KEY (Anthropic)" },
  "openai-compatible": { verb: "set", text: "OPENAI_BASE_URL (an OpenAI-compatible server such as vLLM or llama.cpp)" },
  ollama: { verb: "run", text: "an Ollama server (`ollama serve`, or set OLLAMA_HOST)" },
};

/** "no model access: set A, B, or run C", listing the providers of `prefer` (the variables first). */
export function noAccessMessage(prefer: ReadonlyArray<Provider> = DEFAULT_PREFER): string {
  const unique = [...new Set(prefer)];
  const ordered = [...unique.filter((p) => OPTIONS[p].verb === "set"), ...unique.filter((p) => OPTIONS[p].verb === "run")];
  const phrases = ordered.map((p, i) => {
    const o = OPTIONS[p];
    const first = i === 0 || OPTIONS[ordered[i - 1]!].verb !== o.verb;
    return first ? `${o.verb} ${o.text}` : o.text;
  });
  const list = phrases.length <= 2 ? phrases.join(" or ") : `${phrases.slice(0, -1).join(", ")}, or ${phrases.at(-1)}`;
  return `no model access: ${list}`;
}

export const NO_ACCESS_HINT = `see ${README_SECTION}; then \`pnpm bdc validate\` the workflow again (policy/auto re-checks the environment)`;

export function noAccessProblem(prefer: ReadonlyArray<Provider> = DEFAULT_PREFER): PreflightProblem {
  return { code: "BDC_NO_MODEL_ACCESS", message: noAccessMessage(prefer), hint: NO_ACCESS_HINT };
}

interface Underlying {
  readonly plugin: AnyPlugin;
  readonly input: Record<string, unknown>;
  /** Our key that set the underlying `model`. */
  readonly modelKey: keyof AutoConfig;
}

/** The chosen provider plugin and its `with:` block, from ours. */
export function underlyingConfig(choice: Choice, config: AutoConfig): Underlying {
  const shared: Record<string, unknown> = {};
  for (const key of SHARED_KEYS) if (config[key] !== undefined) shared[key] = config[key];
  switch (choice.provider) {
    case "openai":
      return { plugin: openaiPolicyPlugin, modelKey: "openai_model", input: { ...shared, model: config.openai_model } };
    case "anthropic":
      return { plugin: anthropicPlugin, modelKey: "anthropic_model", input: { ...shared, model: config.anthropic_model } };
    case "openai-compatible":
      return { plugin: openaiPolicyPlugin, modelKey: "compatible_model", input: { ...shared, model: config.compatible_model, baseURL: choice.endpoint } };
    case "ollama":
      return { plugin: ollamaPolicy, modelKey: "ollama_model", input: { ...shared, model: config.ollama_model, host: choice.endpoint ?? DEFAULT_HOST } };
  }
}

/** A problem of the underlying plugin, said in terms of our config (its baseURL/host come from the environment). */
function restate(choice: Choice, u: Underlying, p: { readonly message: string; readonly path?: ConfigPath | undefined }): { message: string; path: ConfigPath } {
  const [head, ...rest] = p.path ?? [];
  const ours = head === "model" ? [u.modelKey, ...rest] : typeof head === "string" && (SHARED_KEYS as ReadonlyArray<string>).includes(head) ? [head, ...rest] : [];
  const key = head === undefined || ours.length > 0 ? "" : `${formatPath(p.path ?? [])}: `;
  return { message: `${u.plugin.id} (chosen: ${choice.reason}): ${key}${p.message}`, path: ours };
}

function decodeUnderlying(choice: Choice, u: Underlying): { ok: true; value: unknown } | { ok: false; problems: PreflightProblem[] } {
  const result = decodeConfig(u.plugin.config as ConfigSchema, u.input);
  if (result.ok) return result;
  return { ok: false, problems: result.problems.map((p) => ({ code: p.code, hint: p.hint, ...restate(choice, u, p) })) };
}

export function describeChoice(choice: Choice, model: string): string {
  const fallback = choice.fellBack ? ` (rank ${choice.rank} asked, only one provider available: the first)` : ` (rank ${choice.rank})`;
  return `policy/auto chose ${choice.provider}, model ${model}: ${choice.reason}${fallback}`;
}

export interface AutoOptions {
  /** The environment to read; default: preflight's `ctx.env`, and `process.env` in make. */
  readonly env?: Env;
  /** Is a local Ollama server there? Default: GET http://127.0.0.1:11434/api/version within 300 ms. */
  readonly probe?: () => Promise<boolean>;
}

/** The plugin, with the environment and the Ollama probe injectable (tests). */
export function makeAutoPlugin(options: AutoOptions = {}): Plugin<AutoConfig, {}, Policy> {
  const probe = options.probe ?? (() => probeOllama());
  return definePlugin({
    id: "policy/auto",
    version: "0.1.0",
    description: "The model access the user has: OpenAI, Anthropic, an OpenAI-compatible server (OPENAI_BASE_URL) or Ollama, by preference and rank; stops in preflight when there is none",
    config: AutoConfig,
    async preflight(config, ctx) {
      const env = options.env ?? ctx.env;
      const choice = await chooseProvider(env, config, probe);
      if (choice === undefined) return [noAccessProblem(config.prefer)];
      const u = underlyingConfig(choice, config);
      const decoded = decodeUnderlying(choice, u);
      if (!decoded.ok) return decoded.problems;
      const inner = (await u.plugin.preflight?.(decoded.value, { ...ctx, env })) ?? [];
      return [...inner].map((p) => ({ code: p.code, hint: p.hint, ...restate(choice, u, p) }));
    },
    async make(config, _deps, kernel: KernelServices): Promise<Policy> {
      const env = options.env ?? process.env;
      const choice = await chooseProvider(env, config, probe);
      if (choice === undefined) throw new BdcError({ code: "BDC_NO_MODEL_ACCESS", message: noAccessMessage(config.prefer), hint: NO_ACCESS_HINT, plugin: "policy/auto" });
      const u = underlyingConfig(choice, config);
      const decoded = decodeUnderlying(choice, u);
      if (!decoded.ok) {
        const first = decoded.problems[0]!;
        throw new BdcError({ code: first.code ?? "BDC_CONFIG_VALUE", message: decoded.problems.map((p) => p.message).join("; "), hint: first.hint, plugin: "policy/auto" });
      }
      const policy = (await u.plugin.make(decoded.value, {}, kernel)) as Policy;
      kernel.log(describeChoice(choice, policy.model));
      return policy;
    },
  });
}

export default makeAutoPlugin();
