import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { testPlugin } from "@bdc/core/testing";
import plugin from "./humaneval.ts";
import { assertNoHiddenLeak, build, byId, fixtures, problems } from "./test-util.ts";

testPlugin(plugin, {
  valid: [{ path: "humaneval.jsonl.gz" }, { path: "HumanEval.jsonl", ids: "0-49" }, { path: "x.jsonl", ids: ["HumanEval/3"] }],
  invalid: [{ config: { path: "x", ids: "a-b" }, code: "BDC_CONFIG_VALUE", path: "ids" }],
  contract: { config: { path: "humaneval.jsonl.gz" }, baseDir: fixtures },
});

test("public = docstring examples as asserts, hidden = the official check", async () => {
  const { ds } = await build(plugin, { path: "humaneval.jsonl" });
  const ps = await problems(ds);
  assert.deepEqual(ps.map((p) => [p.id, p.split]), [["Fixture/0", "docstring-examples"], ["Fixture/1", "docstring-examples"], ["Fixture/2", "same-as-hidden"]]);
  const p = byId(ps, "Fixture/0");
  assert.equal(p.style, "script");
  assert.equal(p.fnName, "double_all");
  assert.equal(p.starterCode, p.statement);
  assert.match(p.starterCode ?? "", /^def double_all\(xs\):/);
  assert.equal(p.publicTests.length, 2);
  assert.match(p.publicTests[0]!.kind === "script" ? p.publicTests[0]!.code : "", /_result = double_all\(\[1, 2\]\)\n_expected = \[2, 4\]\nassert /);
  const hidden = await ds.hiddenTests("Fixture/0");
  assert.equal(hidden.length, 1);
  assert.equal(hidden[0]!.kind === "script" && hidden[0]!.code, "\n\ndef check(candidate):\n    assert candidate([40961, 40962]) == [81922, 81924]  # HIDDEN-HE-0\n\ncheck(double_all)\n");
  assert.deepEqual(await ds.references("Fixture/0"), [`${p.starterCode}    return [2 * x for x in xs]\n`]);
  // `f(x) ==> y` and `f(x) => y` lines count as examples too.
  assert.equal(byId(ps, "Fixture/1").publicTests.length, 2);
  // Nothing to parse: the check itself is the public test.
  assert.deepEqual(byId(ps, "Fixture/2").publicTests, await ds.hiddenTests("Fixture/2"));
});

test(".jsonl.gz gives the same problems as .jsonl; id ranges use the task number", async () => {
  const plain = await problems((await build(plugin, { path: "humaneval.jsonl" })).ds);
  assert.deepEqual(await problems((await build(plugin, { path: "humaneval.jsonl.gz" })).ds), plain);
  const { ds } = await build(plugin, { path: "humaneval.jsonl.gz", ids: "1-2" });
  assert.deepEqual((await problems(ds)).map((p) => p.id), ["Fixture/1", "Fixture/2"]);
  assert.equal((await ds.hiddenTests("Fixture/2")).length, 1);
});

test("items never contain the hidden check", async () => {
  const { ds } = await build(plugin, { path: "humaneval.jsonl.gz" });
  assert.ok((await assertNoHiddenLeak(ds, /HIDDEN/i)) >= 2);
});

const python = spawnSync("python3", ["--version"]).status === 0;

test("the reference solutions pass every public and hidden script (python3)", { skip: !python && "python3 not found" }, async () => {
  const { ds } = await build(plugin, { path: "humaneval.jsonl" });
  for (const p of await problems(ds)) {
    const [ref] = await ds.references(p.id);
    for (const t of [...p.publicTests, ...(await ds.hiddenTests(p.id))]) {
      assert.equal(t.kind, "script");
      const r = spawnSync("python3", ["-c", `${ref}\n${t.kind === "script" ? t.code : ""}`], { encoding: "utf8" });
      assert.equal(r.status, 0, `${p.id}: ${r.stderr}`);
    }
    // A wrong solution fails its public tests.
    const wrong = spawnSync("python3", ["-c", `${p.statement}    return None\n${p.publicTests[0]!.kind === "script" ? p.publicTests[0]!.code : ""}`], { encoding: "utf8" });
    assert.notEqual(wrong.status, 0, p.id);
  }
});
