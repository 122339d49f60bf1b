/**
 * step/iterative-repair (Reflexion / LDB) on scripted doubles: the policy answers by prompt kind
 * and numbers its programs; the reward's pass rate is a table keyed by that number.
 */
import * as assert from "node:assert/strict";
import { test } from "node:test";
import type { StepContext, StepImpl } from "@bdc/core";
import { PluginTester, testPlugin } from "@bdc/core/testing";
import { promptLibrary } from "@bdc/policy";
import type { PublicProblem } from "@bdc/reward-python";
import repair, { testResults, type IterativeRepairOutput } from "./iterative-repair-step.ts";
import { problem, SECRET } from "./test-doubles/problems-dataset-plugin.ts";
import { ScriptedPolicy, ScriptedReward } from "./test-doubles/scripted.ts";

const ctx = { emit: () => {} } as unknown as StepContext;
const TRACE = "TRACE-TEXT-b7: block 2 sets n = 3";

/** A policy writing program #1, #2, ... (`# attempt N`) and reflections "REFLECTION-k". */
function scripted() {
  let programs = 0;
  let reflections = 0;
  const policy = new ScriptedPolicy("gpt", (prompt) => {
    if (prompt.includes("Reflect on why")) return `REFLECTION-${++reflections}: the loop is off by one.`;
    return `Here:\n\`\`\`python\n# attempt ${++programs}\nprint(0)\n\`\`\``;
  });
  return policy;
}
/** Pass rates by attempt number (missing: 0). */
const rewardOf = (rates: number[]) => new ScriptedReward((code) => rates[Number(/# attempt (\d+)/.exec(code)?.[1] ?? 0) - 1] ?? 0, TRACE);

async function run(config: Record<string, unknown>, rates: number[], p: PublicProblem = problem(0)) {
  const agent = scripted();
  const reward = rewardOf(rates);
  const step = await new PluginTester(repair).make<StepImpl<unknown, IterativeRepairOutput>>(config, { agent, prompts: promptLibrary(), reward });
  const out = await step.run({ id: p.id, data: p }, ctx);
  return { out, agent, reward, prompts: agent.calls.map((c) => c.prompt), step };
}

testPlugin(repair, {
  valid: [{ feedback: "reflection" }, { feedback: "trace", max_iterations: 10, feedback_chars: 2000 }, { feedback: "trace", repair_template: "my-repair" }],
  invalid: [
    { config: {}, code: "BDC_CONFIG_MISSING_KEY", path: "feedback" },
    { config: { feedback: "reflection", max_iterations: 0 }, code: "BDC_CONFIG_VALUE", path: "max_iterations" },
    { config: { feedback: "trace", tries: 3 }, code: "BDC_CONFIG_UNKNOWN_KEY", path: "tries" },
  ],
  contract: {
    config: { feedback: "trace" },
    deps: { agent: scripted(), prompts: promptLibrary(), reward: rewardOf([0.5, 1]) },
    items: [{ id: "p0", data: problem(0) }],
  },
});

test("reflection: a reflection after each failure, every reflection so far in the next attempt", async () => {
  const { out, prompts, reward } = await run({ feedback: "reflection", max_iterations: 3 }, [0, 0.5, 0]);
  assert.equal(prompts.length, 5, "zero-shot, reflection, repair, reflection, repair (none after the last attempt)");
  assert.match(prompts[0]!, /Solve the following problem in Python 3/);
  assert.match(prompts[1]!, /Reflect on why[\s\S]*# attempt 1[\s\S]*public test 1: wrong_answer/);
  assert.match(prompts[2]!, /Your previous program[\s\S]*# attempt 1[\s\S]*Test results:[\s\S]*0 of 2 public tests passed[\s\S]*REFLECTION-1/);
  assert.doesNotMatch(prompts[2]!, /REFLECTION-2/);
  assert.match(prompts[3]!, /Reflect on why[\s\S]*# attempt 2[\s\S]*1 of 2 public tests passed/);
  assert.match(prompts[4]!, /# attempt 2[\s\S]*Attempt 1: REFLECTION-1[\s\S]*Attempt 2: REFLECTION-2/);
  assert.ok(!reward.calls.some((c) => c.op === "feedback"), "no execution trace in reflection mode");
  assert.equal(out.iterations, 3);
  assert.deepEqual(out.history.map((h) => [h.iteration, h.public_pass_rate]), [[1, 0], [2, 0.5], [3, 0]]);
  assert.match(out.code, /# attempt 2/, "the best public pass rate");
  assert.equal(out.public_pass_rate, 0.5);
  assert.equal(out.agent, "gpt");
  assert.deepEqual(out.history[1]!.verdicts, ["passed", "wrong_answer"]);
});

test("trace: reward.feedback on the FIRST FAILING public test, its text in the repair prompt; stops on success", async () => {
  const { out, prompts, reward } = await run({ feedback: "trace", max_iterations: 5 }, [0.5, 1]);
  const feedback = reward.calls.filter((c) => c.op === "feedback");
  assert.equal(feedback.length, 1);
  assert.deepEqual(feedback[0]!.tests, [problem(0).publicTests[1]], "test 1 passed: the trace is of test 2");
  assert.match(feedback[0]!.code, /# attempt 1/);
  assert.equal(prompts.length, 2, "no reflection; stops once every public test passes");
  assert.match(prompts[1]!, /Debug it block by block[\s\S]*# attempt 1[\s\S]*public test 2: wrong_answer[\s\S]*Execution trace on the first failing test:\npublic test 2:\nTRACE-TEXT-b7: block 2 sets n = 3/);
  assert.doesNotMatch(prompts[1]!, /REFLECTION|Reflect on why/);
  assert.equal(out.iterations, 2);
  assert.equal(out.public_pass_rate, 1);
  assert.match(out.code, /# attempt 2/);
});

test("stops at max_iterations; first attempt = the zero-shot program; ties go to the latest", async () => {
  const one = await run({ feedback: "trace", max_iterations: 1 }, [0]);
  assert.equal(one.prompts.length, 1);
  assert.equal(one.out.iterations, 1);
  assert.ok(!one.reward.calls.some((c) => c.op === "feedback"));

  const four = await run({ feedback: "reflection" }, [0.5, 0, 0.5, 0]);
  assert.equal(four.out.iterations, 4, "default max_iterations");
  assert.equal(four.reward.calls.filter((c) => c.op === "evaluate").length, 4);
  assert.equal(four.prompts.filter((q) => q.includes("Reflect on why")).length, 3);
  assert.match(four.out.code, /# attempt 3/, "0.5 twice: the latest");

  const solved = await run({ feedback: "reflection" }, [1]);
  assert.equal(solved.prompts.length, 1, "a zero-shot program that passes every public test is the answer");
  assert.equal(solved.out.iterations, 1);
});

test("only the public tests are run or shown", async () => {
  for (const feedback of ["reflection", "trace"]) {
    const p = problem(2);
    const { reward, prompts } = await run({ feedback, max_iterations: 3 }, [0, 0.5, 0], p);
    assert.ok(reward.calls.length > 0);
    for (const call of reward.calls) {
      assert.notEqual(call.op, "evaluateOn");
      for (const t of call.tests) assert.ok(p.publicTests.some((q) => JSON.stringify(q) === JSON.stringify(t)), `${feedback}: ${JSON.stringify(t)} is a public test`);
    }
    assert.ok(prompts.every((q) => !q.includes(SECRET)));
    assert.ok(prompts.some((q) => q.includes("PUBLIC-IN-2-a")), "failing public tests are shown");
  }
});

test("summarize: mean public pass rate, solved, mean iterations", async () => {
  const { step } = await run({ feedback: "trace" }, [1]);
  const o = (rate: number, iterations: number): IterativeRepairOutput => ({ code: "", public_pass_rate: rate, agent: "gpt", iterations, history: [] });
  const summary = await step.summarize!([{ id: "a", output: o(1, 1) }, { id: "b", output: o(0.5, 4) }, { id: "c", error: { code: "X", message: "x" } }], ctx);
  assert.deepEqual(summary, { feedback: "trace", problems: 2, failed: 1, mean_public_pass_rate: 0.75, public_solved: 1, mean_iterations: 2.5 });
});

test("test results list every public verdict and show the failing tests", () => {
  const p = problem(3);
  const text = testResults(p, { passFraction: 0.5, verdicts: ["passed", "runtime_error"], tests: [{ verdict: "passed", timeMs: 1 }, { verdict: "runtime_error", timeMs: 1, error: "ZeroDivisionError" }] }, 4000);
  assert.match(text, /^1 of 2 public tests passed\.\npublic test 1: passed\npublic test 2: runtime_error\ninput:\nPUBLIC-IN-3-b\nexpected output:\n2\nerror:\nZeroDivisionError$/);
  assert.match(testResults(p, { passFraction: 0, verdicts: ["wrong_answer", "wrong_answer"], tests: [] }, 30), /\.\.\. \(truncated\)$/);
});
