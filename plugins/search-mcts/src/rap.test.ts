/** RAP's operators (expand/world-model, simulate/self-evaluate) with scripted agents and a scripted reward. */
import * as assert from "node:assert/strict";
import { test } from "node:test";
import { PluginTester } from "@bdc/core/testing";
import { promptLibrary } from "@bdc/policy";
import expandPlugin, { parseAnswer, parseSubquestions } from "./expand-world-model.ts";
import { END_MARKER } from "./prompting.ts";
import simulatePlugin, { parseSelfEval, rapReward, UNSOLVED_MAX } from "./simulate-self-evaluate.ts";
import { problem } from "./test-doubles/problems-dataset-plugin.ts";
import { ScriptedPolicy, ScriptedReward } from "./test-doubles/scripted.ts";
import type { Expander, SearchContext, Simulator, TreeNode } from "./types.ts";

const prompts = promptLibrary();

function node(over: Partial<TreeNode> & { id: string }): TreeNode {
  return { parent: null, depth: 0, thought: "", agent: null, prior: 1, children: [], visits: 0, returns: [], value: 0, pr: null, programs: [], terminal: false, status: "open", refinements: 0, ...over };
}

function ctxFor(agents: ScriptedPolicy[], reward: ScriptedReward, thoughts: string[] = [], events: string[] = []): SearchContext {
  return { problem: problem(0), agents, prompts, reward, signal: new AbortController().signal, thoughtsTo: () => thoughts, emit: (e) => void events.push(e) };
}

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} != ${b}`);

test("expand/world-model: sub-questions first, then one world-model answer per sub-question; thought = Q/A", async () => {
  const script = (prompt: string, agent: string) => {
    if (prompt.includes("candidate next sub-questions")) return `Sub-question: how is the input read (${agent})?\n2. **Sub-question:** which edge cases?\nSub-question: a third\nnoise`;
    const q = /Sub-question to answer:\n(.*)/.exec(prompt)?.[1] ?? "?";
    return `Answer: for "${q}":\n  line two`;
  };
  const agents = [new ScriptedPolicy("a", script), new ScriptedPolicy("b", script)];
  const e = await new PluginTester(expandPlugin).make<Expander>({ width: 2 }, { agents, prompts });
  const out = await e.expand(node({ id: "0" }), ctxFor(agents, new ScriptedReward(() => 0), ["Q: earlier\nA: yes"]));
  assert.deepEqual(
    out.map((p) => [p.agent, p.thought, p.final === true]),
    [
      ["a", 'Q: how is the input read (a)?\nA: for "how is the input read (a)?": line two', false],
      ["a", 'Q: which edge cases?\nA: for "which edge cases?": line two', false],
      ["b", 'Q: how is the input read (b)?\nA: for "how is the input read (b)?": line two', false],
      ["b", 'Q: which edge cases?\nA: for "which edge cases?": line two', false],
    ],
  );
  for (const a of agents) {
    assert.equal(a.calls.length, 3, "one sub-question call, then one answer per kept sub-question (width 2)");
    assert.match(a.calls[0]!.prompt, /Ask 2 different candidate next sub-questions/);
    assert.match(a.calls[0]!.prompt, /Reasoning so far:\n1\. Q: earlier\nA: yes/);
    assert.match(a.calls[1]!.prompt, /Sub-question to answer:\nhow is the input read/);
    assert.match(a.calls[2]!.prompt, /Sub-question to answer:\nwhich edge cases\?/);
    assert.match(a.calls[2]!.prompt, /1\. Q: earlier/);
  }
});

test("expand/world-model: <END> is a final child without a world-model call", async () => {
  const agent = new ScriptedPolicy("a", (p) => (p.includes("candidate next sub-questions") ? "Sub-question: last one\nSub-question: <END>" : "the answer"));
  const e = await new PluginTester(expandPlugin).make<Expander>({}, { agents: [agent], prompts });
  const out = await e.expand(node({ id: "0" }), ctxFor([agent], new ScriptedReward(() => 0)));
  assert.deepEqual(out, [
    { thought: "Q: last one\nA: the answer", agent: "a" },
    { thought: END_MARKER, agent: "a", final: true },
  ]);
  assert.equal(agent.calls.length, 2);
  assert.deepEqual(parseSubquestions("Subquestion 1: x\nsub question: y <END>\nSub-question:"), [
    { question: "x", final: false },
    { question: "y", final: true },
  ]);
  assert.equal(parseAnswer("**Answer:** 42"), "42");
  assert.equal(parseAnswer("  "), "(no answer)");
});

test("self-evaluation parsing: Rating: N, N/10, a bare number; out of range clamped; unparsable undefined", () => {
  assert.equal(parseSelfEval("Rating: 7"), 7);
  assert.equal(parseSelfEval("The step helps.\nRating: **8**"), 8);
  assert.equal(parseSelfEval("rating=6.5 because step 2 is fine"), 6.5);
  assert.equal(parseSelfEval("I would give it 9/10."), 9);
  assert.equal(parseSelfEval(" 4 "), 4);
  assert.equal(parseSelfEval("Rating: 15"), 10);
  assert.equal(parseSelfEval("Rating: -3"), 0);
  assert.equal(parseSelfEval("12/10, excellent"), 10);
  assert.equal(parseSelfEval("very useful"), undefined);
  assert.equal(parseSelfEval("step 2 of 3 looks useful"), undefined);
  assert.equal(parseSelfEval(""), undefined);
});

test("RAP reward: w * eval/10 + (1 - w) * pass rate; no rating -> pass rate; solved -> 1; unsolved < 1", () => {
  close(rapReward(0.5, 8, 0.5), 0.65);
  close(rapReward(0.25, 4, 0.2), 0.2 * 0.4 + 0.8 * 0.25);
  close(rapReward(0.5, undefined, 0.5), 0.5);
  close(rapReward(1, 0, 0.5), 1);
  close(rapReward(0.3, 10, 1), UNSOLVED_MAX);
  close(rapReward(0.3, 0, 0), 0.3);
});

test("simulate/self-evaluate: the node's agent rates the step; records carry the blended reward, the public pass rate and the rating", async () => {
  const script = (prompt: string) => (prompt.includes("Rate how useful") ? "Rating: 8" : "```python\nprint(1)\n```");
  const agents = [new ScriptedPolicy("a", script), new ScriptedPolicy("b", script)];
  const reward = new ScriptedReward(() => 0.5);
  const s = await new PluginTester(simulatePlugin).make<Simulator>({ n: 2 }, { agents, prompts, reward });
  const events: string[] = [];
  const step = "Q: how?\nA: sort";
  const records = await s.simulate(node({ id: "0.1", parent: "0", depth: 2, thought: step, agent: "b" }), ctxFor(agents, reward, ["Q: first\nA: yes", step], events));
  assert.equal(records.length, 4, "n programs per agent, as code-from-thoughts");
  for (const r of records) {
    close(r.reward!, 0.65);
    assert.equal(r.passRate, 0.5, "the true public pass rate stays as it is");
    assert.equal(r.selfEval, 8);
  }
  const rates = (a: ScriptedPolicy) => a.calls.filter((c) => c.prompt.includes("Rate how useful"));
  assert.equal(rates(agents[0]!).length, 0, "only the node's own agent rates");
  assert.equal(rates(agents[1]!).length, 1);
  assert.match(rates(agents[1]!)[0]!.prompt, /Reasoning before the step:\n1\. Q: first\nA: yes\n\nThe new step:\nQ: how\?\nA: sort/);
  assert.equal(reward.calls.length, 4);
  assert.ok(events.includes("rap.self_eval"));

  const w0 = await new PluginTester(simulatePlugin).make<Simulator>({ n: 1, self_eval_weight: 0 }, { agents, prompts, reward });
  for (const r of await w0.simulate(node({ id: "0.1", parent: "0", depth: 1, thought: step, agent: "a" }), ctxFor(agents, reward, [step]))) close(r.reward!, 0.5);
});

test("simulate/self-evaluate: no rating for the root, <END> or an unparsable reply; a passing program keeps 1", async () => {
  let evalReply = "no idea";
  const agent = new ScriptedPolicy("a", (p) => (p.includes("Rate how useful") ? evalReply : "```python\nprint(1)\n```"));
  let rate = 0.5;
  const reward = new ScriptedReward(() => rate);
  const s = await new PluginTester(simulatePlugin).make<Simulator>({ n: 1 }, { agents: [agent], prompts, reward });
  const ctx = ctxFor([agent], reward, ["Q: x\nA: y"]);
  const rated = () => agent.calls.filter((c) => c.prompt.includes("Rate how useful")).length;

  const root = await s.simulate(node({ id: "0" }), ctxFor([agent], reward));
  assert.deepEqual(root.map((r) => [r.passRate, r.selfEval, r.reward]), [[0.5, undefined, undefined]], "no rating: the pass rate is the reward");
  const end = await s.simulate(node({ id: "0.0", parent: "0", depth: 1, thought: END_MARKER, agent: "a" }), ctx);
  assert.equal(end[0]!.passRate, 0.5);
  assert.equal(rated(), 0);

  const child = node({ id: "0.1", parent: "0", depth: 1, thought: "Q: x\nA: y", agent: "a" });
  const unparsable = await s.simulate(child, ctx);
  assert.equal(rated(), 1);
  assert.deepEqual(unparsable.map((r) => [r.passRate, r.selfEval]), [[0.5, undefined]]);

  evalReply = "Rating: 2";
  rate = 1;
  const solved = await s.simulate(child, ctx);
  assert.deepEqual(solved.map((r) => [r.passRate, r.reward, r.selfEval]), [[1, 1, 2]]);
});
