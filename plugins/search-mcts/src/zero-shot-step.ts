/**
 * `step/zero-shot`: the paper's ZeroShot row (Table 1), and the student's evaluation (Tables 2-3:
 * the authors ask the tuned student for the code directly). One agent is asked once per problem
 * with the "zero-shot" prompt template (the problem rendered by prompting.ts, as everywhere); the
 * first (`code_block`) ```python block of its answer is the program. The
 * program is judged on the PUBLIC tests only (for the record: the final score is `step/score`
 * on the hidden tests, as for every other row).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Schema } from "effect";
import { definePlugin, option, type StepImpl } from "@bdc/core";
import { compositionHeatmapHtml, type CompositionRecord, type Policy, type PromptLibrary } from "@bdc/policy";
import type { Reward } from "@bdc/reward-python";
import { publicProblem } from "./problem-item.ts";
import { extractPython, formatInstructions, problemText } from "./prompting.ts";

export interface ZeroShotOutput {
  readonly code: string;
  /** Fraction of the public tests the program passes, 0..1. */
  readonly public_pass_rate: number;
  /** The agent (policy instance) that wrote it. */
  readonly agent: string;
  /** Which experts the answer's composition leaned on (a student with a composer). */
  readonly composition?: CompositionRecord | undefined;
}

export default definePlugin({
  id: "step/zero-shot",
  version: "0.1.0",
  description: "ZeroShot baseline (paper Table 1): one agent answers each problem once with the zero-shot prompt; the program is judged on the public tests",
  config: Schema.Struct({
    template: option(Schema.String.pipe(Schema.minLength(1)), "zero-shot", "prompt template (variables: problem, format_instructions)"),
    code_block: option(Schema.Literal("first", "last"), "first", "which ```python block of the answer is the program (the search takes the last)"),
  }),
  requires: {
    agent: { slot: "policy", description: "the agent that writes the program" },
    prompts: { slot: "prompts" },
    reward: { slot: "reward", description: "judges the program on the public tests" },
  },
  make(config, deps): StepImpl<unknown, ZeroShotOutput> {
    const agent = deps.agent as Policy;
    const prompts = deps.prompts as PromptLibrary;
    const reward = deps.reward as Reward;
    return {
      async run(item, ctx) {
        const problem = publicProblem(item.data, item.id);
        const prompt = prompts.render(config.template, { problem: problemText(problem), format_instructions: formatInstructions(problem) });
        const completion = await agent.complete([{ role: "user", content: prompt }], { signal: ctx.signal });
        const code = extractPython(completion.text, config.code_block);
        const evaluation = await reward.evaluate(problem, code, ctx.signal);
        return { code, public_pass_rate: evaluation.passFraction, agent: agent.name, ...(completion.composition === undefined ? {} : { composition: completion.composition }) };
      },
      summarize(results, ctx) {
        const done = results.flatMap((r) => (r.output === undefined ? [] : [r.output]));
        const composed = results.flatMap((r) => (r.output?.composition === undefined ? [] : [{ id: r.id, composition: r.output.composition }]));
        if (composed.length > 0) fs.writeFileSync(path.join(ctx.dir, "gates.html"), compositionHeatmapHtml(`Experts per problem: ${agent.name}`, composed));
        const mean = done.length === 0 ? 0 : done.reduce((s, o) => s + o.public_pass_rate, 0) / done.length;
        return {
          problems: done.length,
          failed: results.length - done.length,
          mean_public_pass_rate: Math.round(mean * 1e4) / 1e4,
          public_solved: done.filter((o) => o.public_pass_rate === 1).length,
        };
      },
    };
  },
});
