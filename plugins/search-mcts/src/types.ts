/**
 * MC-Tree-Of-Agents (paper section 4.1): a Monte-Carlo tree search over natural-language
 * thoughts. A node is a reasoning state S (the thoughts on the path from the root); several
 * agents (policy LLMs) expand it with next thoughts; every agent writes programs from the
 * thought path (simulation) and the programs are run on the PUBLIC tests; the mean pass rate
 * PR(S) becomes the node's reward, backed up with a discount. Prune removes an "ill" child (a
 * child that does worse than its parent); refine lets a different agent diagnose it and the
 * original agent regenerate it in place.
 *
 * Every operator is a plugin of its own slot, so that the paper's ablations are overlays.
 */
import type { PromptLibrary } from "@bdc/policy";
import type { Policy } from "@bdc/policy";
import type { PublicProblem, Reward, Verdict } from "@bdc/reward-python";

/** A program written during simulation, and how it did on the public tests. */
export interface ProgramRecord {
  readonly agent: string;
  readonly code: string;
  /** Fraction of public tests passed, 0..1. */
  readonly passRate: number;
  readonly verdicts: ReadonlyArray<Verdict>;
  /** simulate/program (LATS): the agent's self-reflection on this program when it fails a public test. */
  readonly reflection?: string;
  /** simulate/self-evaluate (RAP): the agent's rating (0..10) of the node's step. */
  readonly selfEval?: number;
  /**
   * The program's contribution to PR(S) when it is not its pass rate (RAP blends in the
   * self-evaluation). The search's value uses it; the best program and the exported pairs are
   * ranked by `passRate`, the public tests alone.
   */
  readonly reward?: number;
}

export type NodeStatus = "open" | "pruned" | "replaced";

export interface TreeNode {
  /** Deterministic: "0" for the root, "0.2", "0.2.1" ... (parent id + child index). */
  readonly id: string;
  readonly parent: string | null;
  readonly depth: number;
  /** The thought step this node adds ("" at the root). */
  thought: string;
  /** The agent that proposed the thought (null at the root). */
  agent: string | null;
  /** P(a|S): the prior of this child under its parent (uniform when the agent gives none). */
  prior: number;
  readonly children: string[];
  /** N: visits (times a return was backed up through the node). */
  visits: number;
  /** Every return backed up through the node (for max/mean value functions). */
  readonly returns: number[];
  /** Q(S): the value the selector reads (per the backup's value function). */
  value: number;
  /** PR(S): mean public pass rate of the programs simulated at this node (null: not simulated). */
  pr: number | null;
  readonly programs: ProgramRecord[];
  /** No further expansion: max depth, an end-of-thought marker, or a perfect program. */
  terminal: boolean;
  status: NodeStatus;
  /** Set when this node was produced by refine in place of an ill node. */
  refined?: { readonly replacedThought: string; readonly summary: string; readonly summarizedBy: string };
  /** How many times refine replaced the thought at this position. */
  refinements: number;
}

/** What operators may read and call during a search. Hidden tests are not reachable from here. */
export interface SearchContext {
  readonly problem: PublicProblem;
  readonly agents: ReadonlyArray<Policy>;
  readonly prompts: PromptLibrary;
  readonly reward: Reward;
  readonly signal: AbortSignal;
  /** The thoughts from the root to `node`, in order (the root's empty thought excluded). */
  thoughtsTo(node: TreeNode): string[];
  /** Records an event in the run's events.jsonl. */
  emit(event: string, data?: Record<string, unknown>): void;
}

// ---------------------------------------------------------------------------------------------
// Operator slots

/** Scores a child for selection; the search descends to the highest-scoring open child. */
export interface Selector {
  score(parent: TreeNode, child: TreeNode): number;
}

export interface ProposedThought {
  readonly thought: string;
  readonly agent: string;
  /** P(a|S) when the agent gives one; the search normalises; undefined = uniform. */
  readonly prior?: number;
  /** The agent declared the reasoning complete (end-of-thought marker). */
  readonly final?: boolean;
}

/** Proposes the next thoughts of a node: every agent, `width` each. */
export interface Expander {
  expand(node: TreeNode, ctx: SearchContext): Promise<ReadonlyArray<ProposedThought>>;
}

/** Thought-to-solution: programs from the thought path, judged on the public tests. */
export interface Simulator {
  simulate(node: TreeNode, ctx: SearchContext): Promise<ReadonlyArray<ProgramRecord>>;
}

/** Folds a return into the nodes from `node` up to the root (paper eq. 5-6). */
export interface Backup {
  /** The return of a freshly simulated node: gamma * PR for non-terminal, PR for terminal nodes. */
  rewardOf(node: TreeNode): number;
  backup(path: ReadonlyArray<TreeNode>, reward: number): void;
}

/** Decides whether a simulated child is ill (worse than its parent). */
export interface Pruner {
  isIll(parent: TreeNode, child: TreeNode): boolean;
}

/** Repairs an ill node in place: a different agent diagnoses it, the original agent regenerates. */
export interface Refiner {
  /** Whether the limits still allow refining this node. */
  canRefine(node: TreeNode, refinedSoFar: number): boolean;
  /** The replacement thought (the caller re-simulates and backs up). */
  refine(node: TreeNode, parent: TreeNode, ctx: SearchContext): Promise<{ thought: string; summary: string; summarizedBy: string } | undefined>;
}

declare module "@bdc/core" {
  interface SlotTypes {
    select: Selector;
    expand: Expander;
    simulate: Simulator;
    backup: Backup;
    prune: Pruner;
    refine: Refiner;
  }
}
