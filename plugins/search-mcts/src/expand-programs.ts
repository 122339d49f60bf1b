/**
 * expand/programs: LATS's expansion for programming (Zhou et al. 2023, "Language Agent Tree
 * Search"): a node holds a PROGRAM, not a reasoning step. Its `thought` field is the program's
 * text (what simulate/program judges), so `ctx.thoughtsTo(node)` is the list of programs on the
 * path. Every agent writes `width` new programs ("lats-expand" template; variables problem,
 * format_instructions, previous, feedback, reflections) from:
 *   previous     the parent's program (at the root, which holds none: "(none: this is the first
 *                attempt)", i.e. programs from the problem alone, like zero-shot);
 *   feedback     the parent program's verdicts on the PUBLIC tests (each failing test with its
 *                input and expected result; the error text is not kept on a ProgramRecord);
 *   reflections  the self-reflections (ProgramRecord.reflection, written by simulate/program) of
 *                every failed program on the path root..parent, oldest first (LATS's
 *                accumulated reflections).
 * The path is found through the nodes this expander has expanded in the same search (every
 * ancestor of a leaf was expanded before it), kept per search context.
 * Sample i > 0 of one agent is varied deterministically so that greedy agents and the response
 * cache do not give `width` identical children: `vary: message` (default) appends "(Attempt i+1
 * of width ...)", `vary: seed` sends sampling.seed = seed_base + i.
 */
import { Schema } from "effect";
import { definePlugin, option } from "@bdc/core";
import type { ChatMessage, Sampling } from "@bdc/policy";
import type { PublicProblem } from "@bdc/reward-python";
import { testResults } from "./iterative-repair-step.ts";
import { END_MARKER, extractPython, formatInstructions, problemText, searchAgents } from "./prompting.ts";
import type { Expander, ProgramRecord, ProposedThought, SearchContext, TreeNode } from "./types.ts";

/** The test results of a recorded program (verdicts only: records keep no error text). */
export function recordResults(problem: PublicProblem, record: ProgramRecord, maxChars: number): string {
  return testResults(problem, { passFraction: record.passRate, verdicts: record.verdicts, tests: record.verdicts.map((verdict) => ({ verdict, timeMs: 0 })) }, maxChars);
}

const isProgram = (thought: string) => thought !== "" && thought !== END_MARKER;

export default definePlugin({
  id: "expand/programs",
  version: "0.1.0",
  description: "LATS expansion: every agent writes `width` new programs from the parent's program, its public-test results and the path's self-reflections (node thought = program)",
  config: Schema.Struct({
    width: option(Schema.Int.pipe(Schema.positive()), 5, "programs asked of each agent per expansion (LATS programming code: n = 5)"),
    vary: option(Schema.Literal("seed", "message"), "message", "how samples after the first differ: a line in the user message, or sampling.seed"),
    seed_base: option(Schema.Int, 1, "vary: seed sends seed_base + i for sample i > 0"),
    template: option(Schema.String, "lats-expand", "prompt template (variables problem, format_instructions, previous, feedback, reflections)"),
    feedback_chars: option(Schema.Int.pipe(Schema.positive()), 4000, "bound of the test results in a prompt"),
  }),
  requires: {
    agents: { slot: "policy", many: true, description: "the agents that write programs (default: every enabled policy)" },
    prompts: { slot: "prompts" },
  },
  make(config, deps): Expander {
    // Per search: the nodes expanded so far, by id (the ancestors of any later leaf).
    const seen = new WeakMap<SearchContext, Map<string, TreeNode>>();
    const pathOf = (node: TreeNode, ctx: SearchContext): TreeNode[] => {
      let nodes = seen.get(ctx);
      if (nodes === undefined) seen.set(ctx, (nodes = new Map()));
      nodes.set(node.id, node);
      const path: TreeNode[] = [];
      for (let n: TreeNode | undefined = node; n !== undefined; n = n.parent === null ? undefined : nodes.get(n.parent)) path.push(n);
      return path.reverse();
    };
    return {
      async expand(node, ctx) {
        const path = pathOf(node, ctx);
        const record = node.programs[0];
        const hasProgram = isProgram(node.thought);
        const reflections = path.flatMap((n) => n.programs.flatMap((p) => (p.reflection ? [p.reflection] : [])));
        const prompt = deps.prompts.render(config.template, {
          problem: problemText(ctx.problem),
          format_instructions: formatInstructions(ctx.problem),
          previous: hasProgram ? `\`\`\`python\n${node.thought.trimEnd()}\n\`\`\`` : "(none: this is the first attempt)",
          feedback: hasProgram && record !== undefined ? recordResults(ctx.problem, record, config.feedback_chars) : "(none yet)",
          reflections: reflections.length === 0 ? "(none yet)" : reflections.map((r, i) => `${i + 1}. ${r}`).join("\n"),
        });
        const replies = await Promise.all(
          searchAgents(deps.agents, ctx).flatMap((agent) =>
            Array.from({ length: config.width }, async (_, i): Promise<ProposedThought> => {
              const content = i > 0 && config.vary === "message" ? `${prompt}\n\n(Attempt ${i + 1} of ${config.width}: write an independent solution.)` : prompt;
              const messages: ChatMessage[] = [{ role: "user", content }];
              const sampling: Partial<Sampling> | undefined = i > 0 && config.vary === "seed" ? { seed: config.seed_base + i } : undefined;
              const r = await agent.complete(messages, { signal: ctx.signal, ...(sampling ? { sampling } : {}) });
              return { thought: extractPython(r.text), agent: agent.name };
            }),
          ),
        );
        return replies;
      },
    };
  },
});
