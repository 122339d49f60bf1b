/**
 * The MC-Tree-Of-Agents loop (paper section 4.1), independent of the kernel: the step plugin
 * (tree-search-step.ts) and the overhead benchmark call `runSearch` with built operators.
 *
 *   simulate the root (programs from the problem alone), back its return up - or, with
 *   simulate_root: false (the authors' data collection), leave it for the first rollout to
 *   expand, so that every problem gets thoughts even when it is solved at once;
 *   per rollout:
 *     select   from the root through open, simulated children (argmax score, ties -> first)
 *              down to a leaf;
 *     expand   the leaf unless it is terminal, at max_depth or already expanded (such a leaf
 *              just backs up its return again: the rollout is spent);
 *     for each new child, in order:
 *       simulate   PR = mean public pass rate of its programs; terminal if final, at max_depth,
 *                  or a program passes every public test;
 *       ill?       pruner.isIll (without a pruner the same rule: child.pr < parent.pr);
 *       refine     an ill child, if a refiner is configured and its limits allow: new thought
 *                  in place (same id), programs and PR replaced, `refined` set;
 *       prune      a child still ill, if a pruner is configured: status pruned, return 0 backed
 *                  up along root..parent (its ancestors);
 *       backup     otherwise backup.rewardOf(child) along root..child.
 *   stop on: rollouts done, early stop (a program passes all public tests, after min_rollouts), budgets (LLM
 *   calls, tokens, seconds: checked before each rollout and before each simulation, so one
 *   operator call may overshoot), the root exhausted, or the abort signal.
 *
 * Accounting: every agent is wrapped in a per-search counter. A call served by the response
 * cache counts as a call AND with its recorded tokens: budgets measure the search's logical
 * consumption, so a rerun from the cache takes exactly the same path (the policy's own usage()
 * still reports what was billed).
 *
 * Hidden tests: the search sees only the PublicProblem it is given (the step copies the public
 * fields of the item); operators get nothing else.
 */
import type { ChatMessage, Completion, Policy, PromptLibrary, Sampling, Usage } from "@bdc/policy";
import type { PublicProblem, Reward } from "@bdc/reward-python";
import { END_MARKER, formatInstructions, problemText } from "./prompting.ts";
import type { Backup, Expander, ProgramRecord, Pruner, Refiner, SearchContext, Selector, Simulator, TreeNode } from "./types.ts";
import { limitReached, type PairsMode, type SearchLimits } from "./search-output.ts";

export interface SearchOperators {
  readonly select: Selector;
  readonly expand: Expander;
  readonly simulate: Simulator;
  readonly backup: Backup;
  readonly prune?: Pruner | undefined;
  readonly refine?: Refiner | undefined;
}

export interface SearchConfig extends SearchLimits {
  readonly rollouts: number;
  readonly max_depth: number;
  /** false: the root is expanded first, never simulated (the authors' collection). Default true. */
  readonly simulate_root?: boolean | undefined;
  /** Early stop only after this many rollouts (default 0). */
  readonly min_rollouts?: number | undefined;
}

export type StopReason = "rollouts" | "early_stop" | "max_llm_calls" | "max_tokens" | "max_seconds" | "exhausted" | "aborted";

export interface SearchStats {
  rollouts: number;
  nodes: number;
  llm_calls: number;
  cached_calls: number;
  input_tokens: number;
  output_tokens: number;
  tokens: number;
  programs: number;
  refinements: number;
  pruned: number;
  stopped_by: StopReason;
  seconds: number;
}

export interface ChatPair {
  readonly messages: ReadonlyArray<ChatMessage>;
  readonly problem_id: string;
  readonly node_id: string;
  readonly agent: string | null;
  readonly public_pass_rate: number;
}

export interface BestProgram {
  readonly code: string;
  readonly passRate: number;
  readonly agent: string | null;
  readonly node: string | null;
}

export interface SearchResult {
  readonly best: BestProgram;
  readonly root: TreeNode;
  readonly nodes: ReadonlyArray<TreeNode>;
  readonly stats: SearchStats;
  readonly pairs: { readonly p2t: ChatPair[]; readonly t2s: ChatPair[] };
  /** Earlier versions of refined nodes (thought, pr, programs), by node id. */
  readonly replaced: ReadonlyMap<string, ReadonlyArray<{ thought: string; pr: number | null; programs: ReadonlyArray<ProgramRecord> }>>;
  /** The tree as JSON (written by the step to trees/<id>.json). */
  toJSON(extra?: Record<string, unknown>): Record<string, unknown>;
}

