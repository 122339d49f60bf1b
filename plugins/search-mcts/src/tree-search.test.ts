/** The search loop with scripted agents and reward: stops, prune, refine, pairs. */
import * as assert from "node:assert/strict";
import { test } from "node:test";
import { PluginTester } from "@bdc/core/testing";
import { promptLibrary, type Policy } from "@bdc/policy";
import type { StepContext, StepImpl } from "@bdc/core";
import { formatInstructions, problemText } from "./prompting.ts";
import zeroShotPlugin from "./zero-shot-step.ts";
import backupPlugin from "./backup-discounted.ts";
import expandPlugin from "./expand-agents.ts";
import prunePlugin from "./prune-ill-child.ts";
import refinePlugin from "./refine-summary.ts";
import { runSearch, type SearchConfig } from "./search.ts";
import pucbPlugin from "./select-pucb.ts";
import simulatePlugin from "./simulate-code-from-thoughts.ts";
import { problem } from "./test-doubles/problems-dataset-plugin.ts";
import { chainPassRate, chainScript, ScriptedPolicy, ScriptedReward, type Script } from "./test-doubles/scripted.ts";
import type { Backup, Expander, Pruner, Refiner, Selector, Simulator } from "./types.ts";

const prompts = promptLibrary();
const CONFIG: SearchConfig = { rollouts: 16, max_depth: 6, early_stop: true, export_min_pass_rate: 1, pairs: "all-nodes" };

async function setup(opts: { script?: Script; passRate?: (code: string) => number; width?: number; n?: number; prune?: boolean; refine?: Record<string, unknown>; agents?: string[] }) {
  const agents = (opts.agents ?? ["a", "b"]).map((n) => new ScriptedPolicy(n, opts.script ?? chainScript));
  const reward = new ScriptedReward(opts.passRate ?? chainPassRate);
  const deps = { agents, prompts, reward };
  const operators = {
    select: await new PluginTester(pucbPlugin).make<Selector>({}),
    expand: await new PluginTester(expandPlugin).make<Expander>({ width: opts.width ?? 2 }, deps),
    simulate: await new PluginTester(simulatePlugin).make<Simulator>({ n: opts.n ?? 1 }, deps),
    backup: await new PluginTester(backupPlugin).make<Backup>({}),
    prune: opts.prune ? await new PluginTester(prunePlugin).make<Pruner>({}) : undefined,
    refine: opts.refine ? await new PluginTester(refinePlugin).make<Refiner>(opts.refine, deps) : undefined,
  };
  return { agents, reward, run: (config: Partial<SearchConfig> = {}) => runSearch({ problem: problem(0), agents, prompts, reward, operators, config: { ...CONFIG, ...config } }) };
}

test("early stop: the search stops at the first program passing every public test; pairs from that path", async () => {
  const { agents, run } = await setup({});
  const r = await run();
  assert.equal(r.stats.stopped_by, "early_stop");
  assert.equal(r.best.passRate, 1);
  assert.equal(r.best.node, "0.0.0", "depth 2 passes; the first child of the first child is simulated first");
  assert.equal(r.best.agent, "a");
  // root (2 code calls) + expand root (2) + 4 children x 2 code calls + expand 0.0 (2) + first grandchild (2)
  assert.equal(r.stats.llm_calls, 2 + 2 + 8 + 2 + 2);
  assert.equal(agents[0]!.calls.length + agents[1]!.calls.length, r.stats.llm_calls);
  assert.equal(r.pairs.p2t.length, 1);
  // The authors' structure: clues as a JSON list after the p2t prompt; the problem rendered as everywhere.
  assert.deepEqual(r.pairs.p2t[0]!.messages[1], { role: "assistant", content: '["Clue of Step 1: a step 1.0","Clue of Step 2: a step 2.0"]' });
  assert.match(r.pairs.p2t[0]!.messages[0]!.content, /step by step[\s\S]*-----Clues-----\n?$/);
  assert.ok(r.pairs.p2t[0]!.messages[0]!.content.includes(`\n\n${problem(0).statement}\n\n`));
  assert.deepEqual(r.pairs.t2s.map((x) => x.agent), ["a", "b"], "one pair per distinct passing program");
  assert.match(r.pairs.t2s[0]!.messages[0]!.content, /-----Clues-----\n\["Clue of Step 1: a step 1\.0","Clue of Step 2: a step 2\.0"\]/);
  assert.match(r.pairs.t2s[0]!.messages[1]!.content, /print\(2\)/);
});

