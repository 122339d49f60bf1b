/**
 * `bdc evaluate` end to end, on the six problems that ship with the quickstart (APPS rows with
 * real tests and reference solutions), in the sandbox.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { cli } from "@bdc/core";
import { checkSandbox } from "./sandbox/executor.ts";

const repo = path.resolve(import.meta.dirname, "../../..");
const problems = path.join(repo, "workflows/data/quickstart-problems.jsonl");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-evaluate-"));
// In bubblewrap wherever it works; a developer without it still tests the evaluator (unsandboxed,
// it warns); CI must have it.
const sandbox = checkSandbox().ok ? "bwrap" : "none";
if (sandbox === "none" && process.env.CI !== undefined) throw new Error("CI must evaluate in bubblewrap (apt-get install -y bubblewrap)");
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function bdc(...argv: string[]) {
  let out = "";
  let err = "";
  const args = argv[0] === "evaluate" && !argv.includes("--sandbox") ? [...argv, "--sandbox", sandbox] : argv;
  const code = await cli(args, { out: (t) => void (out += t), err: (t) => void (err += t), cwd: repo, env: { PATH: process.env.PATH }, isTTY: false });
  return { code, out, err, json: () => JSON.parse(out.trim().split("\n").at(-1)!) as Record<string, unknown> };
}

test("--reference --tests all: every reference solution passes every test", async () => {
  const r = await bdc("evaluate", "--dataset", `apps:${problems}`, "--reference", "--tests", "all", "--json", "--quiet");
  assert.equal(r.code, 0, r.err);
  const j = r.json();
  assert.equal(j.problems, 6);
  assert.equal(j.tests, 24);
  assert.equal(j.pass_rate, 100);
  assert.equal(j.accuracy, 100);
  assert.ok((j.tests_per_second as number) > 0);
});

test("PR and AC over ALL selected problems: wrong, crashing, partial and missing programs", async () => {
  const solutions = path.join(tmp, "solutions.jsonl");
  const rows = [
    { problem_id: "qs-0001-sum-two", code: "a, b = map(int, input().split())\nprint(a + b)\n" },
    { problem_id: "qs-0002-reverse-words", code: "print(input().upper())\n" }, // wrong on both hidden tests
    { problem_id: "qs-0003-count-vowels", code: "raise ValueError('boom')\n" },
    { problem_id: "qs-0004-max-subarray", code: "input()\nprint(max(map(int, input().split())))\n" }, // right on 1 of 2 hidden
    { problem_id: "qs-0005-two-sum-indices", code: "class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n        for i in range(len(nums)):\n            for j in range(i + 1, len(nums)):\n                if nums[i] + nums[j] == target:\n                    return (i, j)\n" },
    // qs-0006 has no program: it counts 0
  ];
  fs.writeFileSync(solutions, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const out = path.join(tmp, "eval");
  const r = await bdc("evaluate", "--dataset", `apps:${problems}`, "--solutions", solutions, "--out", out, "--json", "--quiet");
  assert.equal(r.code, 0, r.err);
  const j = r.json();
  assert.equal(j.problems, 6);
  assert.equal(j.pass_rate, 41.67); // 100 * (1 + 0 + 0 + 0.5 + 1 + 0) / 6
  assert.equal(j.accuracy, 33.33); // 2 of 6
  assert.deepEqual(j.by_difficulty, {
    introductory: { problems: 3, tests: 6, pass_rate: 33.33, accuracy: 33.33 },
    interview: { problems: 2, tests: 4, pass_rate: 75, accuracy: 50 },
    competition: { problems: 1, tests: 0, pass_rate: 0, accuracy: 0 },
  });
  assert.match(r.out, /\| solutions \| 33\.33 \| 33\.33 \| 75\.00 \| 50\.00 \| 0\.00 \| 0\.00 \| 41\.67 \| 33\.33 \|/);
  assert.match(r.out, /\(1 without a program count 0\)/);

  const results = fs.readFileSync(path.join(out, "results.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const byId = new Map(results.map((x) => [x.problem_id, x]));
  assert.equal(results.length, 5);
  assert.deepEqual(byId.get("qs-0002-reverse-words").verdicts, ["wrong_answer", "wrong_answer"]);
  assert.deepEqual(byId.get("qs-0003-count-vowels").verdicts, ["runtime_error", "runtime_error"]);
  assert.match(byId.get("qs-0003-count-vowels").tests[0].error, /ValueError: boom/);
  assert.deepEqual(byId.get("qs-0004-max-subarray").verdicts, ["passed", "wrong_answer"]);
  assert.equal(byId.get("qs-0004-max-subarray").pass_fraction, 0.5);
  // Call-based: a tuple return value compares equal to the expected list.
  assert.deepEqual(byId.get("qs-0005-two-sum-indices").verdicts, ["passed", "passed"]);
  assert.equal(byId.get("qs-0001-sum-two").tests[0].stage, "exact");
  assert.ok(fs.existsSync(path.join(out, "evaluate.yaml")), "the workflow behind the evaluation is kept");
  assert.ok(fs.existsSync(path.join(out, "run", "report.html")));
});

test("the APPS cascade's token-set stage accepts words in the wrong order; --compare strict does not", async () => {
  const solutions = path.join(tmp, "unreversed.jsonl");
  fs.writeFileSync(solutions, `${JSON.stringify({ problem_id: "qs-0002-reverse-words", code: "print(input())\n" })}\n`);
  const apps = await bdc("evaluate", "--dataset", `apps:${problems}`, "--solutions", solutions, "--out", path.join(tmp, "apps"), "--quiet");
  assert.equal(apps.code, 0, apps.err);
  const [row] = fs.readFileSync(path.join(tmp, "apps", "results.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(row.tests.map((t: { verdict: string; stage?: string }) => [t.verdict, t.stage]), [["passed", "token-sets"], ["passed", "token-sets"]]);
  const strict = await bdc("evaluate", "--dataset", `apps:${problems}`, "--solutions", solutions, "--compare", "strict", "--json", "--quiet");
  assert.equal(strict.json().pass_rate, 0);
});

test("usage errors exit 2 with the valid choices", async () => {
  const bad = await bdc("evaluate", "--dataset", "leetcode:x.jsonl", "--reference");
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--dataset must be KIND:FILE with KIND one of apps, codecontests, humaneval, mbpp, got "leetcode:x\.jsonl" {2}\[BDC_USAGE\]/);
  const both = await bdc("evaluate", "--dataset", `apps:${problems}`);
  assert.equal(both.code, 2);
  assert.match(both.err, /give exactly one of --solutions FILE and --reference/);
  const missing = await bdc("evaluate", "--dataset", "apps:/nonexistent/x.jsonl", "--reference");
  assert.equal(missing.code, 2);
  assert.match(missing.err, /plugins\.problems\.with\.path {2}no such file/);
});
