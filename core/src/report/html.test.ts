import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import type { RunSummary } from "../engine/run.ts";
import { renderReport, writeReport } from "./html.ts";

const summary: RunSummary = {
  workflow: "demo",
  status: "failed",
  started_at: "2026-01-01T00:00:00.000Z",
  finished_at: "2026-01-01T00:00:02.000Z",
  duration_s: 2,
  sessions: 2,
  plugins: { work: "step/x@1.0.0" },
  steps: {
    work: {
      instance: "work",
      plugin: "step/x@1.0.0",
      status: "failed",
      items: 3,
      done: 2,
      failed: 1,
      resumed: 1,
      duration_s: 1.5,
      failures: [{ id: "p<1>", code: "BDC_ITEM_FAILED", message: "<script>alert(1)</script>" }],
      summary: { pass_rate: 0.6667, per_difficulty: { easy: { pr: 1, ac: 1 }, hard: { pr: 0.5, ac: 0 } } },
    },
  },
};

test("the report shows steps, failures (escaped), nested summaries and artifacts", () => {
  const html = renderReport(summary, "name: demo\n", () => ["steps/work/tree.html"]);
  assert.match(html, /<tr><td>work<\/td><td><code>step\/x@1\.0\.0<\/code><\/td><td class="failed">failed<\/td><td>3<\/td><td>2<\/td><td>1<\/td><td>1<\/td><td>1\.50<\/td><\/tr>/);
  assert.ok(!html.includes("<script>alert"), "failure text is escaped");
  assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
  assert.ok(html.includes("<td>p&lt;1&gt;</td>"));
  assert.match(html, /<th>pass_rate<\/th><td>0\.6667<\/td>/);
  assert.match(html, /<th><\/th><th>pr<\/th><th>ac<\/th>[\s\S]*<td>hard<\/td><td>0\.5000<\/td><td>0<\/td>/);
  assert.ok(html.includes('<a href="steps/work/tree.html">tree.html</a>'));
  assert.ok(html.includes("2 sessions"));
});

test("writeReport regenerates report.html from a run directory, and refuses a non-run directory", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-report-"));
  try {
    assert.throws(() => writeReport(dir), { code: "BDC_RUN_DIR" });
    fs.writeFileSync(path.join(dir, "summary.json"), JSON.stringify(summary));
    fs.writeFileSync(path.join(dir, "resolved.yaml"), "name: demo\n");
    fs.mkdirSync(path.join(dir, "steps/work"), { recursive: true });
    fs.writeFileSync(path.join(dir, "steps/work/outputs.jsonl"), "");
    const file = writeReport(dir);
    assert.equal(file, path.join(dir, "report.html"));
    assert.ok(fs.readFileSync(file, "utf8").includes('<a href="steps/work/outputs.jsonl">outputs.jsonl</a>'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
