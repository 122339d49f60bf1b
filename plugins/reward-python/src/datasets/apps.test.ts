import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { BdcError } from "@bdc/core";
import { PluginTester, testPlugin } from "@bdc/core/testing";
import plugin from "./apps.ts";
import { assertNoHiddenLeak, build, byId, fixtures, problems } from "./test-util.ts";

testPlugin(plugin, {
  valid: [
    { path: "apps.jsonl" },
    { path: "test.jsonl", difficulties: ["introductory", "competition"], ids: "4000-4099" },
    { path: "test.jsonl", ids: "0-99,3000-3099" },
    { path: "test.jsonl", ids: [1, "2"] },
    { path: "train.parquet", format: "parquet", on_malformed: "skip", time_limit_ms: 2000, limit: 3 },
  ],
  invalid: [
    { config: {}, code: "BDC_CONFIG_MISSING_KEY", path: "path" },
    { config: { path: 3 }, code: "BDC_CONFIG_TYPE", path: "path" },
    { config: { path: "x", difficulties: ["easy"] }, code: "BDC_CONFIG_VALUE", path: "difficulties[0]" },
    { config: { path: "x", ids: "40-x" }, code: "BDC_CONFIG_VALUE", path: "ids" },
    { config: { path: "x", ids: "99-1" }, code: "BDC_CONFIG_VALUE", path: "ids" },
    { config: { path: "x", on_malformed: "ignore" }, code: "BDC_CONFIG_VALUE", path: "on_malformed" },
    { config: { path: "x", format: "csv" }, code: "BDC_CONFIG_VALUE", path: "format" },
    { config: { path: "x", time_limit_ms: 0 }, code: "BDC_CONFIG_VALUE", path: "time_limit_ms" },
  ],
  contract: { config: { path: "apps.jsonl" }, baseDir: fixtures },
});

testPlugin(plugin, { contract: { config: { path: "apps.parquet" }, baseDir: fixtures } });

test("every problem with tests is yielded in file order, each with its split rule", async () => {
  const { ds, logs, events } = await build(plugin, { path: "apps.jsonl" });
  const ps = await problems(ds);
  assert.deepEqual(
    ps.map((p) => [p.id, p.split]),
    [
      ["9001", "first-half"],
      ["9002", "statement-examples"],
      ["9003", "statement-examples"],
      ["9004", "same-as-hidden"],
      ["9005", "first-half"],
      ["9007", "first-half"],
    ],
  );
  // The one problem without tests is reported, not silently dropped.
  assert.equal(logs.length, 1);
  assert.match(logs[0]!, /apps\.jsonl:6: problem 9006 has no tests \(empty input_output\) \(problem skipped\)$/);
  assert.ok(events.some((e) => e.event === "problem_skipped" && e.data?.line === 6));
  const loaded = events.find((e) => e.event === "dataset_loaded");
  assert.deepEqual(loaded?.data?.splits, { "first-half": 3, "statement-examples": 2, "same-as-hidden": 1 });
});

