/**
 * The loss curve of a training run as a self-contained HTML page with an inline SVG: training
 * loss per step (points, and a smoothed line), evaluation loss, the learning rate on a second
 * axis, checkpoints as ticks. Read from the run's events.jsonl; a step logged twice (a resumed
 * run redoes the steps after its last checkpoint) counts once, the later entry.
 */
import * as fs from "node:fs";
import { writeFileDurably } from "../durable-files.ts";
import { escapeHtml } from "@bdc/core";

interface Point {
  readonly step: number;
  readonly value: number;
}

export interface LossHistory {
  readonly train: ReadonlyArray<Point>;
  readonly eval: ReadonlyArray<Point>;
  readonly lr: ReadonlyArray<Point>;
  readonly checkpoints: ReadonlyArray<number>;
}

export function readLossHistory(eventsFile: string): LossHistory {
  const train = new Map<number, number>();
  const evals = new Map<number, number>();
  const lr = new Map<number, number>();
  const checkpoints = new Set<number>();
  const text = fs.existsSync(eventsFile) ? fs.readFileSync(eventsFile, "utf8") : "";
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    let e: { type?: string; step?: number; loss?: number; eval_loss?: number; lr?: number };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      continue; // a torn last line of a killed run
    }
    if (typeof e.step !== "number") continue;
    if (e.type === "train.step" && typeof e.loss === "number") {
      train.set(e.step, e.loss);
      if (typeof e.lr === "number") lr.set(e.step, e.lr);
    } else if (e.type === "train.eval" && typeof e.eval_loss === "number") evals.set(e.step, e.eval_loss);
    else if (e.type === "train.checkpoint") checkpoints.add(e.step);
  }
  const points = (m: Map<number, number>) => [...m].sort((a, b) => a[0] - b[0]).map(([step, value]) => ({ step, value }));
  return { train: points(train), eval: points(evals), lr: points(lr), checkpoints: [...checkpoints].sort((a, b) => a - b) };
}

const fmt = (x: number) => (Math.abs(x) >= 100 || x === 0 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(2));

/** An exponential moving average (TensorBoard's smoothing, debiased). */
function smooth(points: ReadonlyArray<Point>, weight = 0.6): Point[] {
  let last = 0;
  let n = 0;
  return points.map((p) => {
    last = last * weight + (1 - weight) * p.value;
    n++;
    return { step: p.step, value: last / (1 - weight ** n) };
  });
}

