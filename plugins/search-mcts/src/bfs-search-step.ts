/**
 * step/bfs-search: the Tree-of-Thoughts baseline (Yao et al. 2023, "Tree of Thoughts", NeurIPS;
 * Algorithm 1, ToT-BFS) over the SAME thought operators as MC-Tree-Of-Agents, once per problem:
 *
 *   simulate the root (programs from the problem alone);
 *   per depth d = 1 .. max_depth, with the kept states S_{d-1} (initially the root):
 *     generate  every kept state is expanded with the expand operator (every agent, `width`
 *               thoughts each): the candidates S'_d, in state order then proposal order;
 *     evaluate  every candidate is simulated with the simulate operator; its PR (mean public
 *               pass rate of its programs) is the state's VALUE;
 *     keep      the `beam` candidates of highest value (ties: the earlier candidate) among those
 *               that can still be expanded (not final, not at max_depth, no perfect program).
 *   stop on: max_depth reached, early stop (a program passes every public test), budgets (LLM
 *   calls, tokens, seconds: checked before each expansion and each simulation, so one operator
 *   call may overshoot), no state left to expand, or the abort signal.
 *   Answer: the program with the best public pass rate over all states (ties: the earliest).
 *
 * What differs from ToT: ToT's state evaluator V is an LLM ("value" or "vote" prompt); here, as
 * in the code-generation peers (RethinkMCTS, LATS), a state's value is measured by EXECUTION:
 * programs written from its thoughts run on the public tests (the simulate operator). Beam
 * b = 5, ToT's breadth for Game of 24 (its BFS task with a numeric state value; ToT has no code
 * task); max_depth 3, that task's number of thought steps. Hidden tests never reach the search.
 *
 * The tree is the MC-Tree-Of-Agents data model (TreeNode; visits = 1, value = returns[0] = PR
 * for a simulated state) and is written like step/tree-search's (trees/<id>.json + .html, plus
 * `beams`: the kept ids per depth; a dropped candidate is simulated, open and not expanded).
 * The output has step/tree-search's shape, so step/score and step/export-pairs read it.
 */
import { Schema } from "effect";
import { BdcError, definePlugin, option, type StepImpl } from "@bdc/core";
import type { Policy, PromptLibrary } from "@bdc/policy";
import type { PublicProblem, Reward } from "@bdc/reward-python";
import { END_MARKER } from "./prompting.ts";
import { countingPolicy, newNode, trainingPairs, treeJSON, type BestProgram, type ChatPair } from "./search.ts";
import { publicProblem } from "./problem-item.ts";
import { finishSearch, limitReached, searchLimitFields, summarizeSearches, type SearchLimits, type SearchOutput } from "./search-output.ts";
import type { Expander, SearchContext, Simulator, TreeNode } from "./types.ts";

export interface BfsConfig extends SearchLimits {
  readonly beam: number;
  readonly max_depth: number;
}

export type BfsStopReason = "max_depth" | "early_stop" | "max_llm_calls" | "max_tokens" | "max_seconds" | "exhausted" | "aborted";

export interface BfsStats {
  /** Deepest depth whose candidates were generated. */
  depth: number;
  nodes: number;
  expansions: number;
  /** Candidates that could be expanded but fell outside the beam. */
  dropped: number;
  llm_calls: number;
  cached_calls: number;
  input_tokens: number;
  output_tokens: number;
  tokens: number;
  programs: number;
  stopped_by: BfsStopReason;
  seconds: number;
}

export interface BfsInput {
  readonly problem: PublicProblem;
  readonly agents: ReadonlyArray<Policy>;
  readonly prompts: PromptLibrary;
  readonly reward: Reward;
  readonly operators: { readonly expand: Expander; readonly simulate: Simulator };
  readonly config: BfsConfig;
  readonly signal?: AbortSignal;
  readonly emit?: (event: string, data?: Record<string, unknown>) => void;
  /** Clock (ms) for max_seconds and stats.seconds; default performance.now. */
  readonly now?: () => number;
}

