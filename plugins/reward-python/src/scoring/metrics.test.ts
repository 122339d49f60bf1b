import * as assert from "node:assert/strict";
import { test } from "node:test";
import { computeMetrics, metricsCsv, metricsMarkdown } from "./metrics.ts";

const selection = [
  { id: "a", difficulty: "introductory" },
  { id: "b", difficulty: "introductory" },
  { id: "c", difficulty: "interview" },
  { id: "d", difficulty: "interview" },
];

test("PR is the mean pass fraction over ALL selected problems; AC the share of all-passed", () => {
  const m = computeMetrics(selection, [
    { problemId: "a", difficulty: "introductory", passFraction: 1, tests: 4 },
    { problemId: "b", difficulty: "introductory", passFraction: 0.5, tests: 2 },
    { problemId: "c", difficulty: "interview", passFraction: 0.25, tests: 4 },
    // d has no result: it counts as 0, it is not dropped from the denominator
  ]);
  assert.equal(m.problems, 4);
  assert.equal(m.tests, 10);
  assert.equal(m.pass_rate, 43.75); // 100 * (1 + 0.5 + 0.25 + 0) / 4
  assert.equal(m.accuracy, 25); // only a
  assert.equal(m.missing, 1);
  assert.deepEqual(m.by_difficulty.introductory, { problems: 2, tests: 6, pass_rate: 75, accuracy: 50 });
  assert.deepEqual(m.by_difficulty.interview, { problems: 2, tests: 4, pass_rate: 12.5, accuracy: 0 });
});

test("a problem with no tests is never accepted; an empty selection scores 0", () => {
  const m = computeMetrics([{ id: "x", difficulty: "easy" }], [{ problemId: "x", difficulty: "easy", passFraction: 0, tests: 0 }]);
  assert.equal(m.accuracy, 0);
  assert.deepEqual(computeMetrics([], []), { problems: 0, tests: 0, pass_rate: 0, accuracy: 0, by_difficulty: {}, missing: 0 });
});

test("Table 1 layout as Markdown and CSV", () => {
  const m = computeMetrics(selection.slice(0, 3), [
    { problemId: "a", difficulty: "introductory", passFraction: 1, tests: 1 },
    { problemId: "c", difficulty: "interview", passFraction: 1, tests: 1 },
  ]);
  assert.equal(
    metricsMarkdown("zero-shot", m),
    "| method | introductory PR | introductory AC | interview PR | interview AC | overall PR | overall AC |\n" +
      "|---|---:|---:|---:|---:|---:|---:|\n" +
      "| zero-shot | 50.00 | 50.00 | 100.00 | 100.00 | 66.67 | 66.67 |\n",
  );
  assert.equal(
    metricsCsv("zero-shot", m),
    "method,dataset,difficulty,problems,tests,pass_rate,accuracy\nzero-shot,APPS,introductory,2,1,50,50\nzero-shot,APPS,interview,1,1,100,100\nzero-shot,APPS,overall,3,2,66.67,66.67\n",
  );
});
