/**
 * Turns execution results into verdicts. Execution (the sandbox) reports what happened; this
 * decides whether it was right.
 */
import type { ExecResult, ExecStatus, TestCase, TestOutcome, Verdict } from "../types.ts";
import { type CompareMode, DEFAULT_TOLERANCE, compareCall, compareStdout, tokensMatch } from "./compare.ts";
import { pySplit, pySplitlines, pyStrip } from "./py.ts";

/** Every failed execution is its own verdict, with the same name. */
const STATUS_VERDICT: Readonly<Record<Exclude<ExecStatus, "ok">, Verdict>> = {
  time_limit: "time_limit",
  memory_limit: "memory_limit",
  runtime_error: "runtime_error",
  compile_error: "compile_error",
  output_limit: "output_limit",
};

/** Upper bound on a wrong-answer explanation, so per-test details stay small in reports. */
export const MAX_EXPLANATION = 300;
const MAX_SNIPPET = 100;

/** Judges one test. `mode` affects standard-output tests only; call and script tests judge alike. */
export function judgeTest(test: TestCase, result: ExecResult, mode: CompareMode): TestOutcome {
  const timeMs = result.timeMs;
  if (result.status !== "ok") {
    const verdict = STATUS_VERDICT[result.status];
    return result.error === undefined ? { verdict, timeMs } : { verdict, timeMs, error: result.error };
  }
  switch (test.kind) {
    case "script":
      return { verdict: "passed", timeMs, stage: "script" };
    case "stdio": {
      const cmp = compareStdout(result.stdout, test.output, mode);
      return cmp.ok
        ? { verdict: "passed", timeMs, stage: cmp.stage! }
        : { verdict: "wrong_answer", timeMs, error: explainStdout(result.stdout, test.output, mode) };
    }
    case "call": {
      const cmp = compareCall(result.returned, test.expected);
      return cmp.ok
        ? { verdict: "passed", timeMs, stage: cmp.stage! }
        : { verdict: "wrong_answer", timeMs, error: explainCall(result, test.expected) };
    }
  }
}

/**
 * Judges a program's results on a problem's tests (one result per test, in order).
 * passFraction = passed / number of tests; a problem with no tests scores 0, since nothing
 * showed the program correct.
 */
export function judgeProgram(
  tests: ReadonlyArray<TestCase>,
  results: ReadonlyArray<ExecResult>,
  mode: CompareMode,
): { outcomes: TestOutcome[]; passFraction: number; verdicts: Verdict[] } {
  if (tests.length !== results.length) {
    throw new Error(`judgeProgram: ${tests.length} tests but ${results.length} results`);
  }
  const outcomes = tests.map((test, i) => judgeTest(test, results[i]!, mode));
  const verdicts = outcomes.map((o) => o.verdict);
  const passed = verdicts.filter((v) => v === "passed").length;
  return { outcomes, verdicts, passFraction: tests.length === 0 ? 0 : passed / tests.length };
}

/**
 * Where the output first differs: by line in apps mode (lines compared stripped, since the
 * cascade forgives surrounding whitespace), by token in strict mode.
 */
function explainStdout(actual: string, expected: string, mode: CompareMode): string {
  const [unit, got, want, same] =
    mode === "apps"
      ? (["line", pySplitlines(actual).map(pyStrip), pySplitlines(expected).map(pyStrip), (a: string, e: string) => a === e] as const)
      : (["token", pySplit(actual), pySplit(expected), (a: string, e: string) => tokensMatch(a, e, DEFAULT_TOLERANCE.relTol, DEFAULT_TOLERANCE.absTol)] as const);
  const counts = `expected ${want.length} ${unit}s, got ${got.length}`;
  const n = Math.max(got.length, want.length);
  for (let i = 0; i < n; i++) {
    const a = got[i];
    const e = want[i];
    if (a !== undefined && e !== undefined && same(a, e)) continue;
    return bound(`${counts}; first difference at ${unit} ${i + 1}: expected ${show(e)}, got ${show(a)}`);
  }
  // Apps mode rejected outputs whose stripped lines all agree (e.g. blank lines that the
  // cascade's line stages could not reconcile with the expected ones).
  return bound(`${counts}; outputs differ in blank lines or whitespace`);
}

function explainCall(result: ExecResult, expected: unknown): string {
  const got =
    result.returnedRepr !== undefined
      ? snippet(result.returnedRepr)
      : result.returned !== undefined
        ? snippet(JSON.stringify(result.returned))
        : "a value with no JSON form";
  return bound(`expected ${snippet(JSON.stringify(expected) ?? String(expected))}, got ${got}`);
}

function show(s: string | undefined): string {
  return s === undefined ? "<nothing>" : JSON.stringify(snippet(s));
}

function snippet(s: string): string {
  return s.length > MAX_SNIPPET ? `${s.slice(0, MAX_SNIPPET - 3)}...` : s;
}

function bound(s: string): string {
  return s.length > MAX_EXPLANATION ? `${s.slice(0, MAX_EXPLANATION - 3)}...` : s;
}
