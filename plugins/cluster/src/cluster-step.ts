/**
 * step/cluster: clusters the vectors an earlier step/embed wrote (`from:`) with a cluster
 * instance (cluster/spherical-kmeans), and writes into the step's directory:
 *
 * - `labels.jsonl`: {id, cluster, cosine} per row;
 * - `centroids.safetensors`: the unit centroids [K, d] ("centroids"; metadata: encoder model,
 *   dimension, K, objective, silhouette) - what the hypernetwork reads;
 * - `cluster-<c>.jsonl`: the rows of each cluster (the items of the `rows:` dataset, as they
 *   are, e.g. the training pairs that were embedded), one file per cluster;
 * - `map.html`: the cluster map (t-SNE or UMAP), linked from the run's report.
 *
 * With `centroids:` (the centroids.safetensors of an earlier clustering) nothing is fitted: each
 * row joins the stored cluster of highest cosine - new rows routed to existing experts. Vectors of
 * another dimension or encoder model than the centroids' are refused (BDC_CLUSTER_DIMENSION).
 *
 * Its one output lists the clusters as work items for a later step to fan out over
 * (`for_each: {step: <this step>, items: clusters}`: one expert per cluster):
 * {k, sizes, objective, silhouette, tried, reseeded, clusters: [{id, data, size}], centroids, labels, map}
 * with paths relative to the run directory.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Schema } from "effect";
import { BdcError, type DatasetImpl, definePlugin, FilePath, option, optional, required, type StepImpl, StepName } from "@bdc/core";
import { itemText, mulberry32, readVectorRows, writeSafetensors, type EmbedOutput } from "@bdc/lm-local";
import { project, renderClusterMap, type Projection } from "./cluster-map.ts";
import { checkCompatible, readCentroids } from "./centroids.ts";
import { normalizeRows, SphericalKMeans } from "./kmeans.ts";
import type { Clusterer, Clustering, KTried } from "./plugins/spherical-kmeans.ts";

export interface ClusterStepOutput {
  readonly k: number;
  readonly sizes: ReadonlyArray<number>;
  readonly objective: number;
  readonly silhouette: number;
  readonly tried: ReadonlyArray<KTried>;
  readonly reseeded: number;
  readonly clusters: ReadonlyArray<{ readonly id: string; readonly data: string; readonly size: number }>;
  readonly centroids: string;
  readonly labels: string;
  readonly map: string | null;
}

export const CLUSTER_FILES = { labels: "labels.jsonl", centroids: "centroids.safetensors", map: "map.html", cluster: (c: number) => `cluster-${c}.jsonl` } as const;

/** The first line of a row, for hover text and examples: a chat row's first message, else text/prompt/question. */
function firstLine(data: unknown, field: string | undefined, id: string): string {
  let text: string;
  if (field !== undefined) text = itemText(data, field, id);
  else {
    const r = (data ?? {}) as Record<string, unknown>;
    const messages = r["messages"];
    const first = Array.isArray(messages) ? (messages[0] as { content?: unknown } | undefined)?.content : undefined;
    const candidate = [first, r["text"], r["prompt"], r["question"], r["input"]].find((v) => typeof v === "string");
    text = typeof candidate === "string" ? candidate : JSON.stringify(data);
  }
  const line = text.split("\n").find((l) => l.trim() !== "") ?? "";
  return line.length > 140 ? `${line.slice(0, 139)}…` : line;
}

/** The rows assigned to stored centroids: no fitting, the stored clusters' numbering kept. */
async function assignToStored(file: string, vectors: Float32Array, n: number, dim: number, ids: ReadonlyArray<string>, model: string, seed: number): Promise<Clustering> {
  const stored = readCentroids(file);
  checkCompatible(stored, dim, model);
  const km = await SphericalKMeans.open();
  try {
    const x = normalizeRows(vectors, n, dim, ids);
    const result = await km.assign(x, n, dim, stored.centroids, stored.k);
    const used = result.sizes.filter((s) => s > 0).length;
    const silhouette = used > 1 && n > used ? await km.silhouette(x, n, dim, result.labels, stored.k, 2000, seed) : 0;
    return { ...result, silhouette, tried: [] };
  } finally {
    await km.close();
  }
}