export interface SearchInput {
  readonly problem: PublicProblem;
  readonly agents: ReadonlyArray<Policy>;
  readonly prompts: PromptLibrary;
  readonly reward: Reward;
  readonly operators: SearchOperators;
  readonly config: SearchConfig;
  readonly signal?: AbortSignal;
  readonly emit?: (event: string, data?: Record<string, unknown>) => void;
  /** Clock (ms) for max_seconds and stats.seconds; default performance.now. */
  readonly now?: () => number;
}

/** A per-search view of an agent that counts its calls and tokens. */
export function countingPolicy(agent: Policy, counter: { calls: number; cached: number; input: number; output: number }): Policy {
  return {
    name: agent.name,
    model: agent.model,
    provider: agent.provider,
    usage: (): Usage => agent.usage(),
    async complete(messages: ReadonlyArray<ChatMessage>, options?: { readonly sampling?: Partial<Sampling>; readonly signal?: AbortSignal }): Promise<Completion> {
      counter.calls++;
      const r = await agent.complete(messages, options);
      if (r.cached) counter.cached++;
      counter.input += r.inputTokens;
      counter.output += r.outputTokens;
      return r;
    },
  };
}

/** A fresh, unsimulated node (id = parent id + "." + child index; "0" for the root). */
export function newNode(id: string, parent: TreeNode | null, thought: string, agent: string | null, prior: number): TreeNode {
  return {
    id,
    parent: parent?.id ?? null,
    depth: parent === null ? 0 : parent.depth + 1,
    thought,
    agent,
    prior,
    children: [],
    visits: 0,
    returns: [],
    value: 0,
    pr: null,
    programs: [],
    terminal: false,
    status: "open",
    refinements: 0,
  };
}

const mean = (xs: ReadonlyArray<number>): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

/** Clues as the authors' D_p2t writes them: a JSON list of "Clue of Step i: <thought>". */
export function cluesOf(thoughts: ReadonlyArray<string>): string {
  return JSON.stringify(thoughts.map((t, i) => `Clue of Step ${i + 1}: ${t}`));
}

/**
 * The two training conversations of a thought path (the authors' structure, templates
 * pair-p2t and pair-t2s): problem -> clues, and problem + clues -> program. The problem is
 * rendered by prompting.ts as in every other prompt.
 */
export function pairMessages(problem: PublicProblem, thoughts: ReadonlyArray<string>, code: string, prompts: PromptLibrary): { p2t: ChatMessage[]; t2s: ChatMessage[] } {
  const text = problemText(problem);
  const clues = cluesOf(thoughts);
  return {
    p2t: [
      { role: "user", content: prompts.render("pair-p2t", { problem: text }) },
      { role: "assistant", content: clues },
    ],
    t2s: [
      { role: "user", content: prompts.render("pair-t2s", { problem: text, clues, format_instructions: formatInstructions(problem) }) },
      { role: "assistant", content: code.trimEnd() },
    ],
  };
}

/**
 * The D_p2t / D_t2s pairs of a finished search, from open non-root nodes with a thought path and
 * programs:
 * - `best-path` (the authors' collection): the best-valued node (ties: higher pass rate, then
 *   the earliest) gives one problem->clues pair and one clues->program pair with its best program
 *   - none when that program's public pass rate is below `minPassRate`;
 * - `all-nodes`: every node with a program at or above `minPassRate` gives one problem->clues
 *   pair and one clues->program pair per distinct such program.
 * Shared by the searches built on TreeNode.
 */
