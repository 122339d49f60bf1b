/**
 * What every search step (step/tree-search, step/bfs-search) does with a finished search: the
 * tree as JSON and as an HTML page under `trees/`, the output row (best program, spend, stop
 * reason, training pairs) and the step's summary.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Schema } from "effect";
import { option, optional, type StepContext, type StepResult } from "@bdc/core";
import { writeTreeReport } from "./report/tree-html.ts";
import type { ChatPair } from "./search.ts";

export const PAIR_MODES = ["best-path", "all-nodes"] as const;
export type PairsMode = (typeof PAIR_MODES)[number];

/** Config keys every search step has: early stop, budgets, the quality bar of exported pairs. */
export const searchLimitFields = {
  early_stop: option(Schema.Boolean, true, "stop when a program passes every public test"),
  max_llm_calls: optional(Schema.Int.pipe(Schema.positive()), "LLM calls per search (cache hits count); checked between operator calls"),
  max_tokens: optional(Schema.Int.pipe(Schema.positive()), "input + output tokens per search (cache hits count their recorded tokens)"),
  max_seconds: optional(Schema.Number.pipe(Schema.positive()), "wall-clock seconds per search"),
  export_min_pass_rate: option(Schema.Number.pipe(Schema.between(0, 1)), 1, "public pass rate a program needs for its path to become training pairs (0: every searched problem yields pairs)"),
  pairs: option(Schema.Literal(...PAIR_MODES), "all-nodes", "training pairs: best-path (the authors' one problem->clues and one clues->program pair per problem, from the best-valued node) or all-nodes (every node whose program reaches export_min_pass_rate)"),
} as const;

export interface SearchLimits {
  readonly early_stop: boolean;
  readonly max_llm_calls?: number | undefined;
  readonly max_tokens?: number | undefined;
  readonly max_seconds?: number | undefined;
  readonly export_min_pass_rate: number;
  readonly pairs: PairsMode;
}

/** Which of the limits a search has reached, if any (checked between operator calls). */
export function limitReached(
  limits: SearchLimits,
  spent: { readonly calls: number; readonly input: number; readonly output: number },
  seconds: number,
  signal: AbortSignal,
): "aborted" | "max_llm_calls" | "max_tokens" | "max_seconds" | undefined {
  if (signal.aborted) return "aborted";
  if (limits.max_llm_calls !== undefined && spent.calls >= limits.max_llm_calls) return "max_llm_calls";
  if (limits.max_tokens !== undefined && spent.input + spent.output >= limits.max_tokens) return "max_tokens";
  if (limits.max_seconds !== undefined && seconds >= limits.max_seconds) return "max_seconds";
  return undefined;
}

export interface SearchOutput<Stop extends string = string> {
  readonly code: string;
  readonly public_pass_rate: number;
  readonly agent: string | null;
  readonly node: string | null;
  readonly nodes: number;
  readonly llm_calls: number;
  readonly tokens: number;
  readonly stopped_by: Stop;
  /** The tree's JSON, relative to the step directory (the HTML page is beside it). */
  readonly tree: string;
  /** The tree's HTML page, relative to the run directory (what the run's report links). */
  readonly tree_page: string;
  readonly pairs: { readonly p2t: ReadonlyArray<ChatPair>; readonly t2s: ReadonlyArray<ChatPair> };
}

interface FinishedSearch<Stop extends string> {
  readonly best: { readonly code: string; readonly passRate: number; readonly agent: string | null; readonly node: string | null };
  readonly stats: { readonly nodes: number; readonly llm_calls: number; readonly tokens: number; readonly stopped_by: Stop | "aborted" };
  readonly pairs: SearchOutput["pairs"];
  toJSON(extra?: Record<string, unknown>): Record<string, unknown>;
}

export const safeFileName = (id: string): string => id.replace(/[^A-Za-z0-9._-]/g, "_");

/**
 * Writes `trees/<id>.json` (atomically) and `trees/<id>.html`, then the output row. A search
 * stopped by the run's abort signal keeps its partial tree and fails the item, so that
 * `--resume` searches the problem again.
 */
export function finishSearch<Stop extends string>(ctx: StepContext, problemId: string, result: FinishedSearch<Stop>, config: unknown): SearchOutput<Stop> {
  const tree = `trees/${safeFileName(problemId)}.json`;
  const file = path.join(ctx.dir, tree);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(result.toJSON({ config }), null, 1)}\n`);
  fs.renameSync(`${file}.tmp`, file);
  writeTreeReport(file);
  if (result.stats.stopped_by === "aborted") throw ctx.signal.reason ?? new Error("aborted");
  return {
    code: result.best.code,
    public_pass_rate: result.best.passRate,
    agent: result.best.agent,
    node: result.best.node,
    nodes: result.stats.nodes,
    llm_calls: result.stats.llm_calls,
    tokens: result.stats.tokens,
    stopped_by: result.stats.stopped_by as Stop,
    tree,
    tree_page: path.relative(path.dirname(path.dirname(ctx.dir)), file.replace(/\.json$/, ".html")),
    pairs: result.pairs,
  };
}

export function summarizeSearches(results: ReadonlyArray<StepResult<SearchOutput>>): Record<string, unknown> {
  const outs = results.flatMap((r) => (r.output === undefined ? [] : [r.output]));
  const stops: Record<string, number> = {};
  for (const o of outs) stops[o.stopped_by] = (stops[o.stopped_by] ?? 0) + 1;
  const sum = (f: (o: SearchOutput) => number) => outs.reduce((a, o) => a + f(o), 0);
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
}
