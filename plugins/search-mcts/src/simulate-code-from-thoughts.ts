/**
 * simulate/code-from-thoughts: the paper's Simulate (thought-to-solution, eq. 9-10): every
 * agent writes `n` programs from the node's thought path with the "code-from-thoughts"
 * template; each is judged with reward.evaluate(problem, code): the PUBLIC tests only. The
 * search takes PR(S) = the mean pass rate of these programs.
 *
 * Several samples of one greedy agent: an identical request would be answered by the response
 * cache (and, greedy, identically anyway), so sample i > 0 is varied deterministically:
 * `vary: seed` (default) sends sampling.seed = seed_base + i (a distinct cache key; providers
 * that honour seeds may differ), `vary: message` appends "(Attempt i+1 of n ...)" to the user
 * message (a different prompt, so a different greedy answer is likely). Sample 0 is always the
 * plain request. Either way a rerun sends exactly the same requests (cache hits).
 */
import { Schema } from "effect";
import { definePlugin, option } from "@bdc/core";
import type { ChatMessage, Sampling } from "@bdc/policy";
import { extractPython, formatInstructions, numberedThoughts, problemText, searchAgents } from "./prompting.ts";
import type { ProgramRecord, Simulator } from "./types.ts";

export default definePlugin({
  id: "simulate/code-from-thoughts",
  version: "0.1.0",
  description: "Simulate (paper eq. 9-10): every agent writes n programs from the thoughts; each judged on the public tests",
  config: Schema.Struct({
    n: option(Schema.Int.pipe(Schema.positive()), 2, "programs per agent (authors' code: 2)"),
    vary: option(Schema.Literal("seed", "message"), "seed", "how samples after the first differ: sampling.seed, or a line in the user message"),
    seed_base: option(Schema.Int, 1, "vary: seed sends seed_base + i for sample i > 0"),
    template: option(Schema.String, "code-from-thoughts", "prompt template (variables problem, thoughts, format_instructions)"),
  }),
  requires: {
    agents: { slot: "policy", many: true, description: "the agents that write programs (default: every enabled policy)" },
    prompts: { slot: "prompts" },
    reward: { slot: "reward" },
  },
  make(config, deps): Simulator {
    return {
      async simulate(node, ctx) {
        const prompt = deps.prompts.render(config.template, {
          problem: problemText(ctx.problem),
          thoughts: numberedThoughts(ctx.thoughtsTo(node)),
          format_instructions: formatInstructions(ctx.problem),
        });
        const jobs = searchAgents(deps.agents, ctx).flatMap((agent) =>
          Array.from({ length: config.n }, async (_, i): Promise<ProgramRecord> => {
            const content = i > 0 && config.vary === "message" ? `${prompt}\n\n(Attempt ${i + 1} of ${config.n}: write an independent solution.)` : prompt;
            const messages: ChatMessage[] = [{ role: "user", content }];
            const sampling: Partial<Sampling> | undefined = i > 0 && config.vary === "seed" ? { seed: config.seed_base + i } : undefined;
            const r = await agent.complete(messages, { signal: ctx.signal, ...(sampling ? { sampling } : {}) });
            const code = extractPython(r.text);
            const evaluation = await deps.reward.evaluate(ctx.problem, code, ctx.signal);
            return { agent: agent.name, code, passRate: evaluation.passFraction, verdicts: evaluation.verdicts };
          }),
        );
        return Promise.all(jobs);
      },
    };
  },
});