export function trainingPairs(
  problem: PublicProblem,
  order: ReadonlyArray<TreeNode>,
  thoughtsTo: (node: TreeNode) => string[],
  options: { readonly mode: PairsMode; readonly minPassRate: number; readonly prompts: PromptLibrary },
): { p2t: ChatPair[]; t2s: ChatPair[] } {
  const p2t: ChatPair[] = [];
  const t2s: ChatPair[] = [];
  const candidates = order.filter((n) => n.parent !== null && n.status === "open" && n.programs.length > 0 && thoughtsTo(n).length > 0);
  const emit = (node: TreeNode, programs: ReadonlyArray<ProgramRecord>) => {
    const thoughts = thoughtsTo(node);
    const top = Math.max(...programs.map((p) => p.passRate));
    const seen = new Set<string>();
    for (const [i, p] of programs.entries()) {
      const messages = pairMessages(problem, thoughts, p.code, options.prompts);
      if (i === 0) p2t.push({ messages: messages.p2t, problem_id: problem.id, node_id: node.id, agent: node.agent, public_pass_rate: top });
      if (seen.has(p.code)) continue;
      seen.add(p.code);
      t2s.push({ messages: messages.t2s, problem_id: problem.id, node_id: node.id, agent: p.agent, public_pass_rate: p.passRate });
    }
  };
  if (options.mode === "best-path") {
    let best: TreeNode | undefined;
    for (const n of candidates) {
      if (best === undefined || n.value > best.value || (n.value === best.value && (n.pr ?? 0) > (best.pr ?? 0))) best = n;
    }
    if (best !== undefined) {
      const program = best.programs.reduce((a, b) => (b.passRate > a.passRate ? b : a));
      if (program.passRate >= options.minPassRate) emit(best, [program]);
    }
  } else {
    for (const node of candidates) {
      const good = node.programs.filter((p) => p.passRate >= options.minPassRate);
      if (good.length > 0) emit(node, good);
    }
  }
  return { p2t, t2s };
}

/** The tree file's JSON (trees/<id>.json; report/tree-html.ts renders it). */
export function treeJSON(t: {
  readonly problem: PublicProblem;
  readonly agents: ReadonlyArray<Policy>;
  readonly extra: Record<string, unknown>;
  readonly stats: object;
  readonly best: BestProgram;
  readonly nodes: ReadonlyArray<TreeNode>;
  readonly final: ReadonlySet<string>;
  readonly expanded: ReadonlySet<string>;
  readonly replaced?: ReadonlyMap<string, unknown>;
}): Record<string, unknown> {
  return {
    problem_id: t.problem.id,
    agents: t.agents.map((a) => ({ name: a.name, model: a.model, provider: a.provider })),
    ...t.extra,
    stats: t.stats,
    best: t.best,
    nodes: t.nodes.map((n) => ({
      ...n,
      final: t.final.has(n.id),
      expanded: t.expanded.has(n.id),
      ...(t.replaced?.has(n.id) ? { replaced: t.replaced.get(n.id) } : {}),
    })),
  };
}

