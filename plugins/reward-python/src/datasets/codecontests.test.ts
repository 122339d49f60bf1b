import * as assert from "node:assert/strict";
import { test } from "node:test";
import { testPlugin } from "@bdc/core/testing";
import plugin, { difficultyName, type CodeContestsProblem } from "./codecontests.ts";
import { assertNoHiddenLeak, build, byId, fixtures, problems } from "./test-util.ts";

testPlugin(plugin, {
  valid: [
    { path: "codecontests.jsonl" },
    { path: "test.parquet", difficulties: ["easy"], raw_difficulties: "11-25", ids: ["1548_E. Gregor"], hidden: ["private"], require_python3_solution: false },
  ],
  invalid: [
    { config: { path: "x", difficulties: ["medium"] }, code: "BDC_CONFIG_VALUE", path: "difficulties[0]" },
    { config: { path: "x", hidden: ["public"] }, code: "BDC_CONFIG_VALUE", path: "hidden[0]" },
    { config: { path: "x", require_python3_solution: "yes" }, code: "BDC_CONFIG_TYPE", path: "require_python3_solution" },
    { config: { path: "x", ids: "1-2" }, code: "BDC_CONFIG_TYPE", path: "ids" },
  ],
  contract: { config: { path: "codecontests.jsonl" }, baseDir: fixtures },
});

testPlugin(plugin, { contract: { config: { path: "codecontests.parquet" }, baseDir: fixtures } });

const A = "9001_A. Python problem";
const B = "9002_B. No Python";
const E = "9003_E. Hard without public tests";
const C = "9004_C. Only public tests";

test("difficulty as in the paper: 0-10 easy, 11-25 hard", () => {
  assert.deepEqual([0, 10, 11, 25].map(difficultyName), ["easy", "easy", "hard", "hard"]);
});

test("public = public_tests, hidden = private + generated; Python 3 solutions are the references", async () => {
  for (const file of ["codecontests.jsonl", "codecontests.parquet"]) {
    const { ds, events } = await build(plugin, { path: file });
    const ps = (await problems(ds)) as CodeContestsProblem[];
    assert.deepEqual(ps.map((p) => [p.id, p.split]), [[A, "public-tests"], [E, "statement-examples"], [C, "same-as-hidden"]]);
    assert.deepEqual((events.find((e) => e.event === "dataset_loaded")?.data as { skipped: unknown }).skipped, { "no Python 3 solution": 1 });
    const a = byId(ps, A) as CodeContestsProblem;
    assert.equal(a.difficulty, "easy");
    assert.equal(a.rawDifficulty, 7);
    assert.equal(a.style, "stdio");
    assert.equal(a.timeLimitMs, 2500);
    assert.equal(a.memoryLimitMb, 256);
    assert.deepEqual(a.publicTests, [{ kind: "stdio", input: "1 2\n", output: "3\n" }]);
    assert.deepEqual((await ds.hiddenTests(A)).map((t) => (t.kind === "stdio" ? t.input : "")), ["HIDDEN-CC-PRIVATE-IN\n", "HIDDEN-CC-GEN-IN-1\n", "HIDDEN-CC-GEN-IN-2\n"]);
    assert.deepEqual(await ds.references(A), ["print(sum(map(int, input().split())))\n", "a, b = map(int, input().split()); print(a + b)\n"]);
    // No public tests: the statement's examples; no time or memory limit in the row: none set.
    const e = byId(ps, E) as CodeContestsProblem;
    assert.equal(e.difficulty, "hard");
    assert.equal(e.rawDifficulty, 12);
    assert.equal(e.timeLimitMs, undefined);
    assert.equal(e.memoryLimitMb, undefined);
    assert.deepEqual(e.publicTests, [
      { kind: "stdio", input: "3\n", output: "9\n" },
      { kind: "stdio", input: "4\n", output: "16\n" },
    ]);
    // No hidden tests: scored on the public ones.
    assert.deepEqual(await ds.hiddenTests(C), byId(ps, C).publicTests);
  }
});

test("hidden, require_python3_solution, difficulty filters and time_limit_ms", async () => {
  const ids = async (config: Record<string, unknown>) => (await problems((await build(plugin, { path: "codecontests.jsonl", ...config })).ds)).map((p) => p.id);
  assert.deepEqual(await ids({ require_python3_solution: false }), [A, B, E, C]);
  assert.deepEqual(await ids({ difficulties: ["hard"] }), [E]);
  assert.deepEqual(await ids({ raw_difficulties: "0-7" }), [A, C]);
  assert.deepEqual(await ids({ ids: [C, A] }), [A, C]);
  const { ds } = await build(plugin, { path: "codecontests.jsonl", hidden: ["private"], require_python3_solution: false, time_limit_ms: 900 });
  assert.equal((await ds.hiddenTests(A)).length, 1);
  assert.deepEqual(await ds.references(B), []);
  assert.ok((await problems(ds)).every((p) => p.timeLimitMs === 900));
});

test("items never contain hidden tests or reference solutions", async () => {
  for (const file of ["codecontests.jsonl", "codecontests.parquet"]) {
    const { ds } = await build(plugin, { path: file, require_python3_solution: false });
    assert.ok((await assertNoHiddenLeak(ds, /HIDDEN/i)) >= 8);
  }
});