test("budgets: rollouts, LLM calls and tokens stop the search", async () => {
  const { run } = await setup({});
  const byRollouts = await run({ early_stop: false, rollouts: 2 });
  assert.equal(byRollouts.stats.stopped_by, "rollouts");
  assert.equal(byRollouts.stats.rollouts, 2);
  const byCalls = await run({ early_stop: false, max_llm_calls: 7 });
  assert.equal(byCalls.stats.stopped_by, "max_llm_calls");
  assert.ok(byCalls.stats.llm_calls >= 7 && byCalls.stats.llm_calls <= 7 + 2, `${byCalls.stats.llm_calls} calls`);
  const byTokens = await run({ early_stop: false, max_tokens: 500 });
  assert.equal(byTokens.stats.stopped_by, "max_tokens");
  assert.ok(byTokens.stats.tokens >= 500);
  const zero = await run({ rollouts: 0 });
  assert.equal(zero.stats.stopped_by, "rollouts");
  assert.equal(zero.stats.nodes, 1, "only the root was simulated");
  const aborted = new AbortController();
  aborted.abort();
  const { agents, reward } = await setup({});
  const stopped = await runSearch({ problem: problem(0), agents, prompts, reward, operators: (await setup({})) && { select: await new PluginTester(pucbPlugin).make<Selector>({}), expand: await new PluginTester(expandPlugin).make<Expander>({}, { agents, prompts }), simulate: await new PluginTester(simulatePlugin).make<Simulator>({}, { agents, prompts, reward }), backup: await new PluginTester(backupPlugin).make<Backup>({}) }, config: CONFIG, signal: aborted.signal });
  assert.equal(stopped.stats.stopped_by, "aborted");
  assert.equal(stopped.stats.llm_calls, 0);
});

/** Root programs pass half; a path with "bad" in it passes nothing; "good" passes half (equal: not ill). */
const badGood: Script = (prompt, agent) => {
  if (prompt.includes("candidate next steps")) return prompt.includes("1.") ? "Thought: deeper" : `Thought: good ${agent}\nThought: bad ${agent}`;
  if (prompt.includes("what is wrong with the reasoning")) return `diagnosis by ${agent}`;
  if (prompt.includes("Propose a corrected replacement")) return `Thought: good fix by ${agent}`;
  const reasoning = /Reasoning:\n([\s\S]*?)\n\n/.exec(prompt)?.[1] ?? "";
  return `\`\`\`python\nprint(${JSON.stringify(reasoning.includes("bad") ? "bad" : "half")})\n\`\`\``;
};
const badGoodRate = (code: string) => (code.includes("bad") ? 0 : 0.5);

test("prune removes exactly the ill children and backs up zero along their ancestors", async () => {
  const { run } = await setup({ script: badGood, passRate: badGoodRate, prune: true });
  const r = await run({ rollouts: 1 });
  const children = r.root.children.map((id) => r.nodes.find((n) => n.id === id)!);
  assert.deepEqual(children.map((c) => [c.thought, c.status, c.pr]), [
    ["good a", "open", 0.5],
    ["bad a", "pruned", 0],
    ["good b", "open", 0.5],
    ["bad b", "pruned", 0],
  ]);
  assert.equal(r.stats.pruned, 2);
  // root: its own return (0.45), then per child in order: 0.45, 0, 0.45, 0
  assert.deepEqual(r.root.returns.map((x) => Math.round(x * 100) / 100), [0.45, 0.45, 0, 0.45, 0]);
  assert.deepEqual(children.map((c) => c.visits), [1, 0, 1, 0]);
  // Without a pruner, ill children stay and back up their discounted PR.
  const kept = await (await setup({ script: badGood, passRate: badGoodRate })).run({ rollouts: 1 });
  assert.equal(kept.nodes.filter((n) => n.status === "pruned").length, 0);
  assert.deepEqual(kept.root.returns.map((x) => Math.round(x * 100) / 100), [0.45, 0.45, 0, 0.45, 0]);
});