export async function runSearch(input: SearchInput): Promise<SearchResult> {
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
  const replaced = new Map<string, Array<{ thought: string; pr: number | null; programs: ReadonlyArray<ProgramRecord> }>>();
  let best: BestProgram = { code: "", passRate: -1, agent: null, node: null };
  let refinements = 0;
  let pruned = 0;
  let programs = 0;

  const add = (node: TreeNode): TreeNode => {
    byId.set(node.id, node);
    order.push(node);
    return node;
  };
  const pathTo = (node: TreeNode): TreeNode[] => {
    const path: TreeNode[] = [];
    for (let n: TreeNode | undefined = node; n !== undefined; n = n.parent === null ? undefined : byId.get(n.parent)) path.push(n);
    return path.reverse();
  };
  const thoughtsTo = (node: TreeNode): string[] =>
    pathTo(node)
      .slice(1)
      .map((n) => n.thought)
      .filter((t) => t !== "" && t !== END_MARKER);
  const ctx: SearchContext = { problem, agents, prompts: input.prompts, reward: input.reward, signal, thoughtsTo, emit };

  const stopReason = (): StopReason | undefined => limitReached(config, counter, (now() - t0) / 1000, signal);
  const solved = (): boolean => config.early_stop && best.passRate >= 1 && rollouts >= (config.min_rollouts ?? 0);

  const simulate = async (node: TreeNode): Promise<void> => {
    const records = await op.simulate.simulate(node, ctx);
    node.programs.length = 0;
    node.programs.push(...records);
    programs += records.length;
    node.pr = mean(records.map((r) => r.reward ?? r.passRate));
    node.terminal = final.has(node.id) || node.depth >= config.max_depth || records.some((r) => r.passRate >= 1);
    for (const r of records) if (r.passRate > best.passRate) best = { code: r.code, passRate: r.passRate, agent: r.agent, node: node.id };
    emit("search.simulated", { problem: problem.id, node: node.id, pr: node.pr, programs: records.length });
  };
  const isIll = (parent: TreeNode, child: TreeNode): boolean =>
    op.prune ? op.prune.isIll(parent, child) : parent.pr !== null && child.pr !== null && child.pr < parent.pr;

  const root = add(newNode("0", null, "", null, 1));
  let stopped: StopReason | undefined = stopReason();
  let rollouts = 0;
  if (stopped === undefined && config.simulate_root !== false) {
    await simulate(root);
    op.backup.backup([root], op.backup.rewardOf(root));
    if (solved()) stopped = "early_stop";
  }

  while (stopped === undefined) {
    if (rollouts >= config.rollouts) {
      stopped = "rollouts";
      break;
    }
    stopped = stopReason();
    if (stopped !== undefined) break;
    // Solved during an earlier rollout, before min_rollouts allowed stopping.
    if (solved()) {
      stopped = "early_stop";
      break;
    }
    rollouts++;
    // Select: descend through open, simulated children.
    let leaf = root;
    for (;;) {
      let pick: TreeNode | undefined;
      let score = Number.NEGATIVE_INFINITY;
      for (const id of leaf.children) {
        const c = byId.get(id)!;
        if (c.status !== "open" || c.pr === null) continue;
        const s = op.select.score(leaf, c);
        if (pick === undefined || s > score) {
          pick = c;
          score = s;
        }
      }
      if (pick === undefined) break;
      leaf = pick;
    }
    if (leaf.terminal || leaf.depth >= config.max_depth || expanded.has(leaf.id)) {
      if (leaf === root && (expanded.has(root.id) || root.terminal)) {
        stopped = "exhausted";
        break;
      }
      op.backup.backup(pathTo(leaf), op.backup.rewardOf(leaf));
      continue;
    }
    // Expand.
    const proposals = await op.expand.expand(leaf, ctx);
    expanded.add(leaf.id);
    const priors = proposals.map((p) => p.prior);
    const total = priors.every((p) => p !== undefined && p >= 0) ? priors.reduce<number>((a, b) => a + (b ?? 0), 0) : 0;
    const children = proposals.map((p, k) => {
      const child = add(newNode(`${leaf.id}.${leaf.children.length}`, leaf, p.thought, p.agent, total > 0 ? (p.prior ?? 0) / total : 1 / proposals.length));
      leaf.children.push(child.id);
      if (p.final) final.add(child.id);
      void k;
      return child;
    });
    emit("search.expanded", { problem: problem.id, node: leaf.id, children: children.length });
    // Simulate (and refine / prune) each child, then back up.
    for (const child of children) {
      stopped = stopReason();
      if (stopped !== undefined) break;
      await simulate(child);
      let ill = isIll(leaf, child);
      if (ill && op.refine && op.refine.canRefine(child, refinements)) {
        const r = await op.refine.refine(child, leaf, ctx);
        if (r !== undefined) {
          refinements++;
          const history = replaced.get(child.id) ?? [];
          history.push({ thought: child.thought, pr: child.pr, programs: [...child.programs] });
          replaced.set(child.id, history);
          child.refined = { replacedThought: child.thought, summary: r.summary, summarizedBy: r.summarizedBy };
          child.thought = r.thought;
          child.refinements++;
          if (r.thought === END_MARKER) final.add(child.id);
          else final.delete(child.id);
          emit("search.refined", { problem: problem.id, node: child.id, by: r.summarizedBy });
          await simulate(child);
          ill = isIll(leaf, child);
        }
      }
      if (ill && op.prune) {
        child.status = "pruned";
        pruned++;
        op.backup.backup(pathTo(leaf), 0);
        emit("search.pruned", { problem: problem.id, node: child.id, pr: child.pr, parent_pr: leaf.pr });
      } else {
        op.backup.backup(pathTo(child), op.backup.rewardOf(child));
      }
      if (solved()) {
        stopped = "early_stop";
        break;
      }
    }
  }

  const stats: SearchStats = {
    rollouts,
    nodes: order.length,
    llm_calls: counter.calls,
    cached_calls: counter.cached,
    input_tokens: counter.input,
    output_tokens: counter.output,
    tokens: counter.input + counter.output,
    programs,
    refinements,
    pruned,
    stopped_by: stopped,
    seconds: (now() - t0) / 1000,
  };
  if (best.passRate < 0) best = { code: "", passRate: 0, agent: null, node: null };

  const { p2t, t2s } = trainingPairs(problem, order, thoughtsTo, { mode: config.pairs, minPassRate: config.export_min_pass_rate, prompts: input.prompts });

  const finalBest = best;
  return {
    best: finalBest,
    root,
    nodes: order,
    stats,
    pairs: { p2t, t2s },
    replaced,
    toJSON: (extra = {}) => treeJSON({ problem, agents: input.agents, extra, stats, best: finalBest, nodes: order, final, expanded, replaced }),
  };
}
