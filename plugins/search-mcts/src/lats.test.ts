/** LATS operators (expand/programs, simulate/program) with scripted agents and a scripted reward. */
import * as assert from "node:assert/strict";
import { test } from "node:test";
import { PluginTester } from "@bdc/core/testing";
import { promptLibrary } from "@bdc/policy";
import expandPlugin from "./expand-programs.ts";
import simulatePlugin from "./simulate-program.ts";
import { problem } from "./test-doubles/problems-dataset-plugin.ts";
import { ScriptedPolicy, ScriptedReward } from "./test-doubles/scripted.ts";
import type { Expander, SearchContext, Simulator, TreeNode } from "./types.ts";

const prompts = promptLibrary();

function node(over: Partial<TreeNode> & { id: string }): TreeNode {
  return { parent: null, depth: 0, thought: "", agent: null, prior: 1, children: [], visits: 0, returns: [], value: 0, pr: null, programs: [], terminal: false, status: "open", refinements: 0, ...over };
}

function ctxFor(agents: ScriptedPolicy[], reward: ScriptedReward): SearchContext {
  return { problem: problem(0), agents, prompts, reward, signal: new AbortController().signal, thoughtsTo: () => [], emit: () => {} };
}

const programReply = (prompt: string, agent: string) => `\`\`\`python\n# ${agent} ${prompt.length}\nprint(1)\n\`\`\``;

test("expand/programs: root asks for programs from the problem; a child gets its program, its public results and the path's reflections", async () => {
  const agent = new ScriptedPolicy("gpt", programReply);
  const reward = new ScriptedReward(() => 0.5);
  const ctx = ctxFor([agent], reward);
  const expander = await new PluginTester(expandPlugin).make<Expander>({ width: 2 }, { agents: [agent], prompts });

  const root = node({ id: "0" });
  const first = await expander.expand(root, ctx);
  assert.equal(first.length, 2, "width programs per agent");
  assert.ok(first.every((p) => p.agent === "gpt" && p.thought.includes("print(1)") && !p.thought.includes("```")), "the thought is the extracted program");
  assert.notEqual(first[0]!.thought, first[1]!.thought, "samples differ (vary: message)");
  assert.match(agent.calls[0]!.prompt, /Previous attempt:\n\(none: this is the first attempt\)/);
  assert.match(agent.calls[0]!.prompt, /Problem 0: print the depth/);
  assert.match(agent.calls[1]!.prompt, /Attempt 2 of 2/);
  assert.equal(reward.calls.length, 0, "expansion runs no test");

  // A path root -> a (failed, reflected) -> b (failed, reflected).
  const a = node({ id: "0.0", parent: "0", depth: 1, thought: "print('A')\n", agent: "gpt" });
  a.programs.push({ agent: "gpt", code: a.thought, passRate: 0.5, verdicts: ["passed", "wrong_answer"], reflection: "REFLECTION-A: off by one" });
  root.children.push(a.id);
  await expander.expand(a, ctx);
  const b = node({ id: "0.0.0", parent: "0.0", depth: 2, thought: "print('B-PROGRAM')\n", agent: "gpt" });
  b.programs.push({ agent: "gpt", code: b.thought, passRate: 0, verdicts: ["wrong_answer", "runtime_error"], reflection: "REFLECTION-B: wrong parsing" });
  a.children.push(b.id);
  const before = agent.calls.length;
  await expander.expand(b, ctx);
  const prompt = agent.calls[before]!.prompt;
  assert.match(prompt, /Previous attempt:\n```python\nprint\('B-PROGRAM'\)\n```/, "the parent's program");
  assert.match(prompt, /0 of 2 public tests passed/, "its public-test results");
  assert.match(prompt, /public test 1: wrong_answer\ninput:\nPUBLIC-IN-0-a/);
  assert.match(prompt, /public test 2: runtime_error/);
  assert.match(prompt, /1\. REFLECTION-A: off by one\n2\. REFLECTION-B: wrong parsing/, "every reflection on the path, oldest first");
  assert.doesNotMatch(prompt, /print\('A'\)/, "only the parent's program is shown");
});

test("simulate/program: a passing program costs no LLM call; a failing one, one reflection call kept on the record", async () => {
  const agent = new ScriptedPolicy("gpt", (prompt) => (prompt.includes("Reflect on why") ? "  The loop stops one early.  " : "unexpected"));
  const other = new ScriptedPolicy("claude", () => "unexpected");
  const reward = new ScriptedReward((code) => (code.includes("GOOD") ? 1 : 0.5));
  const ctx = ctxFor([other, agent], reward);
  const sim = await new PluginTester(simulatePlugin).make<Simulator>({}, { agents: [other, agent], prompts, reward });

  assert.deepEqual(await sim.simulate(node({ id: "0" }), ctx), [], "the root holds no program");
  assert.equal(reward.calls.length, 0);

  const good = await sim.simulate(node({ id: "0.0", parent: "0", depth: 1, thought: "print('GOOD')\n", agent: "gpt" }), ctx);
  assert.deepEqual(good, [{ agent: "gpt", code: "print('GOOD')\n", passRate: 1, verdicts: ["passed", "passed"] }]);
  assert.equal(agent.calls.length + other.calls.length, 0, "no LLM call for a passing program");
  assert.deepEqual(reward.calls.map((c) => [c.op, c.tests]), [["evaluate", problem(0).publicTests]], "judged on the public tests");

  const bad = await sim.simulate(node({ id: "0.1", parent: "0", depth: 1, thought: "print('BAD')\n", agent: "gpt" }), ctx);
  assert.equal(bad.length, 1);
  assert.equal(bad[0]!.passRate, 0.5);
  assert.equal(bad[0]!.reflection, "The loop stops one early.");
  assert.equal(agent.calls.length, 1, "one reflection call, by the node's agent");
  assert.equal(other.calls.length, 0);
  assert.match(agent.calls[0]!.prompt, /print\('BAD'\)/);
  assert.match(agent.calls[0]!.prompt, /1 of 2 public tests passed/);
});
