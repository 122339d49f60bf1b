/**
 * `bdc table RUN...`: the paper's Table 1 from several runs (ZeroShot, MC-Tree-Of-Agents,
 * +Pruning, ...): one row per scoring step, PR and AC per difficulty, as Markdown or CSV.
 * `--layout table2`: the paper's Tables 2 and 3 - a row per method (the score step's label), the
 * datasets' column groups side by side (APPS intro/inter/comp/overall, CodeContests easy/hard/overall).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError, type CliCommand, type RunSummary } from "@bdc/core";
import { datasetOf, metricsTable2Markdown, metricsTableCsv, metricsTableMarkdown, type LabelledMetrics, type Metrics } from "./scoring/metrics.ts";

export function scoreRows(runDir: string): LabelledMetrics[] {
  const file = path.join(runDir, "summary.json");
  if (!fs.existsSync(file)) {
    throw new BdcError({ code: "BDC_RUN_DIR", message: `${runDir} has no summary.json`, hint: "pass run directories written by `bdc run` (or `bdc evaluate --out DIR`/run)" });
  }
  const summary = JSON.parse(fs.readFileSync(file, "utf8")) as RunSummary;
  return Object.entries(summary.steps).flatMap(([step, s]) => {
    const m = s.summary as (Metrics & { label?: string; dataset?: string }) | undefined;
    if (!s.plugin.startsWith("step/score@") || m === undefined || m.by_difficulty === undefined) return [];
    return [{ label: m.label ?? `${summary.workflow}/${step}`, metrics: m, dataset: m.dataset }];
  });
}

/**
 * Rows that would carry the same label (the default "solutions", or one workflow run twice) are
 * named by their run as well: "<label> (<run dir>)". With the table2 layout a label may repeat
 * across datasets (one method, two column groups).
 */
export function distinctLabels(runs: ReadonlyArray<{ run: string; rows: ReadonlyArray<LabelledMetrics> }>, perDataset: boolean): LabelledMetrics[] {
  const all = runs.flatMap((r) => r.rows.map((row) => ({ run: r.run, row })));
  const key = (row: LabelledMetrics) => (perDataset ? `${row.label}\u0000${row.dataset ?? datasetOf(row.metrics)}` : row.label);
  const count = new Map<string, number>();
  for (const { row } of all) count.set(key(row), (count.get(key(row)) ?? 0) + 1);
  return all.map(({ run, row }) => (count.get(key(row))! > 1 ? { ...row, label: `${row.label} (${run})` } : row));
}

const command: CliCommand = {
  spec: {
    name: "table",
    summary: "The paper's Table 1 from runs: a row per scoring step, PR and AC per difficulty.",
    usage: "bdc table RUN_DIR... [--layout table1|table2] [--csv] [--out FILE]",
    minPositionals: 1,
    maxPositionals: Infinity,
    flags: {
      csv: { type: "boolean", description: "CSV instead of Markdown (a row per method, dataset and difficulty)" },
      layout: { type: "string", value: "NAME", description: "table1 (default): a row per scoring step; table2: a row per method, each dataset's columns side by side (Tables 2 and 3)" },
      out: { type: "string", value: "FILE", description: "write to FILE instead of standard output" },
    },
  },
  async run(io, args) {
    const layout = (args.flags.layout as string | undefined) ?? "table1";
    const rows = distinctLabels(
      args.positionals.map((dir) => ({ run: path.basename(path.resolve(io.cwd, dir)), rows: scoreRows(path.resolve(io.cwd, dir)) })),
      layout === "table2",
    );
    if (rows.length === 0) {
      throw new BdcError({ code: "BDC_USAGE", message: "no scoring step (step/score) with results in these runs", hint: "a Table 1 row comes from a workflow whose steps include step/score" });
    }
    if (layout !== "table1" && layout !== "table2") throw new BdcError({ code: "BDC_USAGE", message: `--layout ${layout}: unknown layout`, hint: "choose table1 or table2" });
    const text = args.flags.csv === true ? metricsTableCsv(rows) : layout === "table2" ? metricsTable2Markdown(rows) : metricsTableMarkdown(rows);
    if (args.flags.out === undefined) io.out(text);
    else {
      fs.writeFileSync(path.resolve(io.cwd, args.flags.out as string), text);
      io.err(`wrote ${args.flags.out as string}\n`);
    }
    return 0;
  },
};

export default command;