test("n >= 2 tests: the first floor(n/2) are public, the rest hidden", async () => {
  const { ds } = await build(plugin, { path: "apps.jsonl" });
  const ps = await problems(ds);
  const p = byId(ps, "9001");
  assert.equal(p.style, "stdio");
  assert.equal(p.difficulty, "competition");
  assert.equal(p.starterCode, undefined);
  assert.deepEqual(p.publicTests, [
    { kind: "stdio", input: "1 2\n", output: "3\n" },
    { kind: "stdio", input: "5 6\n", output: "11\n" },
  ]);
  assert.deepEqual(await ds.hiddenTests("9001"), [
    { kind: "stdio", input: "HIDDEN-9001-IN-A\n", output: "HIDDEN-9001-OUT-A\n" },
    { kind: "stdio", input: "HIDDEN-9001-IN-B\n", output: "HIDDEN-9001-OUT-B\n" },
  ]);
  assert.deepEqual(await ds.references("9001"), ["a, b = map(int, input().split())\nprint(a + b)\n"]);
  // Lists of lines are joined with "\n", as the APPS harness does.
  assert.deepEqual(byId(ps, "9005").publicTests, [{ kind: "stdio", input: "2\nx\ny", output: "2" }]);
  assert.deepEqual(await ds.hiddenTests("9005"), [{ kind: "stdio", input: "1\nHIDDEN-9005-LINE", output: "HIDDEN-9005-OUT" }]);
  // Call-based: args are inputs[i], expected outputs[i].
  const call = byId(ps, "9007");
  assert.equal(call.style, "call");
  assert.equal(call.fnName, "largest");
  assert.equal(call.starterCode, "def largest(xs):\n    ");
  assert.deepEqual(call.publicTests, [
    { kind: "call", fnName: "largest", args: [[1, 2, 3]], expected: [3] },
    { kind: "call", fnName: "largest", args: [[5]], expected: [5] },
  ]);
  assert.deepEqual(await ds.hiddenTests("9007"), [
    { kind: "call", fnName: "largest", args: [["HIDDEN-9007-ARG"]], expected: ["HIDDEN-9007-EXP"] },
    { kind: "call", fnName: "largest", args: [[7, 8]], expected: [8] },
  ]);
  assert.deepEqual(await ds.references("9007"), []);
});

test("one-test problems are never dropped: public = statement examples, hidden = the given test", async () => {
  const { ds } = await build(plugin, { path: "apps.jsonl" });
  const ps = await problems(ds);
  assert.deepEqual(byId(ps, "9002").publicTests, [{ kind: "stdio", input: "2\n1\n4\n", output: "2\n8\n" }]);
  assert.deepEqual(await ds.hiddenTests("9002"), [{ kind: "stdio", input: "3\n7\n HIDDEN-9002-IN \n9\n", output: "14\nHIDDEN-9002-OUT\n18\n" }]);
  const call = byId(ps, "9003");
  assert.equal(call.style, "call");
  assert.equal(call.fnName, "addAll");
  assert.match(call.starterCode ?? "", /^class Solution:/);
  assert.deepEqual(call.publicTests, [
    { kind: "call", fnName: "addAll", args: [[1, 2], 3], expected: 6 },
    { kind: "call", fnName: "addAll", args: [[], 0], expected: 0 },
  ]);
  assert.deepEqual(await ds.hiddenTests("9003"), [{ kind: "call", fnName: "addAll", args: [[4001, 4002], 17071], expected: 25144 }]);
  // No example in the statement: the given test is both public and hidden, and the rule says so.
  const same = byId(ps, "9004");
  assert.equal(same.split, "same-as-hidden");
  assert.deepEqual(same.publicTests, await ds.hiddenTests("9004"));
});

test("items never contain hidden tests or reference solutions", async () => {
  for (const file of ["apps.jsonl", "apps.parquet"]) {
    const { ds } = await build(plugin, { path: file });
    const checked = await assertNoHiddenLeak(ds, /HIDDEN/i);
    assert.ok(checked >= 10, `checked only ${checked} hidden strings`);
  }
});

test("parquet rows give the same problems, hidden tests and references as JSONL", async () => {
  const a = (await build(plugin, { path: "apps.jsonl" })).ds;
  const b = (await build(plugin, { path: "apps.parquet" })).ds;
  const pa = await problems(a);
  assert.deepEqual(await problems(b), pa);
  // Reverse order: fetches jump between the file's two row groups.
  for (const p of [...pa].reverse()) {
    assert.deepEqual(await b.hiddenTests(p.id), await a.hiddenTests(p.id));
    assert.deepEqual(await b.references(p.id), await a.references(p.id));
  }
});

