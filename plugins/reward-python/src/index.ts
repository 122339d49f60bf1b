/**
 * @bdc/reward-python: the reward signal of BDC. Programs run in a bubblewrap sandbox on a
 * problem's tests and are judged like the APPS reference harness (or strictly); datasets keep
 * hidden tests away from search; the paper's PR/AC metrics.
 */
export * from "./types.ts";
export { compareCall, compareStdout, judgeProgram, judgeTest } from "./judge/index.ts";
export { checkSandbox, createExecutor } from "./sandbox/executor.ts";
export { blockFeedback, formatFeedback } from "./feedback/ldb.ts";
export type { BlockFeedback } from "./feedback/ldb.ts";
export { CALL_PREAMBLE, evaluateProgram } from "./scoring/evaluate-program.ts";
export type { Judging, ProgramEvaluation } from "./scoring/evaluate-program.ts";
export { computeMetrics, metricsCsv, metricsMarkdown } from "./scoring/metrics.ts";
export type { Metrics, MetricRow, ScoredProblem } from "./scoring/metrics.ts";
export { asProblemDataset, problemIndex } from "./scoring/problems.ts";
export type { ProblemDataset } from "./scoring/problems.ts";
export type { Reward } from "./reward-plugin.ts";
export type { ProblemResult } from "./score-step.ts";
