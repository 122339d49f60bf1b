/**
 * `step/zero-shot`: the paper's ZeroShot row (Table 1). One agent is asked once per problem
 * with the "zero-shot" prompt template; the ```python block of its answer is the program. The
 * program is judged on the PUBLIC tests only (for the record: the final score is `step/score`
 * on the hidden tests, as for every other row).
 */
import { Schema } from "effect";
import { BdcError, definePlugin, option, type StepImpl } from "@bdc/core";
import * as fs from "node:fs";
import * as path from "node:path";
import { compositionHeatmapHtml, type CompositionRecord, type Policy, type PromptLibrary } from "@bdc/policy";
import type { PublicProblem, Reward } from "@bdc/reward-python";
import { publicProblem } from "./problem-item.ts";

export interface ZeroShotOutput {
  readonly code: string;
  /** Fraction of the public tests the program passes, 0..1. */
  readonly public_pass_rate: number;
  /** The agent (policy instance) that wrote it. */
  readonly agent: string;
  /** Which experts the answer's composition leaned on (a student with a composer). */
  readonly composition?: CompositionRecord | undefined;
}

/** The `{{problem}}` variable of the templates: the statement, then the starter code if any. */
export function problemText(problem: Pick<PublicProblem, "statement" | "starterCode">): string {
  const starter = problem.starterCode?.trim();
  return starter ? `${problem.statement.trim()}\n\nStarter code:\n\`\`\`python\n${problem.starterCode!.replace(/\s+$/, "")}\n\`\`\`` : problem.statement.trim();
}

/** The `{{format_instructions}}` variable: how the program is run by the tests. */
export function formatInstructions(problem: Pick<PublicProblem, "style" | "fnName" | "starterCode">): string {
  switch (problem.style) {
    case "call":
      return (
        `Implement the function/method ${problem.fnName ?? "of the starter code"} of the starter code` +
        " (a top-level function, or a method of class Solution): the tests call it with their arguments and compare the value it returns." +
        " Do not read standard input and do not print the answer."
      );
    case "script":
      return "Complete the code given above; the tests are assertions run after your program in the same namespace.";
    default:
      return "The program reads the input from standard input and writes the answer to standard output.";
  }
}

/**
 * The program in a model's answer: the first ```python (or ```py / ```python3) block, else the
 * first fenced block of any language, else the whole answer (some models omit the fence).
 */
export function extractPython(text: string): string {
  const fenced = [...text.matchAll(/```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n([\s\S]*?)(?:```|$)/g)];
  const python = fenced.find((m) => /^(python3?|py)$/i.test(m[1] ?? ""));
  const block = python ?? fenced[0];
  const code = block === undefined ? text : block[2]!;
  return `${code.replace(/\s+$/, "")}\n`;
}

export default definePlugin({
  id: "step/zero-shot",
  version: "0.1.0",
  description: "ZeroShot baseline (paper Table 1): one agent answers each problem once with the zero-shot prompt; the program is judged on the public tests",
  config: Schema.Struct({
    template: option(Schema.String.pipe(Schema.minLength(1)), "zero-shot", "prompt template (variables: problem, format_instructions)"),
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
        const code = extractPython(completion.text);
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
