import * as assert from "node:assert/strict";
import { test } from "node:test";
import { testPlugin } from "@bdc/core/testing";
import plugin, { calledFunction } from "./mbpp.ts";
import { assertNoHiddenLeak, build, byId, fixtures, problems } from "./test-util.ts";

testPlugin(plugin, {
  valid: [{ path: "mbpp.jsonl" }, { path: "mbpp.jsonl", ids: "11-510", include_challenge_tests: true }],
  invalid: [{ config: { path: "mbpp.jsonl", include_challenge_tests: 1 }, code: "BDC_CONFIG_TYPE", path: "include_challenge_tests" }],
  contract: { config: { path: "mbpp.jsonl" }, baseDir: fixtures },
});

test("public = the first assert, hidden = every assert, each with the setup code", async () => {
  const { ds, logs } = await build(plugin, { path: "mbpp.jsonl" });
  const ps = await problems(ds);
  assert.deepEqual(ps.map((p) => [p.id, p.split, p.fnName]), [["11", "first-test", "add_two"], ["12", "first-test", "isqrt_floor"]]);
  assert.match(logs.join("\n"), /mbpp\.jsonl:3: problem 13 has no tests/);
  const p = byId(ps, "11");
  assert.equal(p.style, "script");
  assert.equal(p.statement, "Write a function to add two numbers.");
  assert.deepEqual(p.publicTests, [{ kind: "script", code: "assert add_two(1, 2) == 3\n" }]);
  assert.equal((await ds.hiddenTests("11")).length, 3);
  assert.deepEqual(await ds.references("11"), ["def add_two(a, b):\n    return a + b\n"]);
  assert.deepEqual(await ds.hiddenTests("12"), [
    { kind: "script", code: "LIMIT = 50\nassert isqrt_floor(10) == 3\n" },
    { kind: "script", code: "LIMIT = 50\nassert isqrt_floor(LIMIT) == 7  # HIDDEN-MBPP-12-B\n" },
  ]);
  const challenge = (await build(plugin, { path: "mbpp.jsonl", include_challenge_tests: true })).ds;
  await problems(challenge);
  assert.equal((await challenge.hiddenTests("11")).length, 4);
});

test("fnName is the reference's function that the first test calls", () => {
  assert.equal(calledFunction("def helper(x):\n    pass\ndef f(a):\n    pass\n", "assert set(f(helper2(1))) == {1}"), "f");
  assert.equal(calledFunction("def f(): pass", "assert g() == 1"), undefined);
});

test("items never contain hidden asserts beyond the public first one", async () => {
  const { ds } = await build(plugin, { path: "mbpp.jsonl", include_challenge_tests: true });
  assert.ok((await assertNoHiddenLeak(ds, /HIDDEN/i)) >= 4);
});
