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
  assert.equal(csv, "method,dataset,difficulty,problems,tests,pass_rate,accuracy\nZeroShot,APPS,introductory,2,4,40,20\nZeroShot,APPS,interview,2,4,60,30\nZeroShot,APPS,overall,4,8,50,25\n");
});

test("--layout table2: a row per method, APPS and CodeContests side by side (Tables 2 and 3)", async () => {
  const apps = [run("apps-base", "w/o tuning", { introductory: { pass_rate: 10, accuracy: 5 }, interview: { pass_rate: 4, accuracy: 1 }, competition: { pass_rate: 1, accuracy: 0 } }), run("apps-disen", "DisenLoRA", { introductory: { pass_rate: 20, accuracy: 10 }, interview: { pass_rate: 8, accuracy: 3 }, competition: { pass_rate: 2, accuracy: 1 } })];
  const cc = [run("cc-base", "w/o tuning", { easy: { pass_rate: 30, accuracy: 14 }, hard: { pass_rate: 12, accuracy: 3 } }), run("cc-disen", "DisenLoRA", { easy: { pass_rate: 40, accuracy: 18 }, hard: { pass_rate: 15, accuracy: 4 } })];
  let out = "";
  const code = await cli(["table", "--layout", "table2", ...apps, ...cc], { out: (t) => void (out += t), err: () => {}, cwd: tmp, env: {}, isTTY: false });
  assert.equal(code, 0);
  const lines = out.trim().split("\n");
  assert.equal(lines[0], "| method | APPS introductory PR | APPS introductory AC | APPS interview PR | APPS interview AC | APPS competition PR | APPS competition AC | APPS overall PR | APPS overall AC | CodeContests easy PR | CodeContests easy AC | CodeContests hard PR | CodeContests hard AC | CodeContests overall PR | CodeContests overall AC |");
  assert.equal(lines.length, 4, "two methods, one row each");
  assert.equal(lines[2], "| w/o tuning | 10.00 | 5.00 | 4.00 | 1.00 | 1.00 | 0.00 | 50.00 | 25.00 | 30.00 | 14.00 | 12.00 | 3.00 | 50.00 | 25.00 |");
  assert.match(lines[3]!, /^\| DisenLoRA \| 20\.00 \| 10\.00 /);
  let err = "";
  assert.equal(await cli(["table", "--layout", "table9", apps[0]!], { out: () => {}, err: (t) => void (err += t), cwd: tmp, env: {}, isTTY: false }), 2);
  assert.match(err, /--layout table9: unknown layout/);
});

test("rows that would carry the same label are named by their run", async () => {
  const a = run("run-a", "solutions", { introductory: { pass_rate: 40, accuracy: 20 } });
  const b = run("run-b", "solutions", { introductory: { pass_rate: 80, accuracy: 50 } });
  const c = run("run-c", "ZeroShot", { introductory: { pass_rate: 10, accuracy: 0 } });
  let out = "";
  assert.equal(await cli(["table", a, b, c], { out: (t) => void (out += t), err: () => {}, cwd: tmp, env: {}, isTTY: false }), 0);
  assert.deepEqual(out.trim().split("\n").slice(2).map((r) => r.split(" | ")[0]), ["| solutions (run-a)", "| solutions (run-b)", "| ZeroShot"]);
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
