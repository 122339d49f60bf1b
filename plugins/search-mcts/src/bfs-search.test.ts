/** step/bfs-search's loop (runBfs) with scripted agents and reward: beam, expansion, early stop, budgets. */
import * as assert from "node:assert/strict";
import { test } from "node:test";
import { PluginTester } from "@bdc/core/testing";
import { promptLibrary } from "@bdc/policy";
import { runBfs, type BfsConfig } from "./bfs-search-step.ts";
import expandPlugin from "./expand-agents.ts";
import simulatePlugin from "./simulate-code-from-thoughts.ts";
import { problem } from "./test-doubles/problems-dataset-plugin.ts";
import { ScriptedPolicy, ScriptedReward, type Script } from "./test-doubles/scripted.ts";
import type { Expander, Simulator } from "./types.ts";

const prompts = promptLibrary();
const CONFIG: BfsConfig = { beam: 2, max_depth: 3, early_stop: false, export_min_pass_rate: 1, pairs: "all-nodes" };

/** The last numbered thought of a prompt's reasoning section ("" when none). */
function lastThought(prompt: string): string {
  const m = /Reasoning(?: so far)?:\n([\s\S]*?)(?:\n\n|$)/.exec(prompt);
  const lines = (m?.[1] ?? "").split("\n").filter((l) => /^\d+\. /.test(l));
  return lines.at(-1)?.replace(/^\d+\. /, "") ?? "";
}

/** Expand: thought "<path>/<agent><k>" (a path label); code: prints the last thought's label. */
const pathScript =
  (finalAll = false): Script =>
  (prompt, agent) => {
    if (prompt.includes("propose the\nnext reasoning step") || prompt.includes("candidate next steps")) {
      const width = Number(/Give (\d+) different/.exec(prompt)?.[1] ?? 3);
      const last = lastThought(prompt);
      return Array.from({ length: width }, (_, k) => (finalAll ? "Thought: <END>" : `Thought: ${last === "" ? "" : `${last}/`}${agent}${k}`)).join("\n");
    }
    if (prompt.includes("Write a Python 3 program")) return `\`\`\`python\nprint("${lastThought(prompt)}")\n\`\`\``;
    return "?";
  };

function setup(rates: Record<string, number>, opts: { width?: number; finalAll?: boolean } = {}) {
  const agents = ["a", "b"].map((n) => new ScriptedPolicy(n, pathScript(opts.finalAll)));
  const reward = new ScriptedReward((code) => rates[/print\("(.*)"\)/.exec(code)?.[1] ?? ""] ?? 0.1);
  const deps = { agents, prompts, reward };
  return {
    agents,
    run: async (config: Partial<BfsConfig> = {}, now?: () => number) =>
      runBfs({
        problem: problem(0),
        agents,
        prompts,
        reward,
        operators: {
          expand: await new PluginTester(expandPlugin).make<Expander>({ width: opts.width ?? 3 }, deps),
          simulate: await new PluginTester(simulatePlugin).make<Simulator>({ n: 1 }, deps),
        },
        config: { ...CONFIG, ...config },
        ...(now ? { now } : {}),
      }),
  };
}