export function lossCurveSvg(h: LossHistory, width = 760, height = 360): string {
  const pad = { left: 56, right: 64, top: 16, bottom: 40 };
  const w = width - pad.left - pad.right;
  const ht = height - pad.top - pad.bottom;
  const all = [...h.train, ...h.eval];
  if (all.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="60"><text x="10" y="30" font-family="sans-serif">no steps logged yet</text></svg>`;
  const maxStep = Math.max(1, ...all.map((p) => p.step));
  const lo = Math.min(...all.map((p) => p.value));
  const hi = Math.max(...all.map((p) => p.value));
  const span = hi - lo || Math.abs(hi) || 1;
  const y0 = lo >= 0 ? Math.max(0, lo - span * 0.05) : lo - span * 0.05;
  const y1 = hi + span * 0.05;
  const x = (s: number) => pad.left + (s / maxStep) * w;
  const y = (v: number) => pad.top + (1 - (v - y0) / (y1 - y0)) * ht;
  const lrMax = Math.max(1e-30, ...h.lr.map((p) => p.value));
  const yLr = (v: number) => pad.top + (1 - v / lrMax) * ht;
  const path = (pts: ReadonlyArray<Point>, fy: (v: number) => number) => pts.map((p, i) => `${i === 0 ? "M" : "L"}${x(p.step).toFixed(1)},${fy(p.value).toFixed(1)}`).join("");
  const ticks = Array.from({ length: 5 }, (_, i) => y0 + ((y1 - y0) * i) / 4);
  const stepTicks = Array.from({ length: 6 }, (_, i) => Math.round((maxStep * i) / 5));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="system-ui, sans-serif" font-size="11">`,
    `<rect x="${pad.left}" y="${pad.top}" width="${w}" height="${ht}" fill="#fafafa" stroke="#ddd"/>`,
    ...ticks.map((t) => `<line x1="${pad.left}" x2="${pad.left + w}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#eee"/><text x="${pad.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end" fill="#555">${fmt(t)}</text>`),
    ...stepTicks.map((s) => `<text x="${x(s).toFixed(1)}" y="${height - pad.bottom + 16}" text-anchor="middle" fill="#555">${s}</text>`),
    `<text x="${pad.left + w / 2}" y="${height - 6}" text-anchor="middle" fill="#333">optimizer step</text>`,
    `<text x="14" y="${pad.top + ht / 2}" text-anchor="middle" fill="#333" transform="rotate(-90 14 ${pad.top + ht / 2})">loss</text>`,
    ...h.checkpoints.map((s) => `<line x1="${x(s).toFixed(1)}" x2="${x(s).toFixed(1)}" y1="${pad.top + ht}" y2="${pad.top + ht - 6}" stroke="#888"><title>checkpoint-${s}</title></line>`),
    h.lr.length > 1 ? `<path d="${path(h.lr, yLr)}" fill="none" stroke="#c9a227" stroke-width="1" stroke-dasharray="3 3"/><text x="${pad.left + w + 6}" y="${pad.top + 10}" fill="#c9a227">lr ${fmt(lrMax)}</text><text x="${pad.left + w + 6}" y="${pad.top + ht}" fill="#c9a227">0</text>` : "",
    ...h.train.map((p) => `<circle cx="${x(p.step).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="1.8" fill="#7aa6d8"><title>step ${p.step}: loss ${p.value.toFixed(4)}</title></circle>`),
    h.train.length > 1 ? `<path d="${path(smooth(h.train), y)}" fill="none" stroke="#1f5fa8" stroke-width="2"/>` : "",
    h.eval.length > 0 ? `<path d="${path(h.eval, y)}" fill="none" stroke="#c2410c" stroke-width="1.5"/>` : "",
    ...h.eval.map((p) => `<circle cx="${x(p.step).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="3.5" fill="#c2410c"><title>step ${p.step}: eval loss ${p.value.toFixed(4)}</title></circle>`),
    `<g transform="translate(${pad.left + 10},${pad.top + 12})"><circle r="3" fill="#1f5fa8"/><text x="8" y="4">train (smoothed)</text>${h.eval.length > 0 ? `<circle cx="120" r="3" fill="#c2410c"/><text x="128" y="4">eval</text>` : ""}</g>`,
    "</svg>",
  ].join("");
}

/** Writes the loss page for the events of a run. */
export function writeLossCurve(file: string, eventsFile: string, options: { readonly title: string }): void {
  const h = readLossHistory(eventsFile);
  const last = h.train.at(-1);
  const lastEval = h.eval.at(-1);
  const summary = [
    last === undefined ? "no steps yet" : `${last.step} steps, last loss ${last.value.toFixed(4)}`,
    lastEval === undefined ? "" : `eval loss ${lastEval.value.toFixed(4)} at step ${lastEval.step}`,
    h.checkpoints.length === 0 ? "" : `checkpoints at ${h.checkpoints.join(", ")}`,
  ]
    .filter((s) => s !== "")
    .join(" · ");
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(options.title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}h1{font-size:18px}p{color:#555}</style></head>
<body><h1>${escapeHtml(options.title)}</h1><p>${escapeHtml(summary)}</p>${lossCurveSvg(h)}
<p>Points: the loss of each optimizer step (mean over its completion tokens); line: smoothed; dashed: learning rate.</p></body></html>
`;
  writeFileDurably(file, html);
}
