/**
 * End to end, without any model: workflows/lats.yaml on 3 bundled problems against the scripted
 * OpenAI-compatible server (src/dev/scripted-server.ts answers the lats-expand prompt with a
 * program, deliberately broken by hash, and the reflection prompt with a reflection).
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { listFiles, PROBLEMS, runCli, stepOutputs, writeScriptedOverlay } from "./dev/e2e-harness.ts";
import { startScriptedServer, type ScriptedServer } from "./dev/scripted-server.ts";

let server: ScriptedServer;
let tmp: string;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-lats-e2e-"));
  server = await startScriptedServer({ problems: PROBLEMS });
});
after(async () => {
  await server?.close();
  if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
});

test("lats.yaml runs end to end on the scripted agent", async () => {
  const dir = path.join(tmp, "lats");
  const overlay = writeScriptedOverlay(path.join(tmp, "lats.overlay.yaml"), { baseURL: `${server.url}/v1`, cacheDir: path.join(tmp, "cache"), limit: 3 });
  const args = ["workflows/lats.yaml", "--overlay", overlay, "--set", "plugins.search.with.rollouts=3", "--set", "plugins.expand.with.width=3"];
  const run = await runCli(args, dir);
  assert.equal(run.code, 0, `bdc run ${args.join(" ")} exited ${run.code}\n${run.err}\n${run.out}`);

  const search = stepOutputs<{ code: string; tree: string; llm_calls: number }>(dir, "search");
  assert.equal(search.length, 3, "one search result per problem");
  for (const r of search) assert.equal(r.error, undefined, `search ${r.id} failed: ${JSON.stringify(r.error)}`);
  const trees = listFiles(path.join(dir, "steps", "search")).filter((f) => f.endsWith(".json") && f.startsWith("trees"));
  assert.equal(trees.length, 3, `a tree per problem (${trees.join(", ")})`);
  for (const f of trees) {
    const tree = JSON.parse(fs.readFileSync(path.join(dir, "steps", "search", f), "utf8")) as { nodes: Array<{ id: string; thought: string; pr: number | null; programs: Array<{ code: string; passRate: number; reflection?: string }> }> };
    const children = tree.nodes.filter((n) => n.id !== "0");
    assert.ok(children.length > 0, `${f}: the root was expanded`);
    // Children after an early stop are left unsimulated (pr null).
    for (const n of children.filter((c) => c.pr !== null)) {
      assert.equal(n.programs.length, 1, `${f} ${n.id}: one program`);
      assert.equal(n.programs[0]!.code, n.thought, "the node's thought is its program");
      if (n.programs[0]!.passRate < 1) assert.ok(n.programs[0]!.reflection, `${f} ${n.id}: a failing program is reflected on`);
    }
  }
  const calls = server.calls();
  assert.ok(calls.some((c) => c.kind === "lats-expand"), "lats-expand prompts were answered");
  assert.ok(calls.every((c) => c.kind === "lats-expand" || c.kind === "reflection"), `only expansion and reflection prompts (${[...new Set(calls.map((c) => c.kind))].join(", ")})`);
  assert.deepEqual([...new Set(calls.map((c) => c.model))], ["gpt-4o-mini"], "a single agent");

  const table = path.join(dir, "steps", "score", "table.md");
  assert.ok(fs.existsSync(table), "score table.md");
  assert.match(fs.readFileSync(table, "utf8"), /LATS/, 'the "LATS" row');
  assert.ok(fs.existsSync(path.join(dir, "steps", "export", "D_t2s.jsonl")), "pairs exported");
});
