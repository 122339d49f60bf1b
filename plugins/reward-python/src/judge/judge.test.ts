import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ExecResult, ExecStatus, TestCase } from "../types.ts";
import { MAX_EXPLANATION, judgeProgram, judgeTest } from "./judge.ts";

const stdio = (output: string): TestCase => ({ kind: "stdio", input: "", output });
const call = (expected: unknown): TestCase => ({ kind: "call", fnName: "f", args: [], expected });
const script: TestCase = { kind: "script", code: "assert f() == 1" };
const ok = (stdout: string, extra: Partial<ExecResult> = {}): ExecResult => ({ status: "ok", timeMs: 5, stdout, ...extra });

describe("judgeTest", () => {
  test("every failing ExecStatus maps to the verdict of the same name, error carried", () => {
    const statuses: ExecStatus[] = ["time_limit", "memory_limit", "runtime_error", "compile_error", "output_limit"];
    for (const status of statuses) {
      for (const test of [stdio("1"), call(1), script]) {
        const outcome = judgeTest(test, { status, timeMs: 7, stdout: "1", returned: 1, error: `why ${status}` }, "apps");
        assert.deepEqual(outcome, { verdict: status, timeMs: 7, error: `why ${status}` });
      }
      assert.deepEqual(judgeTest(stdio("1"), { status, timeMs: 7, stdout: "" }, "strict"), { verdict: status, timeMs: 7 });
    }
  });

  test("ok: stdio compared by mode, with the accepting stage", () => {
    assert.deepEqual(judgeTest(stdio("1 2 3"), ok("1 2 3\n"), "apps"), { verdict: "passed", timeMs: 5, stage: "exact" });
    assert.deepEqual(judgeTest(stdio("1 2 3"), ok("3 2 1\n"), "apps"), { verdict: "passed", timeMs: 5, stage: "token-sets" });
    assert.deepEqual(judgeTest(stdio("1 2 3"), ok("1 2 3\n"), "strict"), { verdict: "passed", timeMs: 5, stage: "strict-tokens" });
    const wrong = judgeTest(stdio("1 2 3"), ok("3 2 1\n"), "strict");
    assert.equal(wrong.verdict, "wrong_answer");
    assert.equal(wrong.stage, undefined);
    assert.equal(wrong.error, 'expected 3 tokens, got 3; first difference at token 1: expected "1", got "3"');
  });

  test("ok: call and script tests", () => {
    assert.deepEqual(judgeTest(call([[1, 2]]), ok("", { returned: [1, 2] }), "strict"), { verdict: "passed", timeMs: 5, stage: "call-first-element" });
    assert.deepEqual(judgeTest(call(2), ok("", { returned: 2.0 }), "apps"), { verdict: "passed", timeMs: 5, stage: "call-equal" });
    assert.deepEqual(judgeTest(script, ok(""), "apps"), { verdict: "passed", timeMs: 5, stage: "script" });
    const wrong = judgeTest(call([3]), ok("", { returned: 4, returnedRepr: "4" }), "apps");
    assert.deepEqual(wrong, { verdict: "wrong_answer", timeMs: 5, error: "expected [3], got 4" });
    const noJson = judgeTest(call([3]), ok(""), "apps");
    assert.equal(noJson.error, "expected [3], got a value with no JSON form");
  });

  test("wrong-answer explanations name the first difference and stay bounded", () => {
    const lines = judgeTest(stdio("a\nb\nc"), ok("a\nx\n"), "apps");
    assert.equal(lines.error, 'expected 3 lines, got 2; first difference at line 2: expected "b", got "x"');
    const missing = judgeTest(stdio("a\nb"), ok("a\n"), "apps");
    assert.equal(missing.error, 'expected 2 lines, got 1; first difference at line 2: expected "b", got <nothing>');
    const huge = "z".repeat(100_000);
    for (const mode of ["apps", "strict"] as const) {
      const outcome = judgeTest(stdio(`${huge}\n${huge}`), ok(`${huge}y\n${huge}`), mode);
      assert.equal(outcome.verdict, "wrong_answer");
      assert.ok(outcome.error!.length <= MAX_EXPLANATION, `${outcome.error!.length}`);
    }
    const bigCall = judgeTest(call([huge]), ok("", { returned: huge + "y", returnedRepr: `'${huge}y'` }), "apps");
    assert.ok(bigCall.error!.length <= MAX_EXPLANATION);
  });
});

describe("judgeProgram", () => {
  test("pass fraction and verdicts in test order", () => {
    const tests = [stdio("1"), stdio("2"), call(3), script];
    const results: ExecResult[] = [ok("1"), ok("3"), ok("", { returned: 3 }), { status: "runtime_error", timeMs: 1, stdout: "", error: "AssertionError" }];
    const judged = judgeProgram(tests, results, "apps");
    assert.deepEqual(judged.verdicts, ["passed", "wrong_answer", "passed", "runtime_error"]);
    assert.equal(judged.passFraction, 0.5);
    assert.equal(judged.outcomes.length, 4);
  });

  test("a problem with no tests scores 0", () => {
    assert.deepEqual(judgeProgram([], [], "strict"), { outcomes: [], verdicts: [], passFraction: 0 });
  });

  test("one result per test is required", () => {
    assert.throws(() => judgeProgram([stdio("1")], [], "apps"), /1 tests but 0 results/);
  });
});
