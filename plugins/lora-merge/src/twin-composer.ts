/**
 * Twin-Merging with its router, per input (Lu et al. 2024): the shared part plus each expert's
 * exclusive part weighted by the router - here the softmax of the input embedding's cosines to
 * the cluster centroids over a temperature (twin.ts). As a composer the parts are stacked like
 * experts (shared first) and the router's weights are the gates (1 on the shared ranks, w_k on
 * exclusive part k's), so the student composes per request on the same gated graph as DisenLoRA:
 * the Table 2 TWIN row in its dynamic form, `merge/twin`'s static adapter being the uniform one.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import { checkCompatible, readCentroids } from "@bdc/cluster";
import { compositionScale, filesKey, readModelConfig, readPeftAdapter, stackExperts, type Composer, type Composition, type ModelConfig } from "@bdc/lm-local";
import type { Encoder } from "@bdc/policy";
import { routerWeights } from "./twin.ts";

export interface TwinManifest {
  readonly experts: ReadonlyArray<string>;
  readonly shared: string;
  readonly exclusive: ReadonlyArray<string>;
  readonly router?: { readonly temperature?: number };
}

export function openTwinComposer(options: { readonly dir: string; readonly centroids: string; readonly model: string; readonly temperature?: number | undefined; readonly name: string }, encoder: Encoder): Composer & { readonly modelConfig: ModelConfig } {
  const manifestFile = path.join(options.dir, "twin.json");
  if (!fs.existsSync(manifestFile)) {
    throw new BdcError({ code: "BDC_TWIN_INVALID", message: `${manifestFile} does not exist`, hint: "give the folder merge/twin wrote (steps/<merge>/merged, with shared/ and exclusive-<k>/)" });
  }
  const manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8")) as TwinManifest;
  const modelConfig = readModelConfig(options.model);
  const parts = [{ name: "shared", dir: manifest.shared }, ...manifest.exclusive.map((dir, k) => ({ name: manifest.experts[k] ?? `expert-${k}`, dir }))];
  // The parts are factor adapters with alpha = rank (scale 1): stacked, the composition's scale is 1.
  let stack;
  try {
    stack = stackExperts(
      parts.map((p) => ({ name: p.name, adapter: readPeftAdapter(path.join(options.dir, p.dir), modelConfig) })),
      modelConfig,
    );
  } catch (e) {
    if (e instanceof BdcError && e.code === "BDC_EXPERTS_MISMATCH") throw e.with({ hint: "merge with merge/twin's shared_rank equal to exclusive_rank (the default) to route the parts per input" });
    throw e;
  }
  const centroids = readCentroids(options.centroids);
  if (centroids.k !== manifest.exclusive.length) {
    throw new BdcError({ code: "BDC_EXPERTS_MISMATCH", message: `${options.centroids} holds ${centroids.k} centroids; the Twin-Merging parts in ${options.dir} have ${manifest.exclusive.length} experts`, hint: "give the centroids of the clustering the experts were trained on" });
  }
  checkCompatible(centroids, encoder.dimension, encoder.model);
  const rows = Array.from({ length: centroids.k }, (_, k) => centroids.centroids.subarray(k * centroids.dim, (k + 1) * centroids.dim));
  const temperature = options.temperature ?? manifest.router?.temperature ?? 0.1;
  const r = stack.rank;
  return {
    name: options.name,
    stack,
    modelConfig,
    key: `${filesKey(options.dir)}:${parts.map((p) => filesKey(path.join(options.dir, p.dir))).join(",")}:${temperature}`,
    async compose(input, opts): Promise<Composition> {
      const [e] = await encoder.embed([input], opts?.signal === undefined ? undefined : { signal: opts.signal });
      const w = routerWeights(e!, rows, temperature);
      const g = new Float32Array(stack.experts.length * r);
      g.fill(1, 0, r);
      w.forEach((wk, k) => g.fill(wk, (k + 1) * r, (k + 2) * r));
      return { stack, gates: new Map([...stack.modules.keys()].map((key) => [key, g])), scale: compositionScale(stack, "authors") };
    },
  };
}
