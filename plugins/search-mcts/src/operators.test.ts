/** The operator plugins on hand-computed cases, with scripted agents and a scripted reward. */
import * as assert from "node:assert/strict";
import { test } from "node:test";
import { PluginTester } from "@bdc/core/testing";
import { promptLibrary } from "@bdc/policy";
import backupPlugin from "./backup-discounted.ts";
import expandPlugin from "./expand-agents.ts";
import { extractPython, parseThoughts } from "./prompting.ts";
import prunePlugin from "./prune-ill-child.ts";
import refinePlugin from "./refine-summary.ts";
import pucbPlugin from "./select-pucb.ts";
import uctPlugin from "./select-uct.ts";
import varPucbPlugin from "./select-var-pucb.ts";
import simulatePlugin from "./simulate-code-from-thoughts.ts";
import { problem } from "./test-doubles/problems-dataset-plugin.ts";
import { ScriptedPolicy, ScriptedReward } from "./test-doubles/scripted.ts";
import type { Backup, Expander, Pruner, Refiner, SearchContext, Selector, Simulator, TreeNode } from "./types.ts";

const prompts = promptLibrary();

function node(over: Partial<TreeNode> & { id: string }): TreeNode {
  return { parent: null, depth: 0, thought: "", agent: null, prior: 1, children: [], visits: 0, returns: [], value: 0, pr: null, programs: [], terminal: false, status: "open", refinements: 0, ...over };
}

