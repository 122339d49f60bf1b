/**
 * `step/iterative-repair`: the Reflexion and LDB baselines as one step with two feedback modes.
 * Per problem the agent writes a first program with the zero-shot prompt (the ZeroShot row's
 * program); while it fails some PUBLIC test and attempts remain, the agent repairs its latest
 * program:
 *
 *   feedback: reflection - Reflexion (Shinn et al. 2023): after a failed attempt the agent writes
 *     a verbal self-reflection ("reflection" template: problem, code, test results); the next
 *     attempt ("repair-with-reflection") gets the previous program, its test results and every
 *     reflection so far (the episodic memory). A reflection is asked only when another attempt
 *     follows (none after the last one).
 *   feedback: trace - LDB (Zhong et al. 2024): the next attempt ("repair-with-trace") gets the
 *     previous program, its test results and the block-level execution trace of the FIRST FAILING
 *     public test (`reward.feedback(problem, code, test).text`, bounded by feedback_chars).
 *
 * Only the public tests are ever run or shown (the hidden ones stay with step/score). The answer
 * is the program with the best public pass rate (ties: the latest). `max_iterations` counts
 * every program written, the zero-shot one included (Reflexion's convention). The papers:
 * Reflexion's code runs use --max_iters 5 (GPT-4, HumanEval/MBPP; 2 in some GPT-3.5 scripts);
 * LDB allows up to 10 debugging iterations after its seed program. Default here: 4.
 */
import { Schema } from "effect";
import { definePlugin, option, optional, required, type StepImpl } from "@bdc/core";
import type { Policy, PromptLibrary } from "@bdc/policy";
import type { ProgramEvaluation, PublicProblem, Reward, TestCase, Verdict } from "@bdc/reward-python";
import { extractPython, formatInstructions, problemText } from "./prompting.ts";
import { publicProblem } from "./problem-item.ts";

export type RepairFeedback = "reflection" | "trace";

export interface RepairAttempt {
  /** 1 = the zero-shot program, 2.. = repairs. */
  readonly iteration: number;
  readonly public_pass_rate: number;
  readonly verdicts: ReadonlyArray<Verdict>;
}

