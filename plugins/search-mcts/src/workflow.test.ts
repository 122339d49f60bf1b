/**
 * The search step in a real workflow run: the policies are the real policy/openai plugin
 * (response cache included) talking to a scripted OpenAI-compatible server; the reward and the
 * problem dataset are test doubles. Checks: hidden tests never reach the search (the dataset
 * double's hidden tests carry a marker string that appears in no prompt, no reward call, no
 * output); every test the reward runs is public; a rerun served entirely from the cache
 * (cache: read-only) produces the same outputs and trees (modulo timing and the count of cache hits).
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { loadWorkflow, PluginRegistry, resolveWorkflow, runWorkflow } from "@bdc/core";
import { problem, SECRET } from "./test-doubles/problems-dataset-plugin.ts";
import { startScriptedServer } from "./test-doubles/scripted-openai-server.ts";

const repo = path.resolve(import.meta.dirname, "../../..");
const here = import.meta.dirname;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-search-"));
const server = await startScriptedServer();
after(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function workflow(cache: "read-write" | "read-only", log: string): string {
  const q = (s: string) => JSON.stringify(s);
  const use = (f: string) => q(path.join(here, f));
  const agent = (name: string) => `  ${name}: { use: policy/openai, with: { model: ${name}, baseURL: ${q(`${server.url}/v1`)}, cache_dir: cache, cache: ${cache} } }`;
  return [
    "name: search",
    "plugins:",
    `  problems: { use: ${use("test-doubles/problems-dataset-plugin.ts")}, with: { n: 2 } }`,
    agent("a"),
    agent("b"),
    "  prompts: { use: prompts/templates }",
    `  reward: { use: ${use("test-doubles/scripted-reward-plugin.ts")}, with: { log_file: ${q(log)} } }`,
    `  select: { use: ${use("select-var-pucb.ts")} }`,
    `  expand: { use: ${use("expand-agents.ts")}, with: { width: 2 } }`,
    `  simulate: { use: ${use("simulate-code-from-thoughts.ts")}, with: { n: 2 } }`,
    `  backup: { use: ${use("backup-discounted.ts")} }`,
    `  prune: { use: ${use("prune-ill-child.ts")} }`,
    `  refine: { use: ${use("refine-summary.ts")} }`,
    `  search: { use: ${use("tree-search-step.ts")}, with: { rollouts: 4, early_stop: false, max_depth: 3 } }`,
    "steps:",
    "  search: { for_each: problems }",
    "",
  ].join("\n");
}

async function run(name: string, cache: "read-write" | "read-only") {
  const file = path.join(tmp, `${name}.yaml`);
  const log = path.join(tmp, `${name}-reward.jsonl`);
  fs.writeFileSync(file, workflow(cache, log));
  const resolved = await resolveWorkflow(loadWorkflow({ file }), { registry: PluginRegistry.discover(repo), env: {} });
  const dir = path.join(tmp, name);
  const outcome = await runWorkflow({ workflow: resolved, dir });
  return { outcome, dir, log };
}

const outputsOf = (dir: string) =>
  fs.readFileSync(path.join(dir, "steps", "search", "outputs.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { id: string; output: Record<string, unknown> }).sort((a, b) => a.id.localeCompare(b.id));
const treeOf = (dir: string, id: string) => {
  const t = JSON.parse(fs.readFileSync(path.join(dir, "steps", "search", "trees", `${id}.json`), "utf8")) as { stats: Record<string, unknown> };
  delete t.stats.seconds; // timing
  delete t.stats.cached_calls; // all of the rerun's calls are cache hits
  return t;
};

test("a workflow run: hidden tests never reach the search; a rerun from the cache is identical", async () => {
  const first = await run("run1", "read-write");
  assert.equal(first.outcome.status, "succeeded", JSON.stringify(first.outcome.summary));
  const outs = outputsOf(first.dir);
  assert.deepEqual(outs.map((o) => o.id), ["p0", "p1"]);
  for (const o of outs) {
    assert.equal(o.output.public_pass_rate, 1);
    assert.equal(o.output.tree, `trees/${o.id}.json`);
    assert.equal(o.output.stopped_by, "rollouts");
    assert.ok((o.output.pairs as { p2t: unknown[] }).p2t.length > 0);
  }
  const summary = first.outcome.summary.steps.search as unknown as { summary: Record<string, unknown> };
  assert.equal((summary.summary as { solved_public: number }).solved_public, 2);

  // Hidden tests: nowhere in prompts, reward calls, outputs or trees; every reward test is public.
  const requests = server.requests();
  assert.ok(requests > 0);
  for (const p of server.prompts()) assert.ok(!p.includes(SECRET));
  const calls = fs.readFileSync(first.log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { op: string; tests: Array<{ input: string }> });
  assert.ok(calls.length > 0);
  const publicInputs = new Set([0, 1].flatMap((i) => problem(i).publicTests.map((t) => (t.kind === "stdio" ? t.input : ""))));
  for (const c of calls) {
    assert.notEqual(c.op, "evaluateOn");
    for (const t of c.tests) assert.ok(publicInputs.has(t.input), t.input);
  }
  assert.ok(!fs.readFileSync(first.log, "utf8").includes(SECRET));
  for (const f of fs.readdirSync(first.dir, { recursive: true }) as string[]) {
    const p = path.join(first.dir, f);
    if (fs.statSync(p).isFile()) assert.ok(!fs.readFileSync(p, "utf8").includes(SECRET), `${f} holds a hidden test`);
  }

  // The rerun, from the cache only (a miss would fail): same outputs, same trees.
  const second = await run("run2", "read-only");
  assert.equal(second.outcome.status, "succeeded", JSON.stringify(second.outcome.summary));
  assert.equal(server.requests(), requests, "the rerun sent no request");
  assert.deepEqual(outputsOf(second.dir), outs);
  for (const id of ["p0", "p1"]) assert.deepEqual(treeOf(second.dir, id), treeOf(first.dir, id));
});
