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
 *   local              `local_model` is a checkpoint on this      -> policy/local (@bdc/lm-local,
 *                      machine: a hub id pulled with `bdc models     ONNX Runtime in-process)
 *                      pull` (under BDC_MODELS_DIR, default
 *                      .cache/bdc/models), or a checkpoint folder
 *
 * With none, preflight reports BDC_NO_MODEL_ACCESS, whose message lists the variables to set and
 * offers the offline route: pull `local_model` (default Qwen/Qwen2.5-Coder-0.5B-Instruct, about
 * 1 GB) with `pnpm bdc models pull`, or let `bdc run --yes` do it. Under `--yes`
 * (`ctx.assumeYes`) the preflight itself pulls it (progress on stderr; an interrupted pull resumes
 * the next time) and then counts `local` as available. `bdc validate` never downloads.
 *
 * `prefer` orders them; `rank: 1` takes the first available one, `rank: 2` the second (the first
 * when only one is available), so two agents `rank: 1` and `rank: 2` are two different models
 * where the user has two, and the same one otherwise. `make` builds the chosen provider plugin's
 * own instance (its config decoded through its own schema) with the same kernel services, so the
 * cache, retries, rate limits and accounting are exactly that plugin's.
 */
import * as path from "node:path";
import { Schema } from "effect";
import {
  BdcError,
  decodeConfig,
  definePlugin,
  formatPath,
  option,
  optional,
  type AnyPlugin,
  type ConfigPath,
  type ConfigSchema,
  type Io,
  type KernelServices,
  type Plugin,
  type PreflightContext,
  type PreflightProblem,
} from "@bdc/core";
import { policyFields, type Policy } from "@bdc/policy";
import { anthropicPlugin } from "@bdc/policy-anthropic";
import { DEFAULT_HOST, ollamaPolicy } from "@bdc/policy-ollama";
import { openaiPolicyPlugin } from "@bdc/policy-openai";

export type Env = Readonly<Record<string, string | undefined>>;

export const PROVIDERS = ["openai", "anthropic", "openai-compatible", "ollama", "local"] as const;
export type Provider = (typeof PROVIDERS)[number];
export const DEFAULT_PREFER: ReadonlyArray<Provider> = PROVIDERS;

/** The model `local` runs by default: a small instruct code model (Qwen2, safetensors, about 1 GB). */
export const DEFAULT_LOCAL_MODEL = "Qwen/Qwen2.5-Coder-0.5B-Instruct";

/** Download sizes of models we know (for the offer; preflight asks no hub without --yes). */
export const KNOWN_MODEL_SIZES: Readonly<Record<string, string>> = {
  "Qwen/Qwen2.5-Coder-0.5B-Instruct": "about 1 GB",
};

/** Where the no-access hint sends the user. */
export const README_SECTION = 'README.md, section "Policies: the agents"';

/** How long the Ollama probe waits for GET /api/version. */
export const OLLAMA_PROBE_TIMEOUT_MS = 300;

const ProviderName = Schema.Literal(...PROVIDERS);
const ModelName = Schema.String.pipe(Schema.minLength(1));

// Every key the provider plugins share except `model` (a model name only makes sense per provider).
const { model: _model, ...sharedFields } = policyFields;
const SHARED_KEYS = Object.keys(sharedFields) as ReadonlyArray<keyof typeof sharedFields>;

// policy/local's device keys (as it names them), passed through when `local` is chosen.
const localFields = {
  device: option(Schema.Literal("cpu", "webgpu", "cuda"), "cpu", "where the local model runs when local is chosen: cpu, webgpu (any GPU through ONNX Runtime's bundled WebGPU provider), or cuda (needs the ONNX Runtime CUDA provider)"),
  device_id: optional(Schema.Int.pipe(Schema.nonNegative()), "CUDA device ordinal for the local model (default 0)"),
  dtype: optional(Schema.Literal("float32", "float16"), "compute type of the local model: float32 (default), or float16 on a GPU"),
  threads: optional(Schema.Int.pipe(Schema.positive()), "CPU threads per operator for the local model (default: every core)"),
} as const;
const LOCAL_KEYS = Object.keys(localFields) as ReadonlyArray<keyof typeof localFields>;

export const AutoConfig = Schema.Struct({
  rank: option(
    Schema.Int.pipe(Schema.positive()),
    1,
    "which available provider, in `prefer` order: 1 = the first available, 2 = the second (the first when fewer are available)",
  ),
  prefer: option(
    Schema.Array(ProviderName).pipe(Schema.minItems(1)),
    DEFAULT_PREFER,
    "providers in order of preference: openai (OPENAI_API_KEY), anthropic (ANTHROPIC_API_KEY), openai-compatible (OPENAI_BASE_URL), ollama (OLLAMA_HOST or a local server), local (local_model pulled to this machine)",
  ),
  openai_model: option(ModelName, "gpt-4o-mini", "model when OpenAI is chosen"),
  anthropic_model: option(ModelName, "claude-3-5-sonnet-20241022", "model when Anthropic is chosen"),
  compatible_model: option(ModelName, "default", "model when the OpenAI-compatible server at OPENAI_BASE_URL is chosen (vLLM wants its served model name; llama.cpp takes any)"),
  ollama_model: option(ModelName, "qwen2.5-coder:7b", "model when Ollama is chosen (`ollama pull` it first)"),
  local_model: option(
    ModelName,
    DEFAULT_LOCAL_MODEL,
    "model when local is chosen (policy/local, in-process on ONNX Runtime): a hub id pulled with `pnpm bdc models pull <id>` (or by `bdc run --yes`), or a checkpoint folder",
  ),
  pull_local: option(
    Schema.Literal("ask", "yes"),
    "ask",
    "with no model access at all: ask (stop with a problem offering the pull; `bdc run --yes` does it) or yes (`bdc run` pulls local_model with its progress bar and runs on it, as --yes; `bdc validate` never downloads)",
  ),
  ...localFields,
  ...sharedFields,
});
export type AutoConfig = Schema.Schema.Type<typeof AutoConfig>;

/** Which provider was chosen, and why. */
export interface Choice {
  readonly provider: Provider;
  /** Why it counts as available, for the log ("OPENAI_API_KEY is set"). */
  readonly reason: string;
  /** openai-compatible: the baseURL; ollama: the host; local: the checkpoint folder. */
  readonly endpoint?: string | undefined;
  /**
   * local: the `model` policy/local is given: `local_model` itself, or the folder when
   * policy/local's own lookup (BDC_MODELS_DIR of process.env) would not find that same one.
   */
  readonly model?: string | undefined;
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

/** What `local` needs to know: which model, and where a relative folder is relative to. */
export interface LocalSpec {
  readonly model: string;
  readonly baseDir: string;
}

/** Shaped like a hub id (`org/name`), as @bdc/lm-local reads `model`; else it is a folder. */
export function isHubId(spec: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/.test(spec) && !spec.includes("..");
}

type LmLocal = typeof import("@bdc/lm-local");

/**
 * @bdc/lm-local, imported when first needed rather than at the top: only a run that looks for a
 * local model loads ONNX Runtime.
 */
const lmLocal = (): Promise<LmLocal> => import("@bdc/lm-local");

/** The checkpoint folder `spec` names on this machine, or undefined (not pulled, no such folder). */
async function localCheckpoint(spec: LocalSpec, env: Env): Promise<{ dir: string; model: string; reason: string } | undefined> {
  let lm: LmLocal;
  try {
    lm = await lmLocal();
  } catch {
    // No local runtime on this platform (ONNX Runtime failed to load): the other providers still work.
    return undefined;
  }
  const { modelsDir, resolveModelDir } = lm;
  let dir: string;
  try {
    dir = resolveModelDir(spec.model, spec.baseDir, modelsDir(env));
  } catch (e) {
    if (e instanceof BdcError) return undefined;
    throw e;
  }
  let own: string | undefined;
  try {
    own = resolveModelDir(spec.model, spec.baseDir);
  } catch {
    own = undefined;
  }
  const reason = dir === path.resolve(spec.baseDir, spec.model) ? `${spec.model} is a checkpoint folder` : `${spec.model} is pulled in ${dir}`;
  return { dir, model: own === dir ? spec.model : dir, reason };
}

async function availability(provider: Provider, env: Env, probe: () => Promise<boolean>, local: LocalSpec): Promise<Omit<Choice, "rank" | "fellBack"> | undefined> {
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
    case "local": {
      const found = await localCheckpoint(local, env);
      return found === undefined ? undefined : { provider, reason: found.reason, endpoint: found.dir, model: found.model };
    }
  }
}

/**
 * The provider for `config.rank` in `config.prefer` order, or undefined when none is available.
 * Lazy: the Ollama probe (and the look for a local checkpoint) runs only when the providers
 * preferred over it do not already fill the rank. A relative `local_model` folder is relative
 * to `baseDir` (the workflow file's folder).
 */
export async function chooseProvider(
  env: Env,
  config: Pick<AutoConfig, "rank" | "prefer"> & Partial<Pick<AutoConfig, "local_model">>,
  probe: () => Promise<boolean> = () => probeOllama(),
  baseDir: string = process.cwd(),
): Promise<Choice | undefined> {
  const found: Array<Omit<Choice, "rank" | "fellBack">> = [];
  const local: LocalSpec = { model: config.local_model ?? DEFAULT_LOCAL_MODEL, baseDir };
  for (const provider of new Set(config.prefer)) {
    if (found.length >= config.rank) break;
    const a = await availability(provider, env, probe, local);
    if (a !== undefined) found.push(a);
  }
  if (found.length === 0) return undefined;
  const exact = found[config.rank - 1];
  return { ...(exact ?? found[0]!), rank: config.rank, fellBack: exact === undefined };
}

type Online = Exclude<Provider, "local">;

const OPTIONS: Record<Online, { readonly verb: "set" | "run"; readonly text: string }> = {
  openai: { verb: "set", text: "OPENAI_API_KEY (OpenAI)" },
  anthropic: { verb: "set", text: "ANTHROPIC_API_KEY (Anthropic)" },
  "openai-compatible": { verb: "set", text: "OPENAI_BASE_URL (an OpenAI-compatible server such as vLLM or llama.cpp)" },
  ollama: { verb: "run", text: "an Ollama server (`ollama serve`, or set OLLAMA_HOST)" },
};

/** What the offline route of the message names. */
export interface OfflineOffer {
  /** `local_model`. */
  readonly model: string;
  /** The workflow file as the user types it (preflight's `ctx.workflow`); default `<workflow.yaml>`. */
  readonly workflow?: string | undefined;
}

/** "run M on this machine, offline: `pnpm bdc models pull M` (about 1 GB) ..." */
function offlinePhrase(offer: OfflineOffer): string {
  if (!isHubId(offer.model)) {
    return `put a checkpoint (config.json, *.safetensors, tokenizer.json) in the local_model folder ${offer.model} to run it on this machine (policy/local)`;
  }
  const size = KNOWN_MODEL_SIZES[offer.model];
  return (
    `run ${offer.model} on this machine, offline: \`pnpm bdc models pull ${offer.model}\`${size === undefined ? "" : ` (${size})`} and run again, ` +
    `or \`pnpm bdc run ${offer.workflow ?? "<workflow.yaml>"} --yes\` to pull it and run`
  );
}

/**
 * "no model access: set A, B, or run C; or run M on this machine, offline: ...", listing the
 * providers of `prefer` (the variables first, the local model last).
 */
export function noAccessMessage(prefer: ReadonlyArray<Provider> = DEFAULT_PREFER, offer: OfflineOffer = { model: DEFAULT_LOCAL_MODEL }): string {
  const unique = [...new Set(prefer)];
  const online = unique.filter((p): p is Online => p !== "local");
  const ordered = [...online.filter((p) => OPTIONS[p].verb === "set"), ...online.filter((p) => OPTIONS[p].verb === "run")];
  const phrases = ordered.map((p, i) => {
    const o = OPTIONS[p];
    const first = i === 0 || OPTIONS[ordered[i - 1]!].verb !== o.verb;
    return first ? `${o.verb} ${o.text}` : o.text;
  });
  const list = phrases.length <= 2 ? phrases.join(" or ") : `${phrases.slice(0, -1).join(", ")}, or ${phrases.at(-1)}`;
  if (!unique.includes("local")) return `no model access: ${list}`;
  return `no model access: ${list === "" ? "" : `${list}; or `}${offlinePhrase(offer)}`;
}

export const NO_ACCESS_HINT =
  `see ${README_SECTION}; then \`pnpm bdc validate\` the workflow again (policy/auto re-checks the environment). ` +
  "To try the wiring without any model: the scripted demo server (`node --import tsx plugins/search-mcts/src/dev/scripted-server.ts --problems workflows/data/quickstart-problems.jsonl --port 8098`) with OPENAI_BASE_URL=http://127.0.0.1:8098/v1";

export function noAccessProblem(prefer: ReadonlyArray<Provider> = DEFAULT_PREFER, offer: OfflineOffer = { model: DEFAULT_LOCAL_MODEL }): PreflightProblem {
  return { code: "BDC_NO_MODEL_ACCESS", message: noAccessMessage(prefer, offer), hint: NO_ACCESS_HINT };
}

/** policy/local, imported only when `local` is chosen: runs on the API providers never load ONNX Runtime. */
export async function loadLocalPlugin(): Promise<AnyPlugin> {
  return (await lmLocal()).localPolicyPlugin;
}

/**
 * `bdc run --yes` with no model access: pulls `local_model` into the models folder (progress on
 * `ctx.progress`; what an interrupted pull left is resumed). A problem when it fails.
 */
async function pullLocal(model: string, env: Env, ctx: PreflightContext): Promise<PreflightProblem | undefined> {
  const { modelsDir, pullModel } = await lmLocal();
  const out = path.join(modelsDir(env), ...model.split("/"));
  const progress = ctx.progress;
  const size = KNOWN_MODEL_SIZES[model];
  progress?.write(`${ctx.instance} (policy/auto): no model access; pulling ${model}${size === undefined ? "" : ` (${size})`} into ${out} to run it on this machine (--yes)\n`);
  const io: Io = { out: () => {}, err: progress?.write ?? (() => {}), cwd: process.cwd(), env, isTTY: progress?.isTTY ?? false };
  try {
    await pullModel({ repo: model, out, quiet: progress === undefined, io });
    return undefined;
  } catch (e) {
    if (!(e instanceof BdcError)) throw e;
    return {
      code: e.code,
      message: `no model access, and pulling local_model ${model} (--yes) failed: ${e.message}`,
      hint: `${e.hint ?? "run the same command again: the pull resumes where it stopped"}; or set up one of the other providers (see ${README_SECTION})`,
      path: ["local_model"],
    };
  }
}

interface Underlying {
  readonly plugin: AnyPlugin;
  readonly input: Record<string, unknown>;
  /** Our key that set the underlying `model`. */
  readonly modelKey: keyof AutoConfig;
}

/** The chosen provider plugin and its `with:` block, from ours. */
export async function underlyingConfig(choice: Choice, config: AutoConfig): Promise<Underlying> {
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
    case "local": {
      const device: Record<string, unknown> = {};
      for (const key of LOCAL_KEYS) if (config[key] !== undefined) device[key] = config[key];
      return { plugin: await loadLocalPlugin(), modelKey: "local_model", input: { ...shared, ...device, model: choice.model ?? config.local_model } };
    }
  }
}