export interface BfsResult {
  readonly best: BestProgram;
  readonly root: TreeNode;
  readonly nodes: ReadonlyArray<TreeNode>;
  readonly stats: BfsStats;
  /** The kept state ids per depth: beams[0] = ["0"], beams[d] = the states kept at depth d. */
  readonly beams: ReadonlyArray<ReadonlyArray<string>>;
  readonly pairs: { readonly p2t: ChatPair[]; readonly t2s: ChatPair[] };
  toJSON(extra?: Record<string, unknown>): Record<string, unknown>;
}

const mean = (xs: ReadonlyArray<number>): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

export async function runBfs(input: BfsInput): Promise<BfsResult> {
  const { problem, config, operators: op } = input;
  const now = input.now ?? (() => performance.now());
  const signal = input.signal ?? new AbortController().signal;
  const emit = input.emit ?? (() => {});
  const t0 = now();
  const counter = { calls: 0, cached: 0, input: 0, output: 0 };
  const agents = input.agents.map((a) => countingPolicy(a, counter));
  const byId = new Map<string, TreeNode>();
  const order: TreeNode[] = [];
  const final = new Set<string>();
  const expanded = new Set<string>();
  const beams: string[][] = [];
  let best: BestProgram = { code: "", passRate: -1, agent: null, node: null };
  let programs = 0;
  let dropped = 0;
  let depth = 0;

  const add = (node: TreeNode): TreeNode => {
    byId.set(node.id, node);
    order.push(node);
    return node;
  };
  const thoughtsTo = (node: TreeNode): string[] => {
    const path: string[] = [];
    for (let n: TreeNode | undefined = node; n !== undefined && n.parent !== null; n = byId.get(n.parent)) path.push(n.thought);
    return path.reverse().filter((t) => t !== "" && t !== END_MARKER);
  };
  const ctx: SearchContext = { problem, agents, prompts: input.prompts, reward: input.reward, signal, thoughtsTo, emit };

  const stopReason = (): BfsStopReason | undefined => limitReached(config, counter, (now() - t0) / 1000, signal);
  const solved = (): boolean => config.early_stop && best.passRate >= 1;

  const simulate = async (node: TreeNode): Promise<void> => {
    const records = await op.simulate.simulate(node, ctx);
    node.programs.push(...records);
    programs += records.length;
    node.pr = mean(records.map((r) => r.passRate));
    node.visits = 1;
    node.returns.push(node.pr);
    node.value = node.pr;
    node.terminal = final.has(node.id) || node.depth >= config.max_depth || records.some((r) => r.passRate >= 1);
    for (const r of records) if (r.passRate > best.passRate) best = { code: r.code, passRate: r.passRate, agent: r.agent, node: node.id };
    emit("search.simulated", { problem: problem.id, node: node.id, pr: node.pr, programs: records.length });
  };

  const root = add(newNode("0", null, "", null, 1));
  let stopped: BfsStopReason | undefined = stopReason();
  let frontier: TreeNode[] = [];
  if (stopped === undefined) {
    await simulate(root);
    beams.push([root.id]);
    frontier = [root];
    if (solved()) stopped = "early_stop";
    else if (root.terminal) stopped = root.depth >= config.max_depth ? "max_depth" : "exhausted";
  }

  while (stopped === undefined) {
    if (frontier.length === 0) {
      stopped = "exhausted";
      break;
    }
    depth++;
    // Generate: every kept state is expanded.
    const candidates: TreeNode[] = [];
    for (const state of frontier) {
      stopped = stopReason();
      if (stopped !== undefined) break;
      const proposals = await op.expand.expand(state, ctx);
      expanded.add(state.id);
      const priors = proposals.map((p) => p.prior);
      const total = priors.every((p) => p !== undefined && p >= 0) ? priors.reduce<number>((a, b) => a + (b ?? 0), 0) : 0;
      for (const p of proposals) {
        const child = add(newNode(`${state.id}.${state.children.length}`, state, p.thought, p.agent, total > 0 ? (p.prior ?? 0) / total : 1 / proposals.length));
        state.children.push(child.id);
        if (p.final) final.add(child.id);
        candidates.push(child);
      }
      emit("search.expanded", { problem: problem.id, node: state.id, children: proposals.length });
    }
    if (stopped !== undefined) break;
    // Evaluate: every candidate is simulated; its PR is its value.
    for (const child of candidates) {
      stopped = stopReason();
      if (stopped !== undefined) break;
      await simulate(child);
      if (solved()) {
        stopped = "early_stop";
        break;
      }
    }
    if (stopped !== undefined) break;
    // Keep: the top `beam` expandable candidates (stable sort: ties keep generation order).
    const expandable = candidates.filter((c) => c.pr !== null && !c.terminal);
    const kept = [...expandable].sort((a, b) => b.pr! - a.pr!).slice(0, config.beam);
    dropped += expandable.length - kept.length;
    beams.push(kept.map((n) => n.id));
    emit("search.beam", { problem: problem.id, depth, kept: kept.map((n) => n.id), candidates: candidates.length });
    frontier = kept;
    if (depth >= config.max_depth) stopped = "max_depth";
  }

  const stats: BfsStats = {
    depth,
    nodes: order.length,
    expansions: expanded.size,
    dropped,
    llm_calls: counter.calls,
    cached_calls: counter.cached,
    input_tokens: counter.input,
    output_tokens: counter.output,
    tokens: counter.input + counter.output,
    programs,
    stopped_by: stopped,
    seconds: (now() - t0) / 1000,
  };
  if (best.passRate < 0) best = { code: "", passRate: 0, agent: null, node: null };
  const finalBest = best;
  const pairs = trainingPairs(problem, order, thoughtsTo, { mode: config.pairs, minPassRate: config.export_min_pass_rate, prompts: input.prompts });
  return {
    best: finalBest,
    root,
    nodes: order,
    stats,
    beams,
    pairs,
    toJSON: (extra = {}) => treeJSON({ problem, agents: input.agents, extra: { search: "bfs", ...extra, beams }, stats, best: finalBest, nodes: order, final, expanded }),
  };
}

