import * as fs from "node:fs";
import * as path from "node:path";
import { Schema } from "effect";
import { BdcError, definePlugin, escapeHtml, option, optional, type Item, type StepImpl } from "@bdc/core";
import type { Reward } from "./reward-plugin.ts";
import { computeMetrics, datasetOf, metricsCsv, metricsMarkdown } from "./scoring/metrics.ts";
import { asProblemDataset, problemIndex } from "./scoring/problems.ts";
import type { TestOutcome, Verdict } from "./types.ts";

export interface ProblemResult {
  readonly problem_id: string;
  readonly difficulty: string;
  readonly pass_fraction: number;
  readonly verdicts: ReadonlyArray<Verdict>;
  readonly tests: ReadonlyArray<TestOutcome>;
  /** From the scored item, when it says (a search's output): its public pass rate and tree page. */
  readonly public_pass_rate?: number | undefined;
  readonly tree_page?: string | undefined;
}

/** The per-problem table of the run's report (core embeds a step's report-section.html). */
function problemsSection(label: string, rows: ReadonlyArray<ProblemResult>): string {
  const pct = (x: number | undefined) => (x === undefined ? "-" : `${(100 * x).toFixed(1)}%`);
  const verdict = (r: ProblemResult) => (r.tests.length === 0 ? "no tests" : r.pass_fraction === 1 ? "accepted" : r.pass_fraction === 0 ? "failed" : "partial");
  const body = rows
    .map((r) => `<tr><td>${escapeHtml(r.problem_id)}</td><td>${escapeHtml(r.difficulty)}</td><td class="${verdict(r) === "accepted" ? "succeeded" : verdict(r) === "partial" ? "pending" : "failed"}">${verdict(r)}</td><td>${pct(r.pass_fraction)} of ${r.tests.length}</td><td>${pct(r.public_pass_rate)}</td><td>${r.tree_page === undefined ? "" : `<a href="${escapeHtml(r.tree_page)}">tree</a>`}</td></tr>`)
    .join("\n");
  return `<h3>${escapeHtml(label)}: per problem</h3>\n<table><thead><tr><th>problem</th><th>difficulty</th><th>hidden verdict</th><th>hidden tests passed</th><th>public pass rate</th><th></th></tr></thead><tbody>\n${body}\n</tbody></table>\n`;
}

/** An item's program: `{code}` (a solutions row, a search result) or the source itself. */
function codeOf(item: Item): string {
  const d = item.data as { code?: unknown } | string | null;
  const code = typeof d === "string" ? d : d?.code;
  if (typeof code !== "string") {
    throw new BdcError({ code: "BDC_ITEM_FAILED", message: `item "${item.id}" has no program (expected a string or {code})` });
  }
  return code;
}

/**
 * Final scoring: each item is a program for the problem with the item's id; it runs on the
 * problem's hidden tests (or public/all), and the summary holds the paper's PR and AC per
 * difficulty over every problem of the dataset (a problem without a program counts 0).
 */
export default definePlugin({
  id: "step/score",
  version: "0.1.0",
  description: "Score programs on a dataset's hidden tests; summary: PR and AC per difficulty (paper Table 1 layout)",
  config: Schema.Struct({
    tests: option(Schema.Literal("hidden", "public", "all"), "hidden", "which tests score the program (hidden: the paper's final score)"),
    label: option(Schema.String, "solutions", "row label in the Markdown/CSV tables"),
    dataset: optional(Schema.String, "the dataset's name in the tables (bdc table --layout table2 groups columns by it; default: APPS or CodeContests from the difficulties)"),
  }),
  requires: {
    problems: { slot: "dataset", description: "the problem dataset (it alone holds the hidden tests)" },
    reward: { slot: "reward" },
  },
  make(config, deps, kernel): StepImpl<unknown, ProblemResult> {
    const problems = asProblemDataset(deps.problems, "problems");
    const reward = deps.reward as Reward;
    const index = problemIndex(problems);
    return {
      async run(item, ctx) {
        const problem = (await index(ctx.signal)).get(item.id);
        if (problem === undefined) {
          throw new BdcError({ code: "BDC_ITEM_FAILED", message: `no problem "${item.id}" in the dataset`, hint: "solutions are keyed by the dataset's problem ids" });
        }
        const hidden = config.tests === "public" ? [] : await problems.hiddenTests(problem.id);
        const tests = config.tests === "hidden" ? hidden : config.tests === "public" ? problem.publicTests : [...problem.publicTests, ...hidden];
        const evaluation = await reward.evaluateOn(problem, codeOf(item), tests, ctx.signal);
        const from = (typeof item.data === "object" && item.data !== null ? item.data : {}) as { public_pass_rate?: unknown; tree_page?: unknown };
        return {
          problem_id: problem.id,
          difficulty: problem.difficulty,
          pass_fraction: evaluation.passFraction,
          verdicts: evaluation.verdicts,
          tests: evaluation.tests,
          ...(typeof from.public_pass_rate === "number" ? { public_pass_rate: from.public_pass_rate } : {}),
          ...(typeof from.tree_page === "string" ? { tree_page: from.tree_page } : {}),
        };
      },
      async summarize(results, ctx) {
        const selection = [...(await index(ctx.signal)).values()].map((p) => ({ id: p.id, difficulty: p.difficulty }));
        const scored = results.flatMap((r) => (r.output === undefined ? [] : [{ problemId: r.output.problem_id, difficulty: r.output.difficulty, passFraction: r.output.pass_fraction, tests: r.output.tests.length }]));
        const metrics = computeMetrics(selection, scored);
        fs.writeFileSync(path.join(ctx.dir, "table.md"), metricsMarkdown(config.label, metrics));
        fs.writeFileSync(path.join(ctx.dir, "table.csv"), metricsCsv(config.label, metrics));
        fs.writeFileSync(path.join(ctx.dir, "report-section.html"), problemsSection(config.label, results.flatMap((r) => (r.output === undefined ? [] : [r.output]))));
        kernel.emit("metrics", { pass_rate: metrics.pass_rate, accuracy: metrics.accuracy });
        return { label: config.label, dataset: config.dataset ?? datasetOf(metrics), ...metrics, sandboxed: reward.sandboxed };
      },
    };
  },
});