export default definePlugin({
  id: "step/cluster",
  version: "0.1.0",
  description: "Cluster the vectors of an embed step (cluster/spherical-kmeans): labels, centroids (safetensors), the rows split per cluster, a cluster map; its clusters are work items to fan out over",
  config: Schema.Struct({
    from: required(StepName, "the step/embed step whose vectors are clustered (this step waits for it)"),
    map: option(Schema.Literal("tsne", "umap", "none"), "tsne", "the cluster map's 2-D projection (t-SNE as in the paper)"),
    map_points: option(Schema.Int.pipe(Schema.positive()), 1500, "at most this many rows plotted (a seeded sample; t-SNE is O(n^2))"),
    label_field: optional(Schema.String, "the text shown for a row (dot path or {template}); default: a chat row's first message, else text/prompt/question"),
    examples: option(Schema.Int.pipe(Schema.nonNegative()), 5, "example rows listed per cluster on the map"),
    seed: option(Schema.Int, 0, "the map's projection and sample"),
    centroids: optional(FilePath, "assign the rows to these stored clusters (an earlier step's centroids.safetensors) instead of clustering them"),
  }),
  requires: {
    clusterer: { slot: "cluster", optional: true, description: "the clustering method (cluster/spherical-kmeans); not needed with centroids:" },
    rows: { slot: "dataset", optional: true, description: "the dataset whose items were embedded: its rows are split into one JSONL file per cluster" },
  },
  make(config, deps, kernel): StepImpl<unknown, ClusterStepOutput> {
    const clusterer = deps.clusterer as Clusterer | undefined;
    if (clusterer === undefined && config.centroids === undefined) {
      throw new BdcError({ code: "BDC_CONFIG_MISSING_KEY", message: `step/cluster "${kernel.instance}": neither a clusterer nor centroids`, hint: "give clusterer: (a cluster/spherical-kmeans instance) to cluster, or centroids: (a centroids.safetensors) to assign rows to stored clusters" });
    }
    const rowsDataset = deps.rows as DatasetImpl | undefined;
    return {
      async run(_item, ctx) {
        const runDir = path.dirname(path.dirname(ctx.dir));
        const embedded = ctx.outputs<EmbedOutput>(config.from);
        if (embedded.length === 0) throw new BdcError({ code: "BDC_ITEM_FAILED", message: `step "${config.from}" has no embedded rows to cluster` });
        const ids = embedded.map((e) => e.id);
        const file = embedded[0]!.data.file;
        if (embedded.some((e) => e.data.file !== file || typeof e.data.row !== "number")) throw new BdcError({ code: "BDC_ITEM_FAILED", message: `step "${config.from}" is not a step/embed step (its outputs do not name rows of one vectors file)` });
        const { dim, vectors } = readVectorRows(path.join(runDir, "steps", config.from, file), embedded.map((e) => e.data.row));
        const n = ids.length;
        const model = embedded[0]!.data.model;
        const result = config.centroids === undefined ? await clusterer!.cluster(vectors, n, dim, ids, (line) => ctx.log(line)) : await assignToStored(config.centroids, vectors, n, dim, ids, model, config.seed);
        const k = result.k;

        const data = new Map<string, unknown>();
        if (rowsDataset !== undefined) for await (const item of await rowsDataset.items(ctx.signal)) data.set(item.id, item.data);
        const missing = rowsDataset === undefined ? [] : ids.filter((id) => !data.has(id));
        if (missing.length > 0) throw new BdcError({ code: "BDC_ITEM_FAILED", message: `${missing.length} embedded rows are not in the rows dataset (e.g. "${missing[0]}")`, hint: "rows: must name the dataset the embed step went over (for_each)" });

        fs.mkdirSync(ctx.dir, { recursive: true });
        fs.writeFileSync(path.join(ctx.dir, CLUSTER_FILES.labels), ids.map((id, i) => `${JSON.stringify({ id, cluster: result.labels[i], cosine: Number(result.cosines[i]!.toFixed(6)) })}\n`).join(""));
        writeSafetensors(path.join(ctx.dir, CLUSTER_FILES.centroids), [{ name: "centroids", dtype: "F32", shape: [k, dim], data: result.centroids }], { model, dimension: String(dim), k: String(k), objective: String(result.objective), silhouette: String(result.silhouette) });
        const members = Array.from({ length: k }, () => [] as number[]);
        result.labels.forEach((c, i) => members[c]!.push(i));
        members.forEach((rows, c) => fs.writeFileSync(path.join(ctx.dir, CLUSTER_FILES.cluster(c)), rows.map((i) => `${JSON.stringify(rowsDataset === undefined ? { id: ids[i] } : data.get(ids[i]!))}\n`).join("")));

        let map: string | null = null;
        if (config.map !== "none") {
          // A seeded uniform sample (Fisher-Yates): clusters appear in proportion to their sizes.
          const rand = mulberry32(config.seed);
          const order = Array.from({ length: n }, (_, i) => i);
          for (let i = n - 1; i > 0; i--) {
            const j = Math.floor(rand() * (i + 1));
            [order[i], order[j]] = [order[j]!, order[i]!];
          }
          const shown = order.slice(0, Math.min(n, config.map_points)).sort((a, b) => a - b);
          const sub = new Float32Array(shown.length * dim);
          shown.forEach((i, r) => sub.set(vectors.subarray(i * dim, (i + 1) * dim), r * dim));
          ctx.log(`projecting ${shown.length} rows with ${config.map === "tsne" ? "t-SNE" : "UMAP"}`);
          const points = project(sub, shown.length, dim, config.map as Projection, config.seed);
          const titleOf = (i: number) => firstLine(data.get(ids[i]!) ?? { id: ids[i] }, config.label_field, ids[i]!);
          fs.writeFileSync(
            path.join(ctx.dir, CLUSTER_FILES.map),
            renderClusterMap({
              title: `${k} clusters of ${n} rows (${kernel.instance})`,
              method: config.map as Projection,
              points,
              labels: shown.map((i) => result.labels[i]!),
              titles: shown.map(titleOf),
              sizes: result.sizes,
              examples: members.map((rows) => rows.slice(0, config.examples).map(titleOf)),
              note: `objective ${result.objective.toFixed(2)}, cosine silhouette ${result.silhouette.toFixed(3)}${result.tried.length > 1 ? `; K chosen by silhouette among ${result.tried.map((t) => `${t.k}: ${t.silhouette.toFixed(3)}`).join(", ")}` : ""}.`,
            }),
          );
          map = path.relative(runDir, path.join(ctx.dir, CLUSTER_FILES.map));
        }
        if (result.reseeded > 0) ctx.log(`${result.reseeded} empty clusters were reseeded with the rows farthest from their centroids`);
        const rel = (f: string) => path.relative(runDir, path.join(ctx.dir, f));
        return {
          k,
          sizes: result.sizes,
          objective: result.objective,
          silhouette: result.silhouette,
          tried: result.tried,
          reseeded: result.reseeded,
          clusters: result.sizes.map((size, c) => ({ id: `cluster-${c}`, data: rel(CLUSTER_FILES.cluster(c)), size })),
          centroids: rel(CLUSTER_FILES.centroids),
          labels: rel(CLUSTER_FILES.labels),
          map,
        };
      },
      summarize: (results) => {
        const o = results[0]?.output;
        return o === undefined ? {} : { k: o.k, sizes: o.sizes, objective: Math.round(o.objective * 100) / 100, silhouette: Math.round(o.silhouette * 10000) / 10000, reseeded: o.reseeded };
      },
    };
  },
});
