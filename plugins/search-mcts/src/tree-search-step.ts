/**
 * step/tree-search: MC-Tree-Of-Agents (paper section 4.1) once per problem. `for_each` over a
 * problem dataset: item.data is a PublicProblem. Only its public fields are copied into the
 * search (whatever else an item carries never reaches an operator); the step holds no dataset
 * handle, so hidden tests are unreachable from here.
 *
 * Output per problem: the best program on the public tests (ties: the earliest found), the
 * search's size and spend, why it stopped, the tree file (`trees/<id>.json` in the step's
 * directory) and the training pairs (D_p2t, D_t2s; Hugging Face chat-messages rows) of the
 * paths whose programs reached export_min_pass_rate. A search stopped by the run's abort
 * signal writes its partial tree and fails the item (so `--resume` redoes it).
 */
import { Schema } from "effect";
import { BdcError, definePlugin, option, type StepImpl } from "@bdc/core";
import { publicProblem } from "./problem-item.ts";
import { runSearch, type StopReason } from "./search.ts";
import { finishSearch, searchLimitFields, summarizeSearches, type SearchOutput } from "./search-output.ts";

export interface TreeSearchOutput extends SearchOutput<StopReason> {
  readonly rollouts: number;
}

export default definePlugin({
  id: "step/tree-search",
  version: "0.1.0",
  description: "MC-Tree-Of-Agents (paper 4.1): select, expand by every agent, simulate on public tests, prune/refine ill children, back up; best program + D_p2t/D_t2s pairs",
  config: Schema.Struct({
    rollouts: option(Schema.Int.pipe(Schema.nonNegative()), 16, "rollouts (RethinkMCTS: 16)"),
    max_depth: option(Schema.Int.pipe(Schema.positive()), 6, "thoughts on a path at most (nodes at this depth are terminal)"),
    simulate_root: option(Schema.Boolean, true, "simulate the root first (programs from the problem alone; the search schedule); false: expand the root first, as the authors' data collection does, so every problem gets thoughts"),
    min_rollouts: option(Schema.Int.pipe(Schema.nonNegative()), 0, "early stop only after this many rollouts (data collection: thoughts before the search may stop)"),
    ...searchLimitFields,
  }),
  requires: {
    agents: { slot: "policy", many: true, description: "the agents (default: every enabled policy)" },
    select: { slot: "select" },
    expand: { slot: "expand" },
    simulate: { slot: "simulate" },
    backup: { slot: "backup" },
    prune: { slot: "prune", optional: true, description: "without: ill children are kept" },
    refine: { slot: "refine", optional: true, description: "without: ill children are not refined" },
    reward: { slot: "reward" },
    prompts: { slot: "prompts" },
  },
  make(config, deps): StepImpl<unknown, TreeSearchOutput> {
    if (deps.agents.length === 0) throw new BdcError({ code: "BDC_CONFIG_VALUE", message: "step/tree-search needs at least one agent (policy instance)" });
    return {
      async run(item, ctx) {
        const problem = publicProblem(item.data, item.id);
        const result = await runSearch({
          problem,
          agents: deps.agents,
          prompts: deps.prompts,
          reward: deps.reward,
          operators: { select: deps.select, expand: deps.expand, simulate: deps.simulate, backup: deps.backup, prune: deps.prune, refine: deps.refine },
          config,
          signal: ctx.signal,
          emit: (event, data) => ctx.emit(event, data),
        });
        return { ...finishSearch(ctx, problem.id, result, config), rollouts: result.stats.rollouts };
      },
      summarize: (results) => summarizeSearches(results),
    };
  },
});