function ctxFor(agents: ScriptedPolicy[], reward: ScriptedReward, thoughts: string[] = []): SearchContext {
  return { problem: problem(0), agents, prompts, reward, signal: new AbortController().signal, thoughtsTo: () => thoughts, emit: () => {} };
}

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} != ${b}`);

test("select/pucb: Q + c P sqrt(ln N) / (1 + n); ln of 0 or 1 visits is 0", async () => {
  const s = await new PluginTester(pucbPlugin).make<Selector>({});
  const child = node({ id: "0.0", value: 0.5, prior: 0.25, visits: 1 });
  close(s.score(node({ id: "0", visits: 4 }), child), 0.5 + (1 * 0.25 * Math.sqrt(Math.log(4))) / 2); // 0.647176...
  assert.ok(Math.abs(s.score(node({ id: "0", visits: 4 }), child) - 0.6471762) < 1e-6);
  close(s.score(node({ id: "0", visits: 1 }), child), 0.5);
  close(s.score(node({ id: "0", visits: 0 }), child), 0.5);
  const s2 = await new PluginTester(pucbPlugin).make<Selector>({ c: 2 });
  close(s2.score(node({ id: "0", visits: 4 }), node({ id: "0.1", value: 0, prior: 0.5, visits: 0 })), 2 * 0.5 * Math.sqrt(Math.log(4)));
});

test("select/var-pucb: max return + (ln((N+base+1)/base) + c) P sqrt(ln N) / (1 + n), c=4 base=10", async () => {
  const s = await new PluginTester(varPucbPlugin).make<Selector>({});
  const child = node({ id: "0.0", value: 0.45, returns: [0.2, 0.7], prior: 0.5, visits: 2 });
  // (ln(20/10) + 4) * 0.5 * sqrt(ln 9) / 3 = 4.6931472 * 0.5 * 1.4823038 / 3 = 1.1594448
  assert.ok(Math.abs(s.score(node({ id: "0", visits: 9 }), child) - (0.7 + 1.1594448)) < 1e-6);
  close(s.score(node({ id: "0", visits: 1 }), child), 0.7);
  close(s.score(node({ id: "0", visits: 1 }), node({ id: "0.1", prior: 1 })), 0);
});

test("select/uct: Q + c sqrt(ln N / n); unvisited first", async () => {
  const s = await new PluginTester(uctPlugin).make<Selector>({});
  assert.equal(s.score(node({ id: "0", visits: 8 }), node({ id: "0.0" })), Number.POSITIVE_INFINITY);
  // 0.3 + sqrt(2) * sqrt(ln 8 / 2) = 0.3 + 1.4142136 * 1.0196671 = 1.7420272
  assert.ok(Math.abs(s.score(node({ id: "0", visits: 8 }), node({ id: "0.0", value: 0.3, visits: 2 })) - 1.7420272) < 1e-6);
  close(s.score(node({ id: "0", visits: 1 }), node({ id: "0.0", value: 0.3, visits: 2 })), 0.3);
});

test("parsing: Thought lines, <END>, python blocks", () => {
  assert.deepEqual(parseThoughts("intro\nThought: a\n2. Thought: b\n- **Thought 3:** c\nThought: <END>\nnoise"), [
    { thought: "a", final: false },
    { thought: "b", final: false },
    { thought: "c", final: false },
    { thought: "<END>", final: true },
  ]);
  assert.equal(extractPython("x\n```python\nprint(1)\n```\n```\nother\n```"), "print(1)\n");
  assert.equal(extractPython("print(2)"), "print(2)\n");
});

test("expand/agents: every agent is asked once and gives `width` thoughts; <END> is final", async () => {
  const reply = "Thought: one\nThought: two <END>\nThought: three\nThought: four";
  const agents = [new ScriptedPolicy("a", () => reply), new ScriptedPolicy("b", () => reply)];
  const reward = new ScriptedReward(() => 0);
  const e = await new PluginTester(expandPlugin).make<Expander>({ width: 3 }, { agents, prompts });
  const out = await e.expand(node({ id: "0" }), ctxFor(agents, reward, ["first idea"]));
  assert.deepEqual(out.map((p) => `${p.agent}:${p.thought}:${p.final === true}`), ["a:one:false", "a:two:true", "a:three:false", "b:one:false", "b:two:true", "b:three:false"]);
  for (const a of agents) {
    assert.equal(a.calls.length, 1);
    assert.match(a.calls[0]!.prompt, /Give 3 different candidate/);
    assert.match(a.calls[0]!.prompt, /1\. first idea/);
  }
});

test("simulate/code-from-thoughts: every agent n times, requests differ, each program judged on public tests", async () => {
  const table: Record<string, number> = { "print('a')\n": 1, "print('b')\n": 0.5 };
  const agents = [new ScriptedPolicy("a", () => "```python\nprint('a')\n```"), new ScriptedPolicy("b", () => "print('b')")];
  const reward = new ScriptedReward((code) => table[code] ?? 0);
  const sim = await new PluginTester(simulatePlugin).make<Simulator>({ n: 3 }, { agents, prompts, reward });
  const programs = await sim.simulate(node({ id: "0.0", depth: 1 }), ctxFor(agents, reward, ["idea"]));
  assert.equal(programs.length, 6);
  assert.deepEqual(programs.map((p) => `${p.agent}:${p.passRate}`), ["a:1", "a:1", "a:1", "b:0.5", "b:0.5", "b:0.5"]);
  const mean = programs.reduce((s, p) => s + p.passRate, 0) / programs.length;
  close(mean, 0.75);
  for (const a of agents) {
    assert.equal(a.calls.length, 3);
    assert.deepEqual(a.calls.map((c) => c.sampling?.seed), [undefined, 2, 3]);
  }
  assert.equal(reward.calls.length, 6);
  assert.ok(reward.calls.every((c) => c.op === "evaluate" && c.tests === problem(0).publicTests || JSON.stringify(c.tests) === JSON.stringify(problem(0).publicTests)));
  // vary: message puts the sample index into the prompt instead.
  const agents2 = [new ScriptedPolicy("a", () => "print(1)")];
  const sim2 = await new PluginTester(simulatePlugin).make<Simulator>({ n: 2, vary: "message" }, { agents: agents2, prompts, reward });
  await sim2.simulate(node({ id: "0" }), ctxFor(agents2, reward));
  assert.notEqual(agents2[0]!.calls[0]!.prompt, agents2[0]!.calls[1]!.prompt);
  assert.match(agents2[0]!.calls[1]!.prompt, /Attempt 2 of 2/);
});

test("backup/discounted: gamma * PR for non-terminal, PR for terminal; max and mean values", async () => {
  const b = await new PluginTester(backupPlugin).make<Backup>({});
  close(b.rewardOf(node({ id: "x", pr: 0.5 })), 0.45);
  close(b.rewardOf(node({ id: "x", pr: 0.5, terminal: true })), 0.5);
  assert.equal(b.rewardOf(node({ id: "x" })), 0);
  const path = [node({ id: "0" }), node({ id: "0.0" })];
  b.backup(path, 0.45);
  b.backup(path, 0.9);
  b.backup(path.slice(0, 1), 0);
  assert.deepEqual(path.map((n) => [n.visits, n.returns, n.value]), [
    [3, [0.45, 0.9, 0], 0.9],
    [2, [0.45, 0.9], 0.9],
  ]);
  const m = await new PluginTester(backupPlugin).make<Backup>({ value: "mean", gamma: 0.5 });
  const p2 = [node({ id: "0" })];
  close(m.rewardOf(node({ id: "x", pr: 0.5 })), 0.25);
  m.backup(p2, 0.2);
  m.backup(p2, 0.6);
  close(p2[0]!.value, 0.4);
});

test("prune/ill-child: strictly lower PR than the parent is ill; equal is not", async () => {
  const p = await new PluginTester(prunePlugin).make<Pruner>({});
  const parent = node({ id: "0", pr: 0.5 });
  assert.equal(p.isIll(parent, node({ id: "0.0", pr: 0.25 })), true);
  assert.equal(p.isIll(parent, node({ id: "0.1", pr: 0.5 })), false);
  assert.equal(p.isIll(parent, node({ id: "0.2", pr: 1 })), false);
  assert.equal(p.isIll(parent, node({ id: "0.3" })), false);
});

test("refine/summary: the NEXT agent summarises, the ORIGINAL agent regenerates; limits", async () => {
  const agents = ["a", "b", "c"].map((n) => new ScriptedPolicy(n, (prompt, agent) => (prompt.includes("what is wrong") ? `summary by ${agent}` : `Thought: fixed by ${agent}`)));
  const reward = new ScriptedReward(() => 0.5, "TRACE-TEXT");
  const r = await new PluginTester(refinePlugin).make<Refiner>({ max_total: 2, max_per_node: 1 }, { agents, prompts, reward });
  const ill = node({
    id: "0.1",
    parent: "0",
    depth: 1,
    thought: "bad idea",
    agent: "b",
    pr: 0,
    programs: [
      { agent: "b", code: "print(0)\n", passRate: 0, verdicts: ["wrong_answer", "wrong_answer"] },
      { agent: "a", code: "print(9)\n", passRate: 0.5, verdicts: ["passed", "wrong_answer"] },
    ],
  });
  const out = await r.refine(ill, node({ id: "0", pr: 0.5 }), ctxFor(agents, reward, ["earlier"]));
  assert.deepEqual(out, { thought: "fixed by b", summary: "summary by c", summarizedBy: "c" });
  assert.equal(agents[0]!.calls.length, 0);
  assert.equal(agents[1]!.calls.length, 1);
  assert.match(agents[1]!.calls[0]!.prompt, /The wrong step:\nbad idea/);
  assert.match(agents[1]!.calls[0]!.prompt, /summary by c/);
  const summaryPrompt = agents[2]!.calls[0]!.prompt;
  assert.match(summaryPrompt, /print\(9\)/, "the node's best program");
  assert.match(summaryPrompt, /public test 2: wrong_answer/);
  assert.match(summaryPrompt, /TRACE-TEXT/);
  assert.deepEqual(reward.calls.map((c) => [c.op, c.tests]), [["feedback", [problem(0).publicTests[1]]]]);
  // The agent after the last one is the first.
  const out2 = await r.refine({ ...ill, agent: "c" }, node({ id: "0", pr: 0.5 }), ctxFor(agents, reward));
  assert.equal(out2?.summarizedBy, "a");
  // Limits: global and per node.
  assert.equal(r.canRefine(node({ id: "0.1" }), 0), true);
  assert.equal(r.canRefine(node({ id: "0.1" }), 2), false);
  assert.equal(r.canRefine(node({ id: "0.1", refinements: 1 }), 0), false);
  // One agent: no different agent, nothing refined.
  const solo = await new PluginTester(refinePlugin).make<Refiner>({}, { agents: agents.slice(0, 1), prompts, reward });
  assert.equal(await solo.refine({ ...ill, agent: "a" }, node({ id: "0", pr: 0.5 }), ctxFor(agents.slice(0, 1), reward)), undefined);
});
