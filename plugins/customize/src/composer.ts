/**
 * The hypernetwork as a composer: reads a trained hypernetwork folder and its experts, checks
 * that they belong together (the experts, their rank and modules, the encoder), and turns an
 * input text into its composition (gates from the input's embedding).
 */
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import { checkCompatible } from "@bdc/cluster";
import { compositionScale, filesKey, readModelConfig, resolveModelDir, type Composer, type Composition, type ModelConfig } from "@bdc/lm-local";
import type { Encoder } from "@bdc/policy";
import { readHypernet } from "./hypernet.ts";
import { loadExpertStack } from "./train-hypernet.ts";

export interface HypernetComposerOptions {
  readonly hypernet: string;
  /** Expert folders in gate order (default: those recorded when the hypernetwork was trained). */
  readonly experts?: ReadonlyArray<string> | undefined;
  /** The base model (default: the one recorded when the hypernetwork was trained). */
  readonly model?: string | undefined;
  readonly baseDir: string;
  readonly name: string;
  /** Told once when an input is longer than the encoder's window. */
  readonly onTruncated?: ((message: string) => void) | undefined;
}

const invalid = (message: string, hint: string) => new BdcError({ code: "BDC_HYPERNET_CONFIG", message, hint });

export interface HypernetComposer extends Composer {
  /** The base model's config (what the experts adapt). */
  readonly modelConfig: ModelConfig;
  /** Inputs longer than the encoder's window so far. */
  truncated(): number;
}

export function openHypernetComposer(options: HypernetComposerOptions, encoder: Encoder): HypernetComposer {
  const dir = path.resolve(options.baseDir, options.hypernet);
  const net = readHypernet(dir);
  const recorded = net.extra["experts_dirs"] as string[] | undefined;
  const dirs = options.experts?.map((e) => path.resolve(options.baseDir, e)) ?? recorded;
  if (dirs === undefined) throw invalid(`${dir} records no expert folders`, "give experts: (the expert adapter folders, in gate order)");
  const base = options.model ?? (net.extra["base_model"] as string | undefined);
  if (base === undefined) throw invalid(`${dir} records no base model`, "give model: (the model the experts were trained on)");
  const c = net.config;
  if (dirs.length !== c.experts.length) throw invalid(`the hypernetwork in ${dir} gates ${c.experts.length} experts (${c.experts.join(", ")}); ${dirs.length} expert folders were given`, "give the experts it was trained with, in the same order");
  const modelConfig = readModelConfig(resolveModelDir(base, options.baseDir));
  const stack = loadExpertStack(
    dirs.map((d, k) => ({ name: c.experts[k]!, dir: d })),
    modelConfig,
    c.layers,
    c.targets,
  );
  if (stack.rank !== c.rank) throw invalid(`the hypernetwork in ${dir} was trained over experts of rank ${c.rank}; these experts have rank ${stack.rank}`, "give the experts it was trained with, or train it again over these");
  checkCompatible({ file: path.join(dir, "hypernet.safetensors"), k: net.K, dim: c.encoder.dimension, centroids: net.centroids, model: c.encoder.model }, encoder.dimension, encoder.model);
  const scale = compositionScale(stack, c.gateScale, net.gateMass);
  let truncated = 0;
  return {
    name: options.name,
    stack,
    modelConfig,
    key: `${filesKey(dir)}:${dirs.map((d) => filesKey(d)).join(",")}`,
    truncated: () => truncated,
    async compose(input, opts): Promise<Composition> {
      if (encoder.maxTokens !== undefined && encoder.countTokens !== undefined && encoder.countTokens(input) > encoder.maxTokens) {
        if (truncated++ === 0) options.onTruncated?.(`an input is longer than the encoder's window of ${encoder.maxTokens} tokens (${encoder.model}): its gates come from its first ${encoder.maxTokens} tokens (counted in the composer's stats)`);
      }
      const [e] = await encoder.embed([input], opts?.signal === undefined ? undefined : { signal: opts.signal });
      return { stack, gates: net.forward(e!).gates, scale };
    },
  };
}
