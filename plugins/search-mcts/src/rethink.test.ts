/**
 * RethinkMCTS: refine/summary with `summarizer: same` (the node's own agent diagnoses and
 * regenerates), and workflows/rethink-mcts.yaml end to end on the scripted server (one agent).
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { PluginTester } from "@bdc/core/testing";
import { promptLibrary } from "@bdc/policy";
import { listFiles, PROBLEMS, runCli, stepOutputs, writeScriptedOverlay } from "./dev/e2e-harness.ts";
import { startScriptedServer, type ScriptedServer } from "./dev/scripted-server.ts";
import refinePlugin from "./refine-summary.ts";
import { problem } from "./test-doubles/problems-dataset-plugin.ts";
import { ScriptedPolicy, ScriptedReward } from "./test-doubles/scripted.ts";
import type { Refiner, SearchContext, TreeNode } from "./types.ts";

const prompts = promptLibrary();

function node(over: Partial<TreeNode> & { id: string }): TreeNode {
  return { parent: null, depth: 0, thought: "", agent: null, prior: 1, children: [], visits: 0, returns: [], value: 0, pr: null, programs: [], terminal: false, status: "open", refinements: 0, ...over };
}
const ctxFor = (agents: ScriptedPolicy[], reward: ScriptedReward): SearchContext => ({ problem: problem(0), agents, prompts, reward, signal: new AbortController().signal, thoughtsTo: () => [], emit: () => {} });
const ill = node({ id: "0.0", parent: "0", depth: 1, thought: "bad idea", agent: "b", pr: 0, programs: [{ agent: "b", code: "print(0)\n", passRate: 0, verdicts: ["wrong_answer", "wrong_answer"] }] });

test("refine/summary summarizer: same: the node's own agent summarises AND regenerates (one agent suffices)", async () => {
  const script = (prompt: string, agent: string) => (prompt.includes("what is wrong") ? `summary by ${agent}` : `Thought: fixed by ${agent}`);
  const agents = ["a", "b"].map((n) => new ScriptedPolicy(n, script));
  const reward = new ScriptedReward(() => 0);
  const same = await new PluginTester(refinePlugin).make<Refiner>({ summarizer: "same" }, { agents, prompts, reward });
  assert.deepEqual(await same.refine(ill, node({ id: "0", pr: 0.5 }), ctxFor(agents, reward)), { thought: "fixed by b", summary: "summary by b", summarizedBy: "b" });
  assert.equal(agents[0]!.calls.length, 0, "no other agent is asked");
  assert.equal(agents[1]!.calls.length, 2);
  assert.match(agents[1]!.calls[0]!.prompt, /what is wrong/);
  assert.match(agents[1]!.calls[1]!.prompt, /summary by b/);
  // A single agent.
  const solo = [new ScriptedPolicy("b", script)];
  const one = await new PluginTester(refinePlugin).make<Refiner>({ summarizer: "same", max_total: 2 }, { agents: solo, prompts, reward });
  assert.equal((await one.refine(ill, node({ id: "0", pr: 0.5 }), ctxFor(solo, reward)))?.summarizedBy, "b");
  assert.equal(solo[0]!.calls.length, 2);
  assert.equal(one.canRefine(node({ id: "0.1" }), 2), false, "at most max_total rethinks");
  // The default stays the paper's rule: the other agent summarises.
  const other = await new PluginTester(refinePlugin).make<Refiner>({}, { agents, prompts, reward });
  assert.equal((await other.refine(ill, node({ id: "0", pr: 0.5 }), ctxFor(agents, reward)))?.summarizedBy, "a");
});

let server: ScriptedServer;
let tmp: string;
before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-rethink-e2e-"));
  server = await startScriptedServer({ problems: PROBLEMS });
});
after(async () => {
  await server?.close();
  if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
});

test("rethink-mcts.yaml runs end to end on the scripted agent: one model, rethinks by the same model, no pruning", async () => {
  const dir = path.join(tmp, "run");
  const overlay = writeScriptedOverlay(path.join(tmp, "overlay.yaml"), { baseURL: `${server.url}/v1`, cacheDir: path.join(tmp, "cache"), limit: 3 });
  // No early stop and few rollouts: the searches meet ill children within seconds.
  const args = ["workflows/rethink-mcts.yaml", "--overlay", overlay, "--set", "plugins.search.with.rollouts=4", "--set", "plugins.search.with.early_stop=false"];
  const run = await runCli(args, dir);
  assert.equal(run.code, 0, `bdc run ${args.join(" ")} exited ${run.code}\n${run.err}\n${run.out}`);
  const search = stepOutputs<{ code: string; tree: string }>(dir, "search");
  assert.equal(search.length, 3);
  const files = listFiles(path.join(dir, "steps", "search"));
  for (const r of search) {
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.ok(files.includes(r.output!.tree) && files.includes(r.output!.tree.replace(/\.json$/, ".html")), `tree JSON + page of ${r.id}`);
  }
  const stats = search.map((r) => (JSON.parse(fs.readFileSync(path.join(dir, "steps", "search", r.output!.tree), "utf8")) as { stats: { pruned: number; refinements: number } }).stats);
  assert.equal(stats.reduce((n, s) => n + s.pruned, 0), 0, "RethinkMCTS does not prune");
  assert.ok(stats.reduce((n, s) => n + s.refinements, 0) > 0, "some thoughts were rethought");
  assert.ok(stats.every((s) => s.refinements <= 2), "at most 2 rethinks per search");
  const calls = server.calls();
  assert.deepEqual([...new Set(calls.map((c) => c.model))], ["gpt-4o-mini"], "a single agent");
  assert.ok(calls.some((c) => c.kind === "refine-summary") && calls.some((c) => c.kind === "regenerate-thought"));
  assert.match(fs.readFileSync(path.join(dir, "steps", "score", "table.md"), "utf8"), /RethinkMCTS/);
  assert.ok(fs.existsSync(path.join(dir, "steps", "export", "D_t2s.jsonl")));
});