test("refine: a different agent summarises, the original regenerates in place; max_total and max_per_node hold", async () => {
  const { agents, run } = await setup({ script: badGood, passRate: badGoodRate, prune: true, refine: { max_total: 1, max_per_node: 1 } });
  const r = await run({ rollouts: 1 });
  const children = r.root.children.map((id) => r.nodes.find((n) => n.id === id)!);
  assert.deepEqual(children.map((c) => [c.id, c.thought, c.status, c.pr]), [
    ["0.0", "good a", "open", 0.5],
    ["0.1", "good fix by a", "open", 0.5],
    ["0.2", "good b", "open", 0.5],
    ["0.3", "bad b", "pruned", 0],
  ]);
  assert.deepEqual(children[1]!.refined, { replacedThought: "bad a", summary: "diagnosis by b", summarizedBy: "b" });
  assert.equal(children[1]!.refinements, 1);
  assert.equal(r.replaced.get("0.1")?.[0]?.pr, 0);
  assert.equal(r.stats.refinements, 1, "the global limit allowed one refinement");
  assert.equal(agents[1]!.calls.filter((c) => c.prompt.includes("what is wrong")).length, 1);
  assert.equal(agents[0]!.calls.filter((c) => c.prompt.includes("what is wrong")).length, 0);
  assert.equal(agents[0]!.calls.filter((c) => c.prompt.includes("Propose a corrected")).length, 1);

  // A refinement that stays ill is pruned; per-node limit 1 stops a second refinement of the same node.
  const stubborn: Script = (p, a) => (p.includes("Propose a corrected") ? `Thought: bad again by ${a}` : badGood(p, a, undefined));
  const s = await (await setup({ script: stubborn, passRate: badGoodRate, prune: true, refine: { max_total: 5, max_per_node: 1 } })).run({ rollouts: 1 });
  const sc = s.root.children.map((id) => s.nodes.find((n) => n.id === id)!);
  assert.deepEqual(sc.map((c) => [c.thought, c.status, c.refinements]), [
    ["good a", "open", 0],
    ["bad again by a", "pruned", 1],
    ["good b", "open", 0],
    ["bad again by b", "pruned", 1],
  ]);
  assert.equal(s.stats.refinements, 2);
});

test("the tree JSON holds every node with its programs and the run's stats", async () => {
  const { run } = await setup({});
  const r = await run();
  const json = JSON.parse(JSON.stringify(r.toJSON({ config: CONFIG }))) as { problem_id: string; nodes: Array<Record<string, unknown>>; stats: { nodes: number }; agents: unknown[] };
  assert.equal(json.problem_id, "p0");
  assert.equal(json.nodes.length, r.stats.nodes);
  assert.equal(json.agents.length, 2);
  const first = json.nodes.find((n) => n.id === "0.0")!;
  for (const key of ["thought", "agent", "visits", "value", "returns", "pr", "programs", "status", "terminal", "prior"]) assert.ok(key in first, key);
  assert.deepEqual(Object.keys((first.programs as object[])[0]!), ["agent", "code", "passRate", "verdicts"]);
});

