import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { cli } from "@bdc/core";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-table-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function run(name: string, label: string, byDifficulty: Record<string, { pass_rate: number; accuracy: number }>) {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  const rows = Object.entries(byDifficulty).map(([d, r]) => [d, { problems: 2, tests: 4, ...r }]);
  const summary = {
    workflow: name,
    steps: {
      search: { plugin: "step/tree-search@0.1.0", summary: { problems: 2 } },
      score: { plugin: "step/score@0.1.0", summary: { label, problems: 4, tests: 8, pass_rate: 50, accuracy: 25, missing: 0, by_difficulty: Object.fromEntries(rows) } },
    },
  };
  fs.writeFileSync(path.join(dir, "summary.json"), JSON.stringify(summary));
  return dir;
}

test("one Table 1 from several runs; a difficulty a run lacks is a dash", async () => {
  const a = run("zs", "ZeroShot", { introductory: { pass_rate: 40, accuracy: 20 }, interview: { pass_rate: 60, accuracy: 30 } });
  const b = run("mcts", "MC-Tree-Of-Agents", { introductory: { pass_rate: 80, accuracy: 50 } });
  let out = "";
  const code = await cli(["table", a, b], { out: (t) => void (out += t), err: () => {}, cwd: tmp, env: {}, isTTY: false });
  assert.equal(code, 0);
  assert.equal(
    out,
    "| method | introductory PR | introductory AC | interview PR | interview AC | overall PR | overall AC |\n" +
      "|---|---:|---:|---:|---:|---:|---:|\n" +
      "| ZeroShot | 40.00 | 20.00 | 60.00 | 30.00 | 50.00 | 25.00 |\n" +
      "| MC-Tree-Of-Agents | 80.00 | 50.00 | - | - | 50.00 | 25.00 |\n",
  );
  let csv = "";
  await cli(["table", a, "--csv"], { out: (t) => void (csv += t), err: () => {}, cwd: tmp, env: {}, isTTY: false });
  assert.equal(csv, "method,difficulty,problems,tests,pass_rate,accuracy\nZeroShot,introductory,2,4,40,20\nZeroShot,interview,2,4,60,30\nZeroShot,overall,4,8,50,25\n");
});

test("a run without a scoring step is a usage error", async () => {
  const dir = path.join(tmp, "empty");
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "summary.json"), JSON.stringify({ workflow: "x", steps: {} }));
  let err = "";
  const code = await cli(["table", dir], { out: () => {}, err: (t) => void (err += t), cwd: tmp, env: {}, isTTY: false });
  assert.equal(code, 2);
  assert.match(err, /no scoring step \(step\/score\) with results in these runs/);
});
