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
import * as fs from "node:fs";
import * as path from "node:path";
import { writeTreeReport } from "./report/tree-html.ts";
import { Schema } from "effect";
import { BdcError, definePlugin, option, optional, type StepImpl } from "@bdc/core";
import type { PublicProblem } from "@bdc/reward-python";
import { runSearch, type ChatPair, type StopReason } from "./search.ts";

export interface TreeSearchOutput {
  readonly code: string;
  readonly public_pass_rate: number;
  readonly agent: string | null;
  readonly node: string | null;
  readonly rollouts: number;
  readonly nodes: number;
  readonly llm_calls: number;
  readonly tokens: number;
  readonly stopped_by: StopReason;
  readonly tree: string;
  readonly pairs: { readonly p2t: ReadonlyArray<ChatPair>; readonly t2s: ReadonlyArray<ChatPair> };
}

/** The public part of a problem item, copied field by field (nothing else travels into the search). */
export function publicProblem(data: unknown, itemId: string): PublicProblem {
  const d = data as Partial<PublicProblem> | null;
  if (d === null || typeof d !== "object" || typeof d.statement !== "string" || !Array.isArray(d.publicTests)) {
    throw new BdcError({ code: "BDC_ITEM_FAILED", message: `item "${itemId}" is not a problem (expected a PublicProblem: statement, publicTests, ...)`, hint: "run the search for_each over a problem dataset (dataset/apps, dataset/codecontests, ...)" });
  }
  return {
    id: typeof d.id === "string" ? d.id : itemId,
    source: d.source ?? "unknown",
    difficulty: d.difficulty ?? "",
    statement: d.statement,
    ...(d.starterCode === undefined ? {} : { starterCode: d.starterCode }),
    ...(d.fnName === undefined ? {} : { fnName: d.fnName }),
    style: d.style ?? "stdio",
    publicTests: d.publicTests.map((t) => ({ ...t })),
    ...(d.timeLimitMs === undefined ? {} : { timeLimitMs: d.timeLimitMs }),
    ...(d.memoryLimitMb === undefined ? {} : { memoryLimitMb: d.memoryLimitMb }),
    split: d.split ?? "",
  };
}

export const safeFileName = (id: string): string => id.replace(/[^A-Za-z0-9._-]/g, "_");

export default definePlugin({
  id: "step/tree-search",
  version: "0.1.0",
  description: "MC-Tree-Of-Agents (paper 4.1): select, expand by every agent, simulate on public tests, prune/refine ill children, back up; best program + D_p2t/D_t2s pairs",
  config: Schema.Struct({
    rollouts: option(Schema.Int.pipe(Schema.nonNegative()), 16, "rollouts (RethinkMCTS: 16)"),
    max_depth: option(Schema.Int.pipe(Schema.positive()), 6, "thoughts on a path at most (nodes at this depth are terminal)"),
    early_stop: option(Schema.Boolean, true, "stop when a program passes every public test"),
    max_llm_calls: optional(Schema.Int.pipe(Schema.positive()), "LLM calls per search (cache hits count); checked between operator calls"),
    max_tokens: optional(Schema.Int.pipe(Schema.positive()), "input + output tokens per search (cache hits count their recorded tokens)"),
    max_seconds: optional(Schema.Number.pipe(Schema.positive()), "wall-clock seconds per search"),
    export_min_pass_rate: option(Schema.Number.pipe(Schema.between(0, 1)), 1, "public pass rate a program needs for its path to become training pairs"),
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
        const tree = `trees/${safeFileName(problem.id)}.json`;
        const file = path.join(ctx.dir, tree);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(result.toJSON({ config }), null, 1)}\n`);
        fs.renameSync(`${file}.tmp`, file);
        // The page beside it (trees/<id>.html): the run report links both.
        writeTreeReport(file);
        if (result.stats.stopped_by === "aborted") throw ctx.signal.reason ?? new Error("aborted");
        return {
          code: result.best.code,
          public_pass_rate: result.best.passRate,
          agent: result.best.agent,
          node: result.best.node,
          rollouts: result.stats.rollouts,
          nodes: result.stats.nodes,
          llm_calls: result.stats.llm_calls,
          tokens: result.stats.tokens,
          stopped_by: result.stats.stopped_by,
          tree,
          pairs: result.pairs,
        };
      },
      summarize(results) {
        const outs = results.flatMap((r) => (r.output === undefined ? [] : [r.output]));
        const stops: Record<string, number> = {};
        for (const o of outs) stops[o.stopped_by] = (stops[o.stopped_by] ?? 0) + 1;
        const sum = (f: (o: TreeSearchOutput) => number) => outs.reduce((a, o) => a + f(o), 0);
        return {
          problems: outs.length,
          failed: results.length - outs.length,
          mean_public_pass_rate: outs.length === 0 ? 0 : sum((o) => o.public_pass_rate) / outs.length,
          solved_public: outs.filter((o) => o.public_pass_rate >= 1).length,
          nodes: sum((o) => o.nodes),
          llm_calls: sum((o) => o.llm_calls),
          tokens: sum((o) => o.tokens),
          pairs_p2t: sum((o) => o.pairs.p2t.length),
          pairs_t2s: sum((o) => o.pairs.t2s.length),
          stopped_by: stops,
        };
      },
    };
  },
});
