/**
 * Tree-search overhead per node.
 *
 * MC-Tree-Of-Agents spends its time in models and in running code; the search's own share
 * (selection, bookkeeping, prompt rendering and parsing, backup, pair export) must stay far
 * below that. Agents and reward here answer instantly, so what remains is the search itself.
 *
 *   reference   the instant agents' complete() and the reward's evaluate() called directly, as
 *               many times as the search called them (same prompt sizes): the work without the
 *               search
 *   search      runSearch with select/var-pucb, expand/agents (width 3), simulate/code-from-
 *               thoughts (n 2), backup/discounted, prune/ill-child, refine/summary; 2 agents;
 *               `--items` rollouts, no early stop
 *
 * overhead per node = (median search ms - median reference ms) / nodes, in µs; ratio = search /
 * reference.
 *
 *   pnpm exec tsx benchmarks/src/search-overhead.ts [--items 300] [--reps 5] [--json]
 */
import * as os from "node:os";
import { PluginTester } from "@bdc/core/testing";
import type { ChatMessage, Completion, Policy } from "@bdc/policy";
import { promptLibrary } from "@bdc/policy";
import type { ProgramEvaluation, PublicProblem, Reward } from "@bdc/reward-python";
import backupPlugin from "../../plugins/search-mcts/src/backup-discounted.ts";
import expandPlugin from "../../plugins/search-mcts/src/expand-agents.ts";
import prunePlugin from "../../plugins/search-mcts/src/prune-ill-child.ts";
import refinePlugin from "../../plugins/search-mcts/src/refine-summary.ts";
import { runSearch, type SearchOperators } from "../../plugins/search-mcts/src/search.ts";
import varPucbPlugin from "../../plugins/search-mcts/src/select-var-pucb.ts";
import simulatePlugin from "../../plugins/search-mcts/src/simulate-code-from-thoughts.ts";
import { FLAGS_HELP, fmt, parseFlags, printOutcome, runIfMain, stats, table, type Benchmark, type BenchOutcome, type Stats } from "./common.ts";

export const TARGET_US_PER_NODE = 1000;
export const DEFAULTS = { items: 300, reps: 5 } as const;

const PROBLEM: PublicProblem = {
  id: "bench",
  source: "bench",
  difficulty: "introductory",
  statement: "Read n and print the sum of 1..n.",
  style: "stdio",
  publicTests: [
    { kind: "stdio", input: "3", output: "6" },
    { kind: "stdio", input: "4", output: "10" },
  ],
  split: "first-half",
};

/** An agent answering at once: thoughts for expansion prompts, a program otherwise. */
function instantAgent(name: string): Policy & { calls: number } {
  let k = 0;
  const agent = {
    name,
    model: "instant",
    provider: "bench",
    calls: 0,
    async complete(messages: ReadonlyArray<ChatMessage>): Promise<Completion> {
      agent.calls++;
      const prompt = messages[0]?.content ?? "";
      k++;
      const text = prompt.includes("candidate next steps")
        ? `Thought: ${name} idea ${k}\nThought: ${name} other ${k}\nThought: ${name} third ${k}`
        : prompt.includes("what is wrong")
          ? "The loop bound is off by one."
          : prompt.includes("corrected replacement")
            ? `Thought: ${name} fixed ${k}`
            : `\`\`\`python\nn = int(input())\nprint(n * (n + 1) // 2 + ${k % 3})\n\`\`\``;
      return { text, inputTokens: 100, outputTokens: 20, cached: false, latencyMs: 0, retries: 0, costUsd: 0, model: "instant" };
    },
    usage: () => ({ calls: agent.calls, cached: 0, failed: 0, retries: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0, latency_ms_total: 0 }),
  };
  return agent;
}

/** A reward answering at once: pass rate from the program's last digit (never 1: no early stop). */
function instantReward(): Reward & { calls: number } {
  const reward = {
    sandboxed: false,
    calls: 0,
    async evaluate(_p: PublicProblem, code: string): Promise<ProgramEvaluation> {
      reward.calls++;
      const rate = code.includes("+ 0") ? 0.5 : code.includes("+ 1") ? 0.5 : 0;
      return { passFraction: rate, verdicts: ["passed", "wrong_answer"], tests: [] };
    },
    evaluateOn: async (): Promise<ProgramEvaluation> => ({ passFraction: 0, verdicts: [], tests: [] }),
    feedback: async () => ({ text: "n = 3 at line 1", ok: true }) as unknown as Awaited<ReturnType<Reward["feedback"]>>,
  };
  return reward;
}

async function searchRun(rollouts: number): Promise<{ ms: number; nodes: number; llmCalls: number; evaluations: number }> {
  const agents = [instantAgent("a"), instantAgent("b")];
  const reward = instantReward();
  const prompts = promptLibrary();
  const deps = { agents, prompts, reward };
  const operators: SearchOperators = {
    select: await new PluginTester(varPucbPlugin).make({}),
    expand: await new PluginTester(expandPlugin).make({ width: 3 }, deps),
    simulate: await new PluginTester(simulatePlugin).make({ n: 2 }, deps),
    backup: await new PluginTester(backupPlugin).make({}),
    prune: await new PluginTester(prunePlugin).make({}),
    refine: await new PluginTester(refinePlugin).make({ max_total: 2 }, deps),
  };
  (globalThis as { gc?: () => void }).gc?.();
  const t0 = performance.now();
  const r = await runSearch({ problem: PROBLEM, agents, prompts, reward, operators, config: { rollouts, max_depth: 6, early_stop: false, export_min_pass_rate: 1, pairs: "all-nodes" } });
  JSON.stringify(r.toJSON());
  const ms = performance.now() - t0;
  return { ms, nodes: r.stats.nodes, llmCalls: r.stats.llm_calls, evaluations: reward.calls };
}