test("filters: difficulties, id ranges, id lists, limit; time_limit_ms", async () => {
  const ids = async (config: Record<string, unknown>) => (await problems((await build(plugin, { path: "apps.jsonl", ...config })).ds)).map((p) => p.id);
  assert.deepEqual(await ids({ difficulties: ["introductory"] }), ["9002", "9003", "9007"]);
  assert.deepEqual(await ids({ ids: "9002-9004" }), ["9002", "9003", "9004"]);
  assert.deepEqual(await ids({ ids: "9001,9005-9005" }), ["9001", "9005"]);
  assert.deepEqual(await ids({ ids: [9001, "9007"] }), ["9001", "9007"]);
  assert.deepEqual(await ids({ difficulties: ["interview"], limit: 1 }), ["9004"]);
  const { ds } = await build(plugin, { path: "apps.jsonl", time_limit_ms: 1500, ids: [9001] });
  assert.equal((await problems(ds))[0]!.timeLimitMs, 1500);
  // A filtered-out problem has no hidden tests here.
  await assert.rejects(ds.hiddenTests("9002"), (e: BdcError) => e.code === "BDC_DATASET_UNKNOWN_ID" && /with this instance's filters/.test(e.message));
});

test("a malformed row fails the load with file:line by default", async () => {
  const { ds } = await build(plugin, { path: "apps-malformed.jsonl" });
  const file = path.join(fixtures, "apps-malformed.jsonl");
  await assert.rejects(problems(ds), (e: unknown) => {
    assert.ok(e instanceof BdcError);
    assert.equal(e.code, "BDC_DATASET_PARSE");
    assert.ok(e.message.startsWith(`${file}:2: not valid JSON`), e.message);
    assert.match(e.hint ?? "", /on_malformed: skip/);
    return true;
  });
});

test("on_malformed: skip leaves malformed rows out with a warning each", async () => {
  const { ds, logs, events } = await build(plugin, { path: "apps-malformed.jsonl", on_malformed: "skip" });
  assert.deepEqual((await problems(ds)).map((p) => p.id), ["1", "6"]);
  const file = path.join(fixtures, "apps-malformed.jsonl");
  const messages = events.filter((e) => e.event === "malformed_row").map((e) => `${e.data?.line}: ${e.data?.message}`);
  assert.equal(messages.length, 4);
  assert.match(messages[0]!, /^2: not valid JSON/);
  assert.equal(messages[1], '3: missing field "question"');
  assert.match(messages[2]!, /^4: field "input_output" is not valid JSON/);
  assert.equal(messages[3], "5: input_output has 2 inputs but 1 outputs");
  assert.ok(logs.some((l) => l.startsWith(`${file}:3: missing field "question" (row skipped)`)));
  assert.ok(logs.some((l) => /4 malformed row\(s\) skipped/.test(l)));
});

test("a missing file is a preflight problem and a clear load error", async () => {
  const tester = new PluginTester(plugin);
  const config = { ...tester.decode({ path: path.join(fixtures, "nope.jsonl") }) };
  const problemsFound = [...(await plugin.preflight!(config as never, { instance: "apps", baseDir: fixtures, env: {} }))];
  assert.equal(problemsFound[0]?.code, "BDC_FILE_NOT_FOUND");
  const { ds } = await build(plugin, { path: "nope.jsonl" });
  await assert.rejects(problems(ds), (e: BdcError) => e.code === "BDC_FILE_NOT_FOUND" && /bdc data pull/.test(e.hint ?? ""));
});

test("a file replaced after loading is detected when hidden tests are read", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-apps-"));
  try {
    const file = path.join(dir, "apps.jsonl");
    fs.copyFileSync(path.join(fixtures, "apps.jsonl"), file);
    const { ds } = await build(plugin, { path: file });
    await problems(ds);
    assert.equal((await ds.hiddenTests("9001")).length, 2);
    fs.appendFileSync(file, "\n");
    await assert.rejects(ds.hiddenTests("9001"), (e: BdcError) => e.code === "BDC_DATASET_CHANGED");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
