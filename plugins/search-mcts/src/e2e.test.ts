/**
 * End to end, without any model: the scripted OpenAI-compatible server (src/dev/scripted-server.ts)
 * plays both paper agents, and the real `bdc run` (in-process) runs the shipped workflows on 3 of
 * the bundled problems: workflows/tree-of-agents.yaml (plain, +Pruning, +Refine) and
 * workflows/zero-shot.yaml.
 *
 * How the agents are pointed at the server (src/dev/e2e-harness.ts writes the overlay): gpt keeps
 * policy/openai with `baseURL` = the server; claude is policy/anthropic in the paper's agents
 * file, which speaks the Messages API and not Chat Completions, so the test overlay switches it
 * to `use: policy/openai` with another model name on the same server (still two agents that
 * behave differently). API keys are dummies; responses are cached in a temporary folder.
 * The reward sandbox is bubblewrap where available, `none` otherwise (the test says which).
 * Nothing is skipped.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { checkSandbox } from "@bdc/reward-python";
import { listFiles, PROBLEMS, readJsonl, REPO, runCli, stepOutputs, writeScriptedOverlay } from "./dev/e2e-harness.ts";
import { startScriptedServer, type ScriptedServer } from "./dev/scripted-server.ts";

let server: ScriptedServer;
let tmp: string;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-search-e2e-"));
  server = await startScriptedServer({ problems: PROBLEMS });
});
after(async () => {
  await server?.close();
  if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
});

function overlay(name: string, t: { diagnostic(m: string): void }): string {
  t.diagnostic(`reward sandbox: ${checkSandbox().ok ? "bwrap" : "none (bubblewrap missing)"}`);
  return writeScriptedOverlay(path.join(tmp, `${name}.overlay.yaml`), { baseURL: `${server.url}/v1`, cacheDir: path.join(tmp, `cache-${name}`), limit: 3 });
}

/** Small search settings so that three problems search in a few seconds (early stop stays on, as shipped). */
const SMALL_SEARCH = ["--set", "plugins.search.with.rollouts=3"];

interface TreeStats {
  readonly pruned: number;
  readonly refinements: number;
}

const BOTH = ["claude-3-5-sonnet-scripted", "gpt-4o-mini"];

async function runTree(name: string, label: string, extraOverlays: string[], t: { diagnostic(m: string): void }, sets: string[] = [], expectModels = BOTH) {
  const dir = path.join(tmp, name);
  const args = ["workflows/tree-of-agents.yaml", ...extraOverlays.flatMap((o) => ["--overlay", o]), "--overlay", overlay(name, t), ...SMALL_SEARCH, ...sets];
  const before = server.requests();
  const run = await runCli(args, dir);
  assert.equal(run.code, 0, `bdc run ${args.join(" ")} exited ${run.code}\n${run.err}\n${run.out}`);

  const search = stepOutputs<{ code: string; public_pass_rate: number; tree: unknown; pairs: { p2t: unknown[]; t2s: unknown[] } }>(dir, "search");
  assert.equal(search.length, 3, "one search result per problem");
  for (const r of search) {
    assert.equal(r.error, undefined, `search ${r.id} failed: ${JSON.stringify(r.error)}`);
    assert.equal(typeof r.output?.code, "string");
    assert.ok(r.output?.tree !== undefined, `search ${r.id}: a tree`);
  }
  // The trees, one JSON file per problem, among the search step's artifacts.
  const trees = listFiles(path.join(dir, "steps", "search")).filter((f) => f.endsWith(".json"));
  for (const r of search) assert.ok(trees.some((f) => f.includes(r.id)), `a tree JSON for ${r.id} under steps/search (found: ${trees.join(", ")})`);
  const stats = trees.map((f) => (JSON.parse(fs.readFileSync(path.join(dir, "steps", "search", f), "utf8")) as { stats: TreeStats }).stats);
  const total = { pruned: stats.reduce((n, s) => n + s.pruned, 0), refinements: stats.reduce((n, s) => n + s.refinements, 0) };

  const table = path.join(dir, "steps", "score", "table.md");
  assert.ok(fs.existsSync(table), "score table.md");
  assert.match(fs.readFileSync(table, "utf8"), new RegExp(label.replace(/[+]/g, "\\+")), `the "${label}" row`);

  for (const f of ["D_p2t.jsonl", "D_t2s.jsonl"]) {
    const file = path.join(dir, "steps", "export", f);
    assert.ok(fs.existsSync(file), f);
    const rows = readJsonl(file) as Array<{ messages: Array<{ role: string; content: string }>; problem_id: string }>;
    assert.ok(rows.length > 0, `${f} has pairs`);
    for (const row of rows) assert.ok(Array.isArray(row.messages) && row.messages.length >= 2 && typeof row.problem_id === "string", `${f}: chat rows with provenance`);
    const keys = rows.map((r) => JSON.stringify(r.messages));
    assert.equal(new Set(keys).size, keys.length, `${f}: no duplicate pairs`);
  }
  // Both agents were asked (two model names on the scripted server).
  const models = new Set(server.calls().slice(before).map((c) => c.model));
  assert.deepEqual([...models].sort(), expectModels, "the agents that were asked");
  return { dir, search, total, calls: server.calls().slice(before) };
}

