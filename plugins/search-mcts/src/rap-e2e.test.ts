/** workflows/rap.yaml (step/tree-search with RAP's operators) end to end on the scripted OpenAI-compatible server, 3 problems. */
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
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-rap-e2e-"));
  server = await startScriptedServer({ problems: PROBLEMS });
});
after(async () => {
  await server?.close();
  if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
});

interface TreeFile {
  readonly nodes: ReadonlyArray<{ id: string; parent: string | null; thought: string; programs: ReadonlyArray<{ passRate: number; reward?: number; selfEval?: number }> }>;
}

test("rap.yaml runs end to end on the scripted agent: sub-question/answer trees with self-evaluations, the RAP row", async () => {
  const dir = path.join(tmp, "run");
  const overlay = writeScriptedOverlay(path.join(tmp, "overlay.yaml"), { baseURL: `${server.url}/v1`, cacheDir: path.join(tmp, "cache"), limit: 3 });
  const args = ["workflows/rap.yaml", "--overlay", overlay, "--set", "plugins.search.with.rollouts=3", "--set", "plugins.expand.with.width=2"];
  const run = await runCli(args, dir);
  assert.equal(run.code, 0, `bdc run ${args.join(" ")} exited ${run.code}\n${run.err}\n${run.out}`);
  const search = stepOutputs<{ code: string; public_pass_rate: number; tree: string }>(dir, "search");
  assert.equal(search.length, 3, "one search per problem");
  const files = listFiles(path.join(dir, "steps", "search"));
  let rated = 0;
  let children = 0;
  for (const r of search) {
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.ok(files.includes(r.output!.tree) && files.includes(r.output!.tree.replace(/\.json$/, ".html")), `tree JSON + page of ${r.id}`);
    const tree = JSON.parse(fs.readFileSync(path.join(dir, "steps", "search", r.output!.tree), "utf8")) as TreeFile;
    for (const n of tree.nodes) {
      if (n.parent === null || n.thought === "<END>") continue;
      children++;
      assert.match(n.thought, /^Q: .*step \d+\.\d+: should we .*\?\nA: .+$/, `thought of ${n.id}`);
      for (const p of n.programs) {
        if (p.selfEval === undefined) continue;
        rated++;
        assert.ok(p.selfEval >= 0 && p.selfEval <= 10 && p.reward !== undefined);
        const expected = p.passRate >= 1 ? 1 : Math.min(0.999, 0.5 * (p.selfEval / 10) + 0.5 * p.passRate);
        assert.ok(Math.abs(p.reward! - expected) < 1e-9, `reward of ${n.id}: ${JSON.stringify(p)}`);
      }
    }
  }
  assert.ok(children > 0 && rated > 0, `expanded children (${children}) with rated programs (${rated})`);
  const kinds = new Set(server.calls().map((c) => c.kind));
  for (const k of ["rap-subquestion", "rap-answer", "rap-self-eval", "code-from-thoughts"]) assert.ok(kinds.has(k as never), `the server saw ${k}: ${[...kinds].join(", ")}`);
  assert.ok(!kinds.has("unknown"), "every prompt recognised");
  assert.deepEqual([...new Set(server.calls().map((c) => c.model))], ["gpt-4o-mini"], "a single agent");
  assert.match(fs.readFileSync(path.join(dir, "steps", "score", "table.md"), "utf8"), /RAP/);
  assert.ok(fs.existsSync(path.join(dir, "steps", "export", "D_t2s.jsonl")), "pairs exported");
});
