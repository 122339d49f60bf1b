/**
 * A cluster map like the paper's Figure 4: the embeddings projected to 2-D (t-SNE as in the
 * paper, UMAP as an option; both by DruidJS, a maintained library - LGPL-3.0, used unmodified as
 * an npm dependency - with the cosine metric and a seed), drawn as a self-contained HTML page
 * with an inline SVG: points coloured by cluster, each point's first line on hover, the cluster
 * sizes, and a few example rows per cluster.
 */
import { cosine, TSNE, UMAP } from "@saehrimnir/druidjs";
import { escapeHtml } from "@bdc/core";

export type Projection = "tsne" | "umap";

/** 2-D coordinates of `n` rows of dimension d. */
export function project(vectors: Float32Array, n: number, d: number, method: Projection, seed: number): Array<[number, number]> {
  if (n < 3) return Array.from({ length: n }, (_, i) => [i, 0]);
  const rows = Array.from({ length: n }, (_, i) => Float64Array.from(vectors.subarray(i * d, (i + 1) * d)));
  const out = method === "tsne" ? TSNE.transform(rows, { perplexity: Math.max(2, Math.min(30, Math.floor((n - 1) / 3))), seed, metric: cosine }) : UMAP.transform(rows, { seed, metric: cosine, n_neighbors: Math.max(2, Math.min(15, n - 1)) });
  return (out as Float64Array[]).map((p) => [p[0]!, p[1]!]);
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
const color = (c: number) => PALETTE[c % PALETTE.length]!;

export interface MapInput {
  readonly title: string;
  readonly method: Projection;
  readonly points: ReadonlyArray<[number, number]>;
  readonly labels: ArrayLike<number>;
  /** The first line of each plotted row (hover text). */
  readonly titles: ReadonlyArray<string>;
  /** Sizes of all clusters (over every row, not only the plotted sample). */
  readonly sizes: ReadonlyArray<number>;
  /** A few example first lines per cluster. */
  readonly examples: ReadonlyArray<ReadonlyArray<string>>;
  readonly note?: string | undefined;
}

export function renderClusterMap(m: MapInput): string {
  const W = 720;
  const H = 560;
  const pad = 20;
  const xs = m.points.map((p) => p[0]);
  const ys = m.points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (x: number) => pad + ((x - x0) / (x1 - x0 || 1)) * (W - 2 * pad);
  const sy = (y: number) => H - pad - ((y - y0) / (y1 - y0 || 1)) * (H - 2 * pad);
  const circles = m.points
    .map((p, i) => `<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="3.2" fill="${color(m.labels[i]!)}" fill-opacity="0.75"><title>cluster ${m.labels[i]}: ${escapeHtml(m.titles[i] ?? "")}</title></circle>`)
    .join("");
  const total = m.sizes.reduce((a, b) => a + b, 0);
  const legend = m.sizes
    .map((size, c) => `<li><span class="dot" style="background:${color(c)}"></span><b>cluster ${c}</b>: ${size} rows (${((100 * size) / Math.max(total, 1)).toFixed(1)}%)<ul>${(m.examples[c] ?? []).map((e) => `<li>${escapeHtml(e)}</li>`).join("")}</ul></li>`)
    .join("");
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(m.title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222;display:flex;gap:24px;flex-wrap:wrap}h1{font-size:18px;width:100%;margin:0}
svg{border:1px solid #ddd;background:#fcfcfc}.dot{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:6px}
ul{padding-left:18px;margin:4px 0 10px}li ul li{color:#555;font-size:13px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:520px}p{color:#555;width:100%;margin:0}</style></head>
<body><h1>${escapeHtml(m.title)}</h1><p>${escapeHtml(`${m.method === "tsne" ? "t-SNE" : "UMAP"} of the embeddings (cosine); ${m.points.length} of ${total} rows plotted; hover a point for its first line.${m.note === undefined ? "" : ` ${m.note}`}`)}</p>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">${circles}</svg>
<div><ul>${legend}</ul></div></body></html>
`;
}
