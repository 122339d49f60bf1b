/**
 * @bdc/policy-auto: `policy/auto`, a policy on whatever model access the user has (OpenAI,
 * Anthropic, an OpenAI-compatible server, Ollama, a model pulled to this machine), built on those
 * provider plugins.
 */
export {
  default as autoPolicyPlugin,
  AutoConfig,
  chooseProvider,
  DEFAULT_LOCAL_MODEL,
  DEFAULT_PREFER,
  describeChoice,
  KNOWN_MODEL_SIZES,
  loadLocalPlugin,
  makeAutoPlugin,
  NO_ACCESS_HINT,
  noAccessMessage,
  noAccessProblem,
  OLLAMA_PROBE_TIMEOUT_MS,
  ollamaHostUrl,
  probeOllama,
  PROVIDERS,
  README_SECTION,
  underlyingConfig,
} from "./auto-plugin.ts";
export type { AutoOptions, Choice, Env, LocalSpec, OfflineOffer, Provider } from "./auto-plugin.ts";
