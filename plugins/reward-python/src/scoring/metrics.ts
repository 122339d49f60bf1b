/**
 * The paper's metrics (reference-notes.md, "Evaluation"):
 *   PR = 100 x mean over ALL selected problems of the fraction of (hidden) tests passed
 *   AC = 100 x share of problems whose tests ALL pass
 * A selected problem without a result (no solution, a crash) counts as 0 for both: the
 * denominator is the selection, never "problems that produced a result".
 */
import type { Difficulty } from "../types.ts";

export interface ScoredProblem {
  readonly problemId: string;
  readonly difficulty: Difficulty;
  readonly passFraction: number;
  readonly tests: number;
}

export interface MetricRow {
  readonly problems: number;
  readonly tests: number;
  /** PR, 0..100. */
  readonly pass_rate: number;
  /** AC, 0..100. */
  readonly accuracy: number;
}

export interface Metrics extends MetricRow {
  readonly by_difficulty: Readonly<Record<Difficulty, MetricRow>>;
  /** Selected problems without a result (counted as 0). */
  readonly missing: number;
}

const round = (x: number) => Math.round(x * 100) / 100;

function row(selected: ReadonlyArray<{ difficulty: Difficulty }>, byId: ReadonlyMap<string, ScoredProblem>, ids: ReadonlyArray<string>): MetricRow {
  let pr = 0;
  let ac = 0;
  let tests = 0;
  for (const id of ids) {
    const s = byId.get(id);
    if (s === undefined) continue;
    pr += s.passFraction;
    // "all hidden tests pass": a problem without tests cannot be accepted.
    if (s.tests > 0 && s.passFraction === 1) ac += 1;
    tests += s.tests;
  }
  const n = selected.length;
  return { problems: n, tests, pass_rate: n === 0 ? 0 : round((100 * pr) / n), accuracy: n === 0 ? 0 : round((100 * ac) / n) };
}

/** Metrics over the selection (every problem the dataset selected), by difficulty in first-seen order. */
export function computeMetrics(selection: ReadonlyArray<{ id: string; difficulty: Difficulty }>, scored: ReadonlyArray<ScoredProblem>): Metrics {
  const byId = new Map(scored.map((s) => [s.problemId, s]));
  const groups = new Map<Difficulty, Array<{ id: string; difficulty: Difficulty }>>();
  for (const p of selection) groups.set(p.difficulty, [...(groups.get(p.difficulty) ?? []), p]);
  const by_difficulty: Record<Difficulty, MetricRow> = {};
  for (const [d, ps] of groups) by_difficulty[d] = row(ps, byId, ps.map((p) => p.id));
  return {
    ...row(selection, byId, selection.map((p) => p.id)),
    by_difficulty,
    missing: selection.filter((p) => !byId.has(p.id)).length,
  };
}

/** The paper's Table 1 layout: a row per method, PR and AC per difficulty, plus overall. */
export function metricsMarkdown(label: string, m: Metrics): string {
  return metricsTableMarkdown([{ label, metrics: m }]);
}

export function metricsCsv(label: string, m: Metrics): string {
  return metricsTableCsv([{ label, metrics: m }]);
}

export interface LabelledMetrics {
  readonly label: string;
  readonly metrics: Metrics;
  /** The dataset's name (step/score's `dataset`, or what its difficulties say): Table 2 groups columns by it. */
  readonly dataset?: string | undefined;
}

/** A dataset's name from its difficulties, when the score step did not name it. */
export function datasetOf(m: Pick<Metrics, "by_difficulty">): string {
  const ds = Object.keys(m.by_difficulty);
  if (ds.length > 0 && ds.every((d) => ["introductory", "interview", "competition"].includes(d))) return "APPS";
  if (ds.length > 0 && ds.every((d) => ["easy", "hard"].includes(d))) return "CodeContests";
  return "dataset";
}

/**
 * The paper's Table 2 (and 3) layout: a row per method (label), and per dataset a group of
 * columns - its difficulties then overall, PR and AC each - so that one table holds APPS and
 * CodeContests side by side. Runs of the same method on two datasets share its row.
 */
export function metricsTable2Markdown(rows: ReadonlyArray<LabelledMetrics>): string {
  const datasets = [...new Set(rows.map((r) => r.dataset ?? datasetOf(r.metrics)))];
  const columns = datasets.map((d) => ({ dataset: d, difficulties: difficultiesOf(rows.filter((r) => (r.dataset ?? datasetOf(r.metrics)) === d)) }));
  const labels = [...new Set(rows.map((r) => r.label))];
  const cell = (r: MetricRow | undefined) => (r === undefined ? "- | -" : `${r.pass_rate.toFixed(2)} | ${r.accuracy.toFixed(2)}`);
  const head = `| method | ${columns.map((c) => [...c.difficulties, "overall"].map((d) => `${c.dataset} ${d} PR | ${c.dataset} ${d} AC`).join(" | ")).join(" | ")} |`;
  const count = columns.reduce((n, c) => n + 2 * (c.difficulties.length + 1), 0);
  const sep = `|---|${Array.from({ length: count }, () => "---:").join("|")}|`;
  const body = labels.map((label) => {
    const cells = columns.map((c) => {
      const m = rows.find((r) => r.label === label && (r.dataset ?? datasetOf(r.metrics)) === c.dataset)?.metrics;
      return [...c.difficulties.map((d) => cell(m?.by_difficulty[d])), cell(m)].join(" | ");
    });
    return `| ${label} | ${cells.join(" | ")} |`;
  });
  return `${[head, sep, ...body].join("\n")}\n`;
}

/** Difficulties in first-seen order across the rows. */
const difficultiesOf = (rows: ReadonlyArray<LabelledMetrics>) => [...new Set(rows.flatMap((r) => Object.keys(r.metrics.by_difficulty)))];

export function metricsTableMarkdown(rows: ReadonlyArray<LabelledMetrics>): string {
  const ds = difficultiesOf(rows);
  const cell = (r: MetricRow | undefined) => (r === undefined ? "- | -" : `${r.pass_rate.toFixed(2)} | ${r.accuracy.toFixed(2)}`);
  const head = `| method | ${ds.map((d) => `${d} PR | ${d} AC`).join(" | ")} | overall PR | overall AC |`;
  const sep = `|---|${ds.map(() => "---:|---:").join("|")}|---:|---:|`;
  const body = rows.map(({ label, metrics: m }) => `| ${label} | ${ds.map((d) => cell(m.by_difficulty[d])).join(" | ")} | ${cell(m)} |`);
  return `${[head, sep, ...body].join("\n")}\n`;
}

export function metricsTableCsv(rows: ReadonlyArray<LabelledMetrics>): string {
  const lines = ["method,dataset,difficulty,problems,tests,pass_rate,accuracy"];
  for (const { label, metrics: m, dataset } of rows) {
    const name = dataset ?? datasetOf(m);
    for (const [d, r] of Object.entries(m.by_difficulty)) lines.push([label, name, d, r.problems, r.tests, r.pass_rate, r.accuracy].join(","));
    lines.push([label, name, "overall", m.problems, m.tests, m.pass_rate, m.accuracy].join(","));
  }
  return `${lines.join("\n")}\n`;
}