export interface BfsSearchOutput extends SearchOutput<BfsStopReason> {
  readonly depth: number;
}

export default definePlugin({
  id: "step/bfs-search",
  version: "0.1.0",
  description: "Tree-of-Thoughts BFS (Yao et al. 2023): expand every kept state, value = public pass rate of its simulated programs, keep the best `beam` per depth; best program + D_p2t/D_t2s pairs",
  config: Schema.Struct({
    beam: option(Schema.Int.pipe(Schema.positive()), 5, "states kept per depth (ToT's breadth b; Game of 24: 5)"),
    max_depth: option(Schema.Int.pipe(Schema.positive()), 3, "thought steps at most (ToT Game of 24: 3)"),
    ...searchLimitFields,
  }),
  requires: {
    agents: { slot: "policy", many: true, description: "the agents (default: every enabled policy)" },
    expand: { slot: "expand" },
    simulate: { slot: "simulate" },
    reward: { slot: "reward" },
    prompts: { slot: "prompts" },
  },
  make(config, deps): StepImpl<unknown, BfsSearchOutput> {
    if (deps.agents.length === 0) throw new BdcError({ code: "BDC_CONFIG_VALUE", message: "step/bfs-search needs at least one agent (policy instance)" });
    return {
      async run(item, ctx) {
        const problem = publicProblem(item.data, item.id);
        const result = await runBfs({
          problem,
          agents: deps.agents,
          prompts: deps.prompts,
          reward: deps.reward,
          operators: { expand: deps.expand, simulate: deps.simulate },
          config,
          signal: ctx.signal,
          emit: (event, data) => ctx.emit(event, data),
        });
        return { ...finishSearch(ctx, problem.id, result, config), depth: result.stats.depth };
      },
      summarize: (results) => summarizeSearches(results),
    };
  },
});
