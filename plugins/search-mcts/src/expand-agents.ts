/**
 * expand/agents: the paper's Expand (eq. 4): every agent proposes `width` next thoughts for the
 * selected node, all agents asked concurrently, with the "expand-thought" template (variables
 * problem, thoughts, width). Lines "Thought: ..." are parsed (at most `width` per agent);
 * "<END>" marks a final thought (the reasoning is complete). Priors: none (the search makes them
 * uniform). Proposals come back in agent order, then reply order: deterministic.
 */
import { Schema } from "effect";
import { definePlugin, option } from "@bdc/core";
import { numberedThoughts, parseThoughts, problemText, searchAgents } from "./prompting.ts";
import type { Expander, ProposedThought } from "./types.ts";

export default definePlugin({
  id: "expand/agents",
  version: "0.1.0",
  description: "Expand (paper eq. 4): every agent proposes `width` next thoughts (\"Thought: ...\", <END> = final)",
  config: Schema.Struct({
    width: option(Schema.Int.pipe(Schema.positive()), 3, "thoughts asked of each agent (RethinkMCTS: 3)"),
    template: option(Schema.String, "expand-thought", "prompt template (variables problem, thoughts, width)"),
  }),
  requires: {
    agents: { slot: "policy", many: true, description: "the agents that propose thoughts (default: every enabled policy)" },
    prompts: { slot: "prompts" },
  },
  make(config, deps): Expander {
    return {
      async expand(node, ctx) {
        const prompt = deps.prompts.render(config.template, { problem: problemText(ctx.problem), thoughts: numberedThoughts(ctx.thoughtsTo(node)), width: config.width });
        const replies = await Promise.all(
          searchAgents(deps.agents, ctx).map(async (agent) => {
            const r = await agent.complete([{ role: "user", content: prompt }], { signal: ctx.signal });
            return parseThoughts(r.text)
              .slice(0, config.width)
              .map((t): ProposedThought => ({ thought: t.thought, agent: agent.name, ...(t.final ? { final: true } : {}) }));
          }),
        );
        return replies.flat();
      },
    };
  },
});
