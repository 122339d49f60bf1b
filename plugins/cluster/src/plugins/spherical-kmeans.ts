/**
 * cluster/spherical-kmeans: cosine k-means of embeddings (the BDC authors: K = 3, each sample in
 * the cluster of highest cosine). `k: auto` tries every K in [k_min, k_max] and keeps the one of
 * highest cosine silhouette (on a seeded sample of at most `silhouette_sample` vectors), reporting
 * the objective and silhouette of every K tried.
 */
import { Schema } from "effect";
import { definePlugin, option, optional } from "@bdc/core";
import { normalizeRows, SphericalKMeans, type KMeansResult } from "../kmeans.ts";

export interface KTried {
  readonly k: number;
  readonly objective: number;
  readonly silhouette: number;
}

export interface Clustering extends KMeansResult {
  readonly silhouette: number;
  readonly tried: ReadonlyArray<KTried>;
}

export interface Clusterer {
  readonly name: string;
  /** `vectors`: n rows of dimension d (normalised here); `ids` name the rows in errors. */
  cluster(vectors: Float32Array, n: number, d: number, ids: ReadonlyArray<string>, log?: (line: string) => void): Promise<Clustering>;
}

declare module "@bdc/core" {
  interface SlotTypes {
    cluster: Clusterer;
  }
}

const positiveInt = Schema.Int.pipe(Schema.positive());

export default definePlugin({
  id: "cluster/spherical-kmeans",
  version: "0.1.0",
  description: "Spherical (cosine) k-means: k-means++ seeding, n_init restarts keeping the best objective, assignment by highest cosine; k fixed (the authors: 3) or auto by cosine silhouette",
  config: Schema.Struct({
    k: option(Schema.Union(positiveInt, Schema.Literal("auto")), 3, "number of clusters (the BDC authors: 3), or auto: the K of highest cosine silhouette in [k_min, k_max]"),
    k_min: option(Schema.Int.pipe(Schema.greaterThanOrEqualTo(2)), 2, "k: auto: the smallest K tried"),
    k_max: option(Schema.Int.pipe(Schema.greaterThanOrEqualTo(2)), 8, "k: auto: the largest K tried"),
    n_init: option(positiveInt, 4, "restarts from new seeds; the best objective wins"),
    max_iter: option(positiveInt, 300, "iterations per restart"),
    tol: option(Schema.Number.pipe(Schema.nonNegative()), 1e-6, "stop when the centroids move less than this (sum of squared shifts)"),
    seed: option(Schema.Int, 0, "seeding; the same seed gives the same clusters"),
    silhouette_sample: option(positiveInt, 2000, "vectors the silhouette is computed on (seeded sample; the score is O(n^2))"),
    threads: optional(positiveInt, "CPU threads (default: every core)"),
  }),
  make(config, _deps, kernel) {
    let km: Promise<SphericalKMeans> | undefined;
    const clusterer: Clusterer & { close(): Promise<void> } = {
      name: kernel.instance,
      async cluster(vectors, n, d, ids, log) {
        km ??= SphericalKMeans.open(config.threads);
        const k = await km;
        const x = normalizeRows(vectors, n, d, ids);
        const options = { nInit: config.n_init, maxIter: config.max_iter, tol: config.tol, seed: config.seed, threads: config.threads };
        const ks = config.k === "auto" ? Array.from({ length: Math.max(0, Math.min(config.k_max, n - 1) - config.k_min + 1) }, (_, i) => config.k_min + i) : [config.k];
        if (ks.length === 0) ks.push(Math.min(config.k_min, n));
        const tried: KTried[] = [];
        let best: { result: KMeansResult; silhouette: number } | undefined;
        for (const kk of ks) {
          const result = await k.fit(x, n, d, { ...options, k: kk });
          const silhouette = await k.silhouette(x, n, d, result.labels, kk, config.silhouette_sample, config.seed);
          tried.push({ k: kk, objective: result.objective, silhouette });
          log?.(`K=${kk}: objective ${result.objective.toFixed(2)}, silhouette ${silhouette.toFixed(4)}, sizes ${result.sizes.join("/")}${result.reseeded > 0 ? `, ${result.reseeded} empty clusters reseeded` : ""}`);
          if (best === undefined || (config.k === "auto" && silhouette > best.silhouette)) best = { result, silhouette };
        }
        return { ...best!.result, silhouette: best!.silhouette, tried };
      },
      async close() {
        if (km !== undefined) await (await km).close();
      },
    };
    return clusterer;
  },
});