export interface IterativeRepairOutput {
  /** The best program on the public tests (ties: the latest). */
  readonly code: string;
  readonly public_pass_rate: number;
  readonly agent: string;
  /** Programs written (1..max_iterations). */
  readonly iterations: number;
  readonly history: ReadonlyArray<RepairAttempt>;
}

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}\n... (truncated)` : text);

/** A public test, shown to the agent (input and expected result). */
export function describeTest(test: TestCase, max = 600): string {
  switch (test.kind) {
    case "stdio":
      return `input:\n${clip(test.input, max)}\nexpected output:\n${clip(test.output, max)}`;
    case "call":
      return `call: ${test.fnName}(${clip(test.args.map((a) => JSON.stringify(a)).join(", "), max)})\nexpected return value: ${clip(JSON.stringify(test.expected) ?? "undefined", max)}`;
    case "script":
      return `assertions:\n${clip(test.code, max)}`;
  }
}

/** The `{{feedback}}` text: every public test's verdict, the failing ones with their test and error. */
export function testResults(problem: PublicProblem, evaluation: ProgramEvaluation, maxChars: number): string {
  if (problem.publicTests.length === 0) return "(no public tests)";
  const lines = problem.publicTests.map((test, k) => {
    const verdict = evaluation.verdicts[k] ?? "not run";
    if (verdict === "passed") return `public test ${k + 1}: passed`;
    const error = evaluation.tests[k]?.error;
    return `public test ${k + 1}: ${verdict}\n${describeTest(test)}${error ? `\nerror:\n${clip(error, 600)}` : ""}`;
  });
  const passed = evaluation.verdicts.filter((v) => v === "passed").length;
  return clip(`${passed} of ${problem.publicTests.length} public tests passed.\n${lines.join("\n")}`, maxChars);
}

export default definePlugin({
  id: "step/iterative-repair",
  version: "0.1.0",
  description:
    "Reflexion (feedback: reflection) and LDB (feedback: trace) baselines: the zero-shot program, then repairs from public-test feedback until every public test passes or max_iterations",
  config: Schema.Struct({
    feedback: required(Schema.Literal("reflection", "trace"), "reflection: Reflexion's verbal self-reflections; trace: LDB's block-level execution trace of the first failing public test"),
    max_iterations: option(Schema.Int.pipe(Schema.positive()), 4, "programs written per problem, the zero-shot one included (Reflexion's scripts: 5; LDB: up to 10 debugging iterations)"),
    template: option(Schema.String.pipe(Schema.minLength(1)), "zero-shot", "prompt of the first attempt (problem, format_instructions)"),
    reflection_template: option(Schema.String.pipe(Schema.minLength(1)), "reflection", "reflection mode: the self-reflection prompt (problem, code, feedback)"),
    repair_template: optional(
      Schema.String.pipe(Schema.minLength(1)),
      'prompt of a repair; default "repair-with-reflection" (problem, format_instructions, code, feedback, reflections) or "repair-with-trace" (problem, format_instructions, code, feedback, trace)',
    ),
    feedback_chars: option(Schema.Int.pipe(Schema.positive()), 4000, "bound of the test results and of the trace in a prompt"),
  }),
  requires: {
    agent: { slot: "policy", description: "the agent that writes, reflects on and repairs the program" },
    prompts: { slot: "prompts" },
    reward: { slot: "reward", description: "judges programs on the public tests; trace mode: the block-level trace" },
  },
  make(config, deps): StepImpl<unknown, IterativeRepairOutput> {
    const agent = deps.agent as Policy;
    const prompts = deps.prompts as PromptLibrary;
    const reward = deps.reward as Reward;
    const mode: RepairFeedback = config.feedback;
    const repairTemplate = config.repair_template ?? (mode === "reflection" ? "repair-with-reflection" : "repair-with-trace");

    return {
      async run(item, ctx) {
        const problem = publicProblem(item.data, item.id);
        const signal = ctx.signal;
        const base = { problem: problemText(problem), format_instructions: formatInstructions(problem) };
        const ask = async (prompt: string) => (await agent.complete([{ role: "user", content: prompt }], { signal })).text;

        const history: RepairAttempt[] = [];
        const reflections: string[] = [];
        let best: { code: string; rate: number } | undefined;
        let prompt = prompts.render(config.template, base);
        for (let iteration = 1; ; iteration++) {
          const code = extractPython(await ask(prompt), "first");
          const evaluation = await reward.evaluate(problem, code, signal);
          const rate = evaluation.passFraction;
          history.push({ iteration, public_pass_rate: rate, verdicts: [...evaluation.verdicts] });
          if (best === undefined || rate >= best.rate) best = { code, rate };
          ctx.emit?.("repair.attempt", { problem: problem.id, iteration, public_pass_rate: rate, mode });
          const solved = rate >= 1 && evaluation.verdicts.every((v) => v === "passed");
          // No public test: nothing to repair from.
          if (solved || iteration >= config.max_iterations || problem.publicTests.length === 0) break;

          const feedback = testResults(problem, evaluation, config.feedback_chars);
          if (mode === "reflection") {
            const reflection = (await ask(prompts.render(config.reflection_template, { ...base, code, feedback }))).trim();
            reflections.push(`Attempt ${iteration}: ${reflection || "(empty reflection)"}`);
            prompt = prompts.render(repairTemplate, { ...base, code, feedback, reflections: reflections.join("\n\n") });
          } else {
            const failing = evaluation.verdicts.findIndex((v) => v !== "passed");
            const at = failing < 0 ? 0 : failing;
            const test = problem.publicTests[at]!;
            let trace: string;
            try {
              trace = (await reward.feedback(problem, code, test, config.feedback_chars)).text;
            } catch (e) {
              signal?.throwIfAborted();
              trace = `(no trace: ${e instanceof Error ? e.message : String(e)})`;
            }
            prompt = prompts.render(repairTemplate, { ...base, code, feedback, trace: `public test ${at + 1}:\n${clip(trace, config.feedback_chars)}` });
          }
        }
        return { code: best!.code, public_pass_rate: best!.rate, agent: agent.name, iterations: history.length, history };
      },
      summarize(results) {
        const done = results.flatMap((r) => (r.output === undefined ? [] : [r.output]));
        const mean = (f: (o: IterativeRepairOutput) => number) => (done.length === 0 ? 0 : Math.round((done.reduce((s, o) => s + f(o), 0) / done.length) * 1e4) / 1e4);
        return {
          feedback: mode,
          problems: done.length,
          failed: results.length - done.length,
          mean_public_pass_rate: mean((o) => o.public_pass_rate),
          public_solved: done.filter((o) => o.public_pass_rate === 1).length,
          mean_iterations: mean((o) => o.iterations),
        };
      },
    };
  },
});
