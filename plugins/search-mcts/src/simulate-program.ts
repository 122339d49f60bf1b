/**
 * simulate/program: LATS's evaluation for programming (Zhou et al. 2023). The node's thought IS
 * its program (written by expand/programs): it is judged with reward.evaluate on the PUBLIC tests
 * (no LLM call), and the node's PR is its pass rate. When it fails a public test, the node's
 * agent writes a self-reflection ("reflection" template: problem, code, feedback), kept on the
 * ProgramRecord (`reflection`) for later expansions below it. The root (no program: an empty
 * thought) gets no record (PR 0). LATS's LLM self-evaluation score is not used: the value is the
 * public pass rate only.
 */
import { Schema } from "effect";
import { definePlugin, option } from "@bdc/core";
import { testResults } from "./iterative-repair-step.ts";
import { END_MARKER, problemText, searchAgents } from "./prompting.ts";
import type { ProgramRecord, Simulator } from "./types.ts";

export default definePlugin({
  id: "simulate/program",
  version: "0.1.0",
  description: "LATS evaluation: the node's thought is a program; its public pass rate is PR; a failing program gets a self-reflection from its agent",
  config: Schema.Struct({
    reflect: option(Schema.Boolean, true, "ask the node's agent for a self-reflection on a failing program"),
    template: option(Schema.String, "reflection", "self-reflection prompt (variables problem, code, feedback)"),
    feedback_chars: option(Schema.Int.pipe(Schema.positive()), 4000, "bound of the test results in the reflection prompt"),
  }),
  requires: {
    agents: { slot: "policy", many: true, description: "the agents that reflect (the node's own agent; default: every enabled policy)" },
    prompts: { slot: "prompts" },
    reward: { slot: "reward" },
  },
  make(config, deps): Simulator {
    return {
      async simulate(node, ctx) {
        const code = node.thought;
        if (code.trim() === "" || code === END_MARKER) return [];
        const evaluation = await deps.reward.evaluate(ctx.problem, code, ctx.signal);
        const agentName = node.agent ?? deps.agents[0]?.name ?? "unknown";
        const record: ProgramRecord = { agent: agentName, code, passRate: evaluation.passFraction, verdicts: evaluation.verdicts };
        const passed = evaluation.passFraction >= 1 && evaluation.verdicts.every((v) => v === "passed");
        const agents = searchAgents(deps.agents, ctx);
        const agent = agents.find((a) => a.name === node.agent) ?? agents[0];
        if (passed || !config.reflect || agent === undefined || ctx.problem.publicTests.length === 0) return [record];
        const prompt = deps.prompts.render(config.template, { problem: problemText(ctx.problem), code, feedback: testResults(ctx.problem, evaluation, config.feedback_chars) });
        const r = await agent.complete([{ role: "user", content: prompt }], { signal: ctx.signal });
        const reflection = r.text.trim();
        return [reflection === "" ? record : { ...record, reflection }];
      },
    };
  },
});