/** For the ablations: no early stop, so that searches go on past the first perfect program and meet ill children. */
const NO_EARLY_STOP = ["--set", "plugins.search.with.early_stop=false", "--set", "plugins.search.with.rollouts=4"];

test("tree-of-agents.yaml runs end to end on the scripted agents", async (t) => {
  const { total, calls } = await runTree("tree", "MC-Tree-Of-Agents", [], t);
  // The report's per-problem table: hidden verdict, pass rates, a link to each tree page (that exists).
  const dir = path.join(tmp, "tree");
  const report = fs.readFileSync(path.join(dir, "report.html"), "utf8");
  assert.match(report, /<h3>MC-Tree-Of-Agents: per problem<\/h3>/);
  const links = [...report.matchAll(/<a href="(steps\/search\/trees\/[^"]+\.html)">tree<\/a>/g)].map((m) => m[1]!);
  assert.equal(links.length, 3);
  for (const l of links) assert.ok(fs.existsSync(path.join(dir, l)), l);
  assert.match(report, /<td class="(succeeded|pending|failed)">(accepted|partial|failed)<\/td><td>\d+\.\d% of \d+<\/td><td>\d+\.\d%<\/td>/);
  assert.deepEqual(total, { pruned: 0, refinements: 0 }, "no prune or refine instance: nothing pruned or refined");
  assert.ok(!calls.some((c) => c.kind === "refine-summary" || c.kind === "regenerate-thought"));
});

test("tree-of-agents.yaml + configs/ablations/pruning.yaml", async (t) => {
  const { total, calls } = await runTree("pruning", "+Pruning", [path.join(REPO, "configs/ablations/pruning.yaml")], t, NO_EARLY_STOP);
  assert.ok(total.pruned > 0, "ill children were pruned");
  assert.equal(total.refinements, 0);
  assert.ok(!calls.some((c) => c.kind === "refine-summary" || c.kind === "regenerate-thought"));
});

test("tree-of-agents.yaml + configs/ablations/refine.yaml", async (t) => {
  const { total, calls } = await runTree("refine", "+Refine", [path.join(REPO, "configs/ablations/refine.yaml")], t, NO_EARLY_STOP);
  assert.ok(total.refinements > 0, "ill children were refined");
  assert.ok(calls.some((c) => c.kind === "refine-summary") && calls.some((c) => c.kind === "regenerate-thought"), "a summary and a regenerated thought were asked for");
});

test("tree-of-agents.yaml + configs/models/single-claude.yaml: a single-agent search", async (t) => {
  await runTree("single-claude", "MC-Tree-Of-Agents", [path.join(REPO, "configs/models/single-claude.yaml")], t, [], ["claude-3-5-sonnet-scripted"]);
});

test("zero-shot.yaml runs end to end on the scripted agent", async (t) => {
  const dir = path.join(tmp, "zero-shot");
  const args = ["workflows/zero-shot.yaml", "--overlay", overlay("zero-shot", t)];
  const before = server.requests();
  const run = await runCli(args, dir);
  assert.equal(run.code, 0, `bdc run ${args.join(" ")} exited ${run.code}\n${run.err}\n${run.out}`);
  const solve = stepOutputs<{ code: string; public_pass_rate: number; agent: string }>(dir, "solve");
  assert.equal(solve.length, 3);
  for (const r of solve) {
    assert.equal(r.output?.agent, "gpt");
    assert.match(r.output!.code, /\S/);
    assert.ok(r.output!.public_pass_rate >= 0 && r.output!.public_pass_rate <= 1);
  }
  assert.equal(server.requests() - before, 3, "one request per problem");
  assert.ok(server.calls().slice(before).every((c) => c.kind === "zero-shot" && c.problem_id !== undefined), "the server recognised the zero-shot prompts and their problems");
  const table = fs.readFileSync(path.join(dir, "steps", "score", "table.md"), "utf8");
  assert.match(table, /ZeroShot/);
  // Rerun: every answer comes from the response cache, the same programs.
  const again = await runCli(args, path.join(tmp, "zero-shot-again"));
  assert.equal(again.code, 0, again.err);
  assert.equal(server.requests() - before, 3, "the rerun asks nothing (cache)");
  // (outputs.jsonl is in finishing order: compare by problem id)
  const byId = (rows: Array<{ id: string; output?: unknown }>) => Object.fromEntries(rows.map((r) => [r.id, r.output]));
  assert.deepEqual(byId(stepOutputs(path.join(tmp, "zero-shot-again"), "solve")), byId(solve));
});