const PASSED_KEYS: ReadonlyArray<string> = [...SHARED_KEYS, ...LOCAL_KEYS];

/** A problem of the underlying plugin, said in terms of our config (its baseURL/host come from the environment). */
function restate(choice: Choice, u: Underlying, p: { readonly message: string; readonly path?: ConfigPath | undefined }): { message: string; path: ConfigPath } {
  const [head, ...rest] = p.path ?? [];
  const ours = head === "model" ? [u.modelKey, ...rest] : typeof head === "string" && PASSED_KEYS.includes(head) ? [head, ...rest] : [];
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

const offerOf = (config: AutoConfig, workflow?: string): OfflineOffer => ({ model: config.local_model, workflow });

/** The plugin, with the environment and the Ollama probe injectable (tests). */
export function makeAutoPlugin(options: AutoOptions = {}): Plugin<AutoConfig, {}, Policy> {
  const probe = options.probe ?? (() => probeOllama());
  return definePlugin({
    id: "policy/auto",
    version: "0.1.0",
    description:
      "The model access the user has: OpenAI, Anthropic, an OpenAI-compatible server (OPENAI_BASE_URL), Ollama or a model pulled to this machine (policy/local), by preference and rank; " +
      "stops in preflight when there is none (offering to pull the local model; `bdc run --yes` pulls it)",
    config: AutoConfig,
    async preflight(config, ctx) {
      const env = options.env ?? ctx.env;
      let choice = await chooseProvider(env, config, probe, ctx.baseDir);
      if (choice === undefined) {
        const offer = offerOf(config, ctx.workflow);
        const yes = ctx.assumeYes === true || (config.pull_local === "yes" && ctx.forRun === true);
        if (!yes || !config.prefer.includes("local") || !isHubId(config.local_model)) return [noAccessProblem(config.prefer, offer)];
        const failed = await pullLocal(config.local_model, env, ctx);
        if (failed !== undefined) return [failed];
        choice = await chooseProvider(env, config, probe, ctx.baseDir);
        if (choice === undefined) return [noAccessProblem(config.prefer, offer)];
      }
      const u = await underlyingConfig(choice, config);
      const decoded = decodeUnderlying(choice, u);
      if (!decoded.ok) return decoded.problems;
      const inner = (await u.plugin.preflight?.(decoded.value, { ...ctx, env })) ?? [];
      return [...inner].map((p) => ({ code: p.code, hint: p.hint, ...restate(choice, u, p) }));
    },
    async make(config, _deps, kernel: KernelServices): Promise<Policy> {
      const env = options.env ?? process.env;
      const choice = await chooseProvider(env, config, probe, kernel.baseDir);
      if (choice === undefined) throw new BdcError({ code: "BDC_NO_MODEL_ACCESS", message: noAccessMessage(config.prefer, offerOf(config)), hint: NO_ACCESS_HINT, plugin: "policy/auto" });
      const u = await underlyingConfig(choice, config);
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
