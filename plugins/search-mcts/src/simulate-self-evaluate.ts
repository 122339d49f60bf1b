/**
 * simulate/self-evaluate: RAP's reward (Hao et al. 2023) for code generation. Two signals:
 *   - self-evaluation: the node's agent rates how useful the node's new step is, 0..10
 *     ("rap-self-eval" template, variables problem, thoughts (the path before the step), step;
 *     "Rating: N" parsed by parseSelfEval: out-of-range numbers are clamped to 0..10, an
 *     unparsable reply gives no rating);
 *   - execution: programs written from the node's thought path and judged on the PUBLIC tests,
 *     exactly simulate/code-from-thoughts (its plugin is built here with the same n / vary /
 *     seed_base / template options, not copied).
 * The search takes PR(S) as the mean of the records' `reward ?? passRate`, so every record
 * carries the blended reward  reward = w * self_eval / 10 + (1 - w) * public pass rate  (w =
 * `self_eval_weight`, default 0.5) next to its true `passRate`, and the rating in `selfEval`.
 * Exceptions, where there is no step to rate or no rating: the root and an "<END>" node are not
 * rated, an unparsable rating is left out: reward = the public pass rate. A program passing every
 * public test has reward 1 (a solution: terminal node and early stop, as in MC-Tree-Of-Agents;
 * RAP's reward for reaching the goal) and a blended reward stays below 1 (UNSOLVED_MAX). The
 * search's best program and the exported pairs are ranked by the true pass rate.
 *
 * How this departs from RAP: RAP's reward is pure LLM (the action's log-likelihood, the
 * self-evaluation's probability of "Yes", answer confidence from self-consistency); BDC's PR is
 * execution-based (public pass rate), so here the self-evaluation is a sampled 0..10 rating (no
 * log-probabilities) mixed with the execution signal; w = 1 is a pure-LLM reward, w = 0 BDC's PR.
 */
import { Schema } from "effect";
import { definePlugin, option } from "@bdc/core";
import { END_MARKER, numberedThoughts, problemText, searchAgents } from "./prompting.ts";
import codeFromThoughts from "./simulate-code-from-thoughts.ts";
import type { ProgramRecord, Simulator } from "./types.ts";

const NUMBER = String.raw`(-?\d+(?:\.\d+)?)`;

/**
 * The rating of a self-evaluation reply, 0..10: "Rating: N" (first), else "N/10", else a reply
 * that is only a number. Out of range: clamped. Nothing of that: undefined.
 */
export function parseSelfEval(text: string): number | undefined {
  const m =
    new RegExp(String.raw`rating[\s:=*]{0,6}${NUMBER}`, "i").exec(text) ??
    new RegExp(String.raw`${NUMBER}\s*/\s*10\b`).exec(text) ??
    new RegExp(String.raw`^[^\w-]{0,4}${NUMBER}\W{0,4}$`).exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isFinite(n) ? Math.min(10, Math.max(0, n)) : undefined;
}

/** Below 1: only a program passing every public test counts as a solution (terminal, early stop). */
export const UNSOLVED_MAX = 0.999;

/**
 * RAP's reward for the search: w * selfEval / 10 + (1 - w) * passRate, at most UNSOLVED_MAX
 * (w = 1 and a rating of 10 would otherwise look solved); passRate alone without a rating; 1 for
 * a program passing every public test.
 */
export function rapReward(passRate: number, selfEval: number | undefined, weight: number): number {
  if (passRate >= 1) return 1;
  if (selfEval === undefined) return passRate;
  return Math.min(UNSOLVED_MAX, weight * (selfEval / 10) + (1 - weight) * passRate);
}

export default definePlugin({
  id: "simulate/self-evaluate",
  version: "0.1.0",
  description: "RAP reward: the agent's 0-10 self-evaluation of the step blended with the public pass rate of programs written from the thoughts",
  config: Schema.Struct({
    self_eval_weight: option(Schema.Number.pipe(Schema.between(0, 1)), 0.5, "w in PR = w * self_eval/10 + (1 - w) * public pass rate (1: pure LLM reward as in RAP; 0: BDC's PR)"),
    template: option(Schema.String, "rap-self-eval", "self-evaluation prompt (variables problem, thoughts, step)"),
    n: option(Schema.Int.pipe(Schema.positive()), 2, "programs per agent (as simulate/code-from-thoughts)"),
    vary: option(Schema.Literal("seed", "message"), "seed", "how samples after the first differ (as simulate/code-from-thoughts)"),
    seed_base: option(Schema.Int, 1, "vary: seed sends seed_base + i for sample i > 0"),
    code_template: option(Schema.String, "code-from-thoughts", "program prompt (variables problem, thoughts, format_instructions)"),
  }),
  requires: {
    agents: { slot: "policy", many: true, description: "the agents that rate steps and write programs (default: every enabled policy)" },
    prompts: { slot: "prompts" },
    reward: { slot: "reward" },
  },
  async make(config, deps, kernel): Promise<Simulator> {
    const code = await codeFromThoughts.make({ n: config.n, vary: config.vary, seed_base: config.seed_base, template: config.code_template }, deps, kernel);
    const selfEvaluate = async (node: Parameters<Simulator["simulate"]>[0], ctx: Parameters<Simulator["simulate"]>[1]): Promise<number | undefined> => {
      if (node.parent === null || node.thought === "" || node.thought === END_MARKER) return undefined;
      const agents = searchAgents(deps.agents, ctx);
      const agent = agents.find((a) => a.name === node.agent) ?? agents[0];
      if (agent === undefined) return undefined;
      const prompt = deps.prompts.render(config.template, {
        problem: problemText(ctx.problem),
        thoughts: numberedThoughts(ctx.thoughtsTo(node).slice(0, -1)),
        step: node.thought,
      });
      const r = await agent.complete([{ role: "user", content: prompt }], { signal: ctx.signal });
      const rating = parseSelfEval(r.text);
      ctx.emit("rap.self_eval", { problem: ctx.problem.id, node: node.id, agent: agent.name, rating: rating ?? null, ...(rating === undefined ? { unparsable: r.text.slice(0, 200) } : {}) });
      return rating;
    };
    return {
      async simulate(node, ctx) {
        const [rating, records] = await Promise.all([selfEvaluate(node, ctx), code.simulate(node, ctx)]);
        if (rating === undefined) return records;
        return records.map(
          (r): ProgramRecord => ({ ...r, reward: rapReward(r.passRate, rating, config.self_eval_weight), selfEval: rating }),
        );
      },
    };
  },
});