async function referenceRun(llmCalls: number, evaluations: number): Promise<number> {
  const agent = instantAgent("a");
  const reward = instantReward();
  const prompt = promptLibrary().render("code-from-thoughts", { problem: PROBLEM.statement, thoughts: "1. an idea\n2. another idea", format_instructions: "stdin/stdout" });
  (globalThis as { gc?: () => void }).gc?.();
  const t0 = performance.now();
  for (let i = 0; i < llmCalls; i++) await agent.complete([{ role: "user", content: prompt }]);
  for (let i = 0; i < evaluations; i++) await reward.evaluate(PROBLEM, "print(1)");
  return performance.now() - t0;
}

export interface SearchOverheadResult {
  readonly benchmark: "search-overhead";
  readonly rollouts: number;
  readonly reps: number;
  readonly env: { readonly node: string; readonly platform: string; readonly arch: string; readonly cpus: number; readonly cpu: string };
  readonly nodes: number;
  readonly llmCalls: number;
  readonly evaluations: number;
  readonly search: { readonly ms: Stats; readonly usPerNode: number };
  readonly reference: { readonly ms: Stats; readonly usPerNode: number };
  readonly overheadUsPerNode: number;
  readonly ratio: number;
  readonly targetUsPerNode: number;
  readonly pass: boolean;
}

export async function benchSearchOverhead(options: { rollouts?: number; reps?: number; log?: (line: string) => void } = {}): Promise<SearchOverheadResult> {
  const rollouts = options.rollouts ?? DEFAULTS.items;
  const reps = options.reps ?? DEFAULTS.reps;
  const log = options.log ?? (() => {});
  await searchRun(Math.min(rollouts, 20)); // warm-up (module loading, JIT)
  const searchMs: number[] = [];
  const refMs: number[] = [];
  let shape = { nodes: 0, llmCalls: 0, evaluations: 0 };
  for (let rep = 0; rep < reps; rep++) {
    const s = await searchRun(rollouts);
    shape = { nodes: s.nodes, llmCalls: s.llmCalls, evaluations: s.evaluations };
    const ref = await referenceRun(s.llmCalls, s.evaluations);
    searchMs.push(s.ms);
    refMs.push(ref);
    log(`rep ${rep + 1}/${reps}: search ${fmt(s.ms)} ms (${s.nodes} nodes, ${s.llmCalls} calls, ${s.evaluations} evaluations), reference ${fmt(ref)} ms`);
  }
  const search = stats(searchMs);
  const reference = stats(refMs);
  const overhead = ((search.median - reference.median) / shape.nodes) * 1000;
  const cpus = os.cpus();
  return {
    benchmark: "search-overhead",
    rollouts,
    reps,
    env: { node: process.version, platform: process.platform, arch: process.arch, cpus: cpus.length, cpu: cpus[0]?.model.trim() ?? "unknown" },
    ...shape,
    search: { ms: search, usPerNode: (search.median / shape.nodes) * 1000 },
    reference: { ms: reference, usPerNode: (reference.median / shape.nodes) * 1000 },
    overheadUsPerNode: overhead,
    ratio: search.median / reference.median,
    targetUsPerNode: TARGET_US_PER_NODE,
    pass: Number.isFinite(overhead) && overhead < TARGET_US_PER_NODE,
  };
}

export function formatSearchOverhead(r: SearchOverheadResult): string {
  const range = (s: Stats) => `${fmt(s.min)}-${fmt(s.max)}`;
  return [
    `search-overhead: ${r.rollouts} rollouts x ${r.reps} reps, ${r.nodes} nodes, ${r.llmCalls} agent calls, ${r.evaluations} evaluations per search, medians (node ${r.env.node}, ${r.env.platform}/${r.env.arch}, ${r.env.cpus} CPUs: ${r.env.cpu})`,
    "",
    table(
      ["mode", "median ms", "min-max ms", "µs/node", "x reference"],
      [
        ["reference (agent + reward calls)", fmt(r.reference.ms.median), range(r.reference.ms), fmt(r.reference.usPerNode, 3), "1.0"],
        ["search (runSearch)", fmt(r.search.ms.median), range(r.search.ms), fmt(r.search.usPerNode, 3), fmt(r.ratio, 1)],
      ],
    ),
    "",
    `${r.pass ? "PASS" : "FAIL"}: search overhead ${fmt(r.overheadUsPerNode, 1)} µs/node (x${fmt(r.ratio, 1)} the reference) ${r.pass ? "<" : ">="} ${r.targetUsPerNode} µs/node target`,
  ].join("\n");
}

export const searchOverhead: Benchmark = {
  name: "search-overhead",
  description: "tree-search time per node with instant agents and reward, vs calling them directly",
  async run(flags, log): Promise<BenchOutcome> {
    const result = await benchSearchOverhead({ ...(flags.items === undefined ? {} : { rollouts: flags.items }), ...(flags.reps === undefined ? {} : { reps: flags.reps }), log });
    return { pass: result.pass, text: formatSearchOverhead(result), json: result };
  },
};

async function main(argv: ReadonlyArray<string>): Promise<number> {
  const flags = parseFlags(argv);
  if (flags.help) {
    process.stdout.write(`usage: pnpm exec tsx benchmarks/src/search-overhead.ts [flags]\n${searchOverhead.description} (--items: rollouts per search)\n\n${FLAGS_HELP}\n`);
    return 0;
  }
  const outcome = await searchOverhead.run(flags, (line) => process.stderr.write(`${line}\n`));
  return printOutcome(flags, outcome);
}

runIfMain(import.meta.url, "search-overhead", main);