test("bfs: keeps exactly the top-beam states per depth (ties: generation order) and expands every kept state", async () => {
  // depth 1: a0 a1 a2 b0 b1 b2 = 0.0 .. 0.5; a1 and b0 tie at 0.6: a1 (earlier) first.
  const { run } = setup({ "": 0, a0: 0.2, a1: 0.6, a2: 0.1, b0: 0.6, b1: 0.3, b2: 0, "b0/b2": 0.9 });
  const r = await run();
  assert.deepEqual(r.beams, [["0"], ["0.1", "0.3"], ["0.3.5", "0.1.0"], []], "depth 3 is max_depth: nothing left to keep");
  assert.equal(r.stats.stopped_by, "max_depth");
  assert.equal(r.stats.depth, 3);
  assert.equal(r.stats.nodes, 1 + 6 + 12 + 12);
  assert.equal(r.stats.expansions, 1 + 2 + 2);
  assert.equal(r.stats.dropped, 4 + 10);
  const byId = new Map(r.nodes.map((n) => [n.id, n]));
  for (const beam of r.beams) for (const id of beam) assert.equal(byId.get(id)!.children.length, 6, `kept ${id} expanded by both agents`);
  for (const n of r.nodes) {
    const kept = r.beams.some((b) => b.includes(n.id));
    if (!kept) assert.equal(n.children.length, 0, `${n.id} not kept: not expanded`);
    assert.notEqual(n.pr, null, `${n.id} simulated`);
    assert.equal(n.status, "open");
  }
  assert.equal(byId.get("0.3.5")!.thought, "b0/b2");
  assert.equal(byId.get("0.3.5")!.value, 0.9);
  assert.deepEqual(r.best, { code: 'print("b0/b2")\n', passRate: 0.9, agent: "a", node: "0.3.5" }, "both agents wrote it; the first program found wins");
  assert.equal(r.stats.llm_calls, 2 + 5 * 2 + 30 * 2, "1 code call per agent per state, 1 expand call per agent per expansion");
  const json = r.toJSON({ config: CONFIG }) as { beams: unknown; nodes: Array<{ id: string; expanded: boolean }> };
  assert.deepEqual(json.beams, r.beams);
  assert.deepEqual(json.nodes.filter((n) => n.expanded).map((n) => n.id), ["0", "0.1", "0.3", "0.1.0", "0.3.5"]);
});

test("bfs: a larger beam than candidates keeps them all; final states are not kept", async () => {
  const { run } = setup({}, { width: 1 });
  const r = await run({ beam: 5, max_depth: 2 });
  assert.deepEqual(r.beams, [["0"], ["0.0", "0.1"], []]);
  const ended = await setup({}, { finalAll: true }).run({ beam: 5 });
  assert.equal(ended.stats.stopped_by, "exhausted", "every candidate is final: nothing to expand");
  assert.deepEqual(ended.beams, [["0"], []]);
});

test("bfs: early stop at the first program passing every public test; pairs from its path", async () => {
  const { agents, run } = setup({ a1: 1 });
  const r = await run({ early_stop: true });
  assert.equal(r.stats.stopped_by, "early_stop");
  assert.equal(r.best.node, "0.1");
  assert.equal(r.best.passRate, 1);
  assert.equal(r.stats.nodes, 7, "all candidates of depth 1 were generated");
  assert.equal(r.nodes.filter((n) => n.pr !== null).length, 3, "root, 0.0, 0.1 simulated; the rest not");
  assert.equal(r.stats.llm_calls, 2 + 2 + 2 * 2);
  assert.equal(agents[0]!.calls.length + agents[1]!.calls.length, r.stats.llm_calls);
  assert.equal(r.pairs.p2t.length, 1);
  assert.deepEqual(r.pairs.p2t[0]!.messages[1], { role: "assistant", content: '["Clue of Step 1: a1"]' });
  assert.equal(r.pairs.t2s.length, 1);
  // The root already perfect: nothing is expanded.
  const atRoot = await setup({ "": 1 }).run({ early_stop: true });
  assert.equal(atRoot.stats.stopped_by, "early_stop");
  assert.equal(atRoot.stats.nodes, 1);
});

test("bfs: budgets (LLM calls, tokens, seconds) stop the search", async () => {
  const { run } = setup({});
  const byCalls = await run({ max_llm_calls: 7 });
  assert.equal(byCalls.stats.stopped_by, "max_llm_calls");
  assert.ok(byCalls.stats.llm_calls >= 7 && byCalls.stats.llm_calls <= 7 + 2, `${byCalls.stats.llm_calls} calls`);
  const byTokens = await run({ max_tokens: 500 });
  assert.equal(byTokens.stats.stopped_by, "max_tokens");
  assert.ok(byTokens.stats.nodes < 31);
  let t = 0;
  const bySeconds = await run({ max_seconds: 5 }, () => (t += 1000));
  assert.equal(bySeconds.stats.stopped_by, "max_seconds");
});
