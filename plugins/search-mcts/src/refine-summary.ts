/**
 * refine/summary: the paper's Refine (eq. 7-8). An ill node made by agent pi_i is diagnosed by a
 * DIFFERENT agent pi_j (deterministically: the next agent after pi_i in the `agents` list,
 * wrapping around) with the "refine-summary" template: the thoughts, the node's best program and
 * its execution feedback (per-test verdicts on the public tests + reward.feedback's block trace
 * on the first failing public test, bounded by feedback_chars). The ORIGINAL agent pi_i then
 * regenerates the thought with "regenerate-thought" (thoughts before the node, the bad thought,
 * the summary). Limits: at most max_total refinements per search (RethinkMCTS "rethink": 2) and
 * max_per_node per node position. With fewer than two agents (or the node's agent unknown) there
 * is no different agent: nothing is refined.
 *
 * `summarizer: same` (not the paper's rule): the node's own agent writes the summary too, for
 * single-agent searches such as RethinkMCTS (Li et al. 2024), whose "rethink" reflects on the
 * failed verification with the one model it has; then one agent suffices.
 */
import { Schema } from "effect";
import { definePlugin, option } from "@bdc/core";
import { numberedThoughts, parseThoughts, problemText, searchAgents } from "./prompting.ts";
import type { ProgramRecord, Refiner } from "./types.ts";

export function bestProgram(programs: ReadonlyArray<ProgramRecord>): ProgramRecord | undefined {
  let best: ProgramRecord | undefined;
  for (const p of programs) if (best === undefined || p.passRate > best.passRate) best = p;
  return best;
}

export default definePlugin({
  id: "refine/summary",
  version: "0.1.0",
  description: "Refine (paper eq. 7-8): a different agent (summarizer: same = its own agent) summarises the ill node, the original agent regenerates it in place",
  config: Schema.Struct({
    max_total: option(Schema.Int.pipe(Schema.nonNegative()), 2, "refinements per search (RethinkMCTS rethink: 2)"),
    summarizer: option(Schema.Literal("other", "same"), "other", "who diagnoses the ill node: other = the next agent (BDC), same = the node's own agent (RethinkMCTS rethink)"),
    max_per_node: option(Schema.Int.pipe(Schema.nonNegative()), 1, "refinements per node"),
    feedback_chars: option(Schema.Int.pipe(Schema.positive()), 4000, "bound of the execution feedback in the summary prompt"),
    summary_template: option(Schema.String, "refine-summary", "template of the diagnosis (problem, thoughts, code, feedback)"),
    regenerate_template: option(Schema.String, "regenerate-thought", "template of the replacement (problem, thoughts, bad_thought, summary)"),
  }),
  requires: {
    agents: { slot: "policy", many: true, description: "the agents (the summariser is the one after the node's agent)" },
    prompts: { slot: "prompts" },
    reward: { slot: "reward" },
  },
  make(config, deps): Refiner {
    return {
      canRefine: (node, refinedSoFar) => refinedSoFar < config.max_total && node.refinements < config.max_per_node,
      async refine(node, parent, ctx) {
        const agents = searchAgents(deps.agents, ctx);
        const i = agents.findIndex((a) => a.name === node.agent);
        const same = config.summarizer === "same";
        if (i < 0 || (!same && agents.length < 2)) {
          ctx.emit("refine.skipped", { node: node.id, reason: i < 0 ? `agent ${node.agent} is not among the refiner's agents` : "refine needs two agents" });
          return undefined;
        }
        const original = agents[i]!;
        const summariser = same ? original : agents[(i + 1) % agents.length]!;
        const program = bestProgram(node.programs);
        const code = program?.code ?? "";
        let feedback = program === undefined ? "(no program)" : program.verdicts.map((v, k) => `public test ${k + 1}: ${v}`).join("\n") || "(no public tests)";
        const failing = program?.verdicts.findIndex((v) => v !== "passed") ?? -1;
        const test = failing >= 0 ? ctx.problem.publicTests[failing] : undefined;
        if (test !== undefined) {
          const trace = await deps.reward.feedback(ctx.problem, code, test, config.feedback_chars);
          feedback += `\n\nExecution trace on public test ${failing + 1}:\n${trace.text}`;
        }
        if (feedback.length > config.feedback_chars) feedback = `${feedback.slice(0, config.feedback_chars)}\n... (truncated)`;
        const thoughtsBefore = ctx.thoughtsTo(parent);
        const summaryPrompt = deps.prompts.render(config.summary_template, {
          problem: problemText(ctx.problem),
          thoughts: numberedThoughts([...thoughtsBefore, node.thought]),
          code: code.trimEnd(),
          feedback,
        });
        const summary = (await summariser.complete([{ role: "user", content: summaryPrompt }], { signal: ctx.signal })).text.trim();
        const regeneratePrompt = deps.prompts.render(config.regenerate_template, {
          problem: problemText(ctx.problem),
          thoughts: numberedThoughts(thoughtsBefore),
          bad_thought: node.thought,
          summary,
        });
        const reply = (await original.complete([{ role: "user", content: regeneratePrompt }], { signal: ctx.signal })).text;
        const thought = parseThoughts(reply)[0]?.thought ?? reply.trim();
        if (thought === "") return undefined;
        return { thought, summary, summarizedBy: summariser.name };
      },
    };
  },
});