test("collection: a problem solved at once yields no pairs under the search schedule, and pairs under the collection schedule", async () => {
  const { run } = await setup({ passRate: () => 1 });
  const search = await run({ pairs: "best-path" });
  assert.equal(search.stats.stopped_by, "early_stop");
  assert.equal(search.stats.rollouts, 0, "the root's programs pass: the search never expands");
  assert.deepEqual([search.pairs.p2t.length, search.pairs.t2s.length], [0, 0]);

  // The authors' collection: the root expanded first (never simulated), every rollout run.
  const collect = await run({ simulate_root: false, early_stop: false, rollouts: 3, pairs: "best-path" });
  assert.equal(collect.stats.stopped_by, "rollouts");
  assert.equal(collect.nodes[0]!.pr, null, "the root is not simulated");
  assert.deepEqual([collect.pairs.p2t.length, collect.pairs.t2s.length], [1, 1], "best-path: one pair of each kind");
  const best = collect.nodes.filter((n) => n.parent !== null).reduce((a, b) => (b.value > a.value ? b : a));
  assert.equal(collect.pairs.p2t[0]!.node_id, best.id, "from the best-valued node");

  // Early stop after a minimum of rollouts.
  const min = await run({ simulate_root: false, rollouts: 10, min_rollouts: 2, pairs: "best-path" });
  assert.equal(min.stats.stopped_by, "early_stop");
  assert.equal(min.stats.rollouts, 2);
});

test("pairs: best-path yields nothing when its best program fails the public tests, unless export_min_pass_rate allows it; all-nodes keeps every passing node", async () => {
  const { run } = await setup({});
  const collect = { simulate_root: false, early_stop: false, rollouts: 1 } as const;
  // One rollout: the root's children are at depth 1 (pass rate 0.5).
  const strict = await run({ ...collect, pairs: "best-path" });
  assert.deepEqual([strict.pairs.p2t.length, strict.pairs.t2s.length], [0, 0]);
  const loose = await run({ ...collect, pairs: "best-path", export_min_pass_rate: 0 });
  assert.deepEqual([loose.pairs.p2t.length, loose.pairs.t2s.length], [1, 1]);
  assert.equal(loose.pairs.t2s[0]!.public_pass_rate, 0.5);
  const all = await run({ ...collect, pairs: "all-nodes", export_min_pass_rate: 0.5 });
  assert.equal(all.pairs.p2t.length, 4, "every depth-1 node (2 agents x width 2) passes half");
});

test("one prompt module: the search's prompts, the training pairs and the zero-shot (student) prompt render the problem the same way", async () => {
  const withStarter = { ...problem(0), statement: "Return the sum of a list.  \n", starterCode: "class Solution:\n    def total(self, xs):\n        ", fnName: "total", style: "call" as const };
  const { agents, reward } = await setup({});
  const operators = {
    select: await new PluginTester(pucbPlugin).make<Selector>({}),
    expand: await new PluginTester(expandPlugin).make<Expander>({ width: 2 }, { agents, prompts }),
    simulate: await new PluginTester(simulatePlugin).make<Simulator>({ n: 1 }, { agents, prompts, reward }),
    backup: await new PluginTester(backupPlugin).make<Backup>({}),
  };
  const r = await runSearch({ problem: withStarter, agents, prompts, reward, operators, config: { ...CONFIG, simulate_root: false, early_stop: false, rollouts: 2, export_min_pass_rate: 0, pairs: "best-path" } });
  const text = problemText(withStarter);
  assert.match(text, /^Return the sum of a list\.\n\nStarter code:\n```python\nclass Solution:/);
  const searchPrompts = agents.flatMap((a) => a.calls.map((c) => c.prompt));
  assert.ok(searchPrompts.length > 0 && searchPrompts.every((p) => p.includes(text)), "every search prompt");
  for (const pair of [...r.pairs.p2t, ...r.pairs.t2s]) assert.ok(pair.messages[0]!.content.includes(text), "every training pair");
  assert.ok(r.pairs.t2s[0]!.messages[0]!.content.includes(formatInstructions(withStarter)));
  let zeroShotPrompt = "";
  const student = { ...agents[0]!, name: "student", complete: async (messages: ReadonlyArray<{ content: string }>) => ((zeroShotPrompt = messages[0]!.content), agents[0]!.complete([{ role: "user", content: "Write a Python 3 program" }])) } as unknown as Policy;
  const step = await new PluginTester(zeroShotPlugin).make<StepImpl>({}, { agent: student, prompts, reward });
  await step.run({ id: withStarter.id, data: withStarter }, {} as StepContext);
  assert.ok(zeroShotPrompt.includes(text) && zeroShotPrompt.includes(formatInstructions(withStarter)), "the zero-shot / student evaluation prompt");
});
