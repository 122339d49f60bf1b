/** workflows/tot.yaml (step/bfs-search) end to end on the scripted OpenAI-compatible server, 3 problems. */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { listFiles, PROBLEMS, readJsonl, runCli, stepOutputs, writeScriptedOverlay } from "./dev/e2e-harness.ts";
import { startScriptedServer, type ScriptedServer } from "./dev/scripted-server.ts";

let server: ScriptedServer;
let tmp: string;
before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-tot-e2e-"));
  server = await startScriptedServer({ problems: PROBLEMS });
});
after(async () => {
  await server?.close();
  if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
});

test("tot.yaml runs end to end on the scripted agent: BFS trees, the ToT row, pairs", async () => {
  const dir = path.join(tmp, "run");
  const overlay = writeScriptedOverlay(path.join(tmp, "overlay.yaml"), { baseURL: `${server.url}/v1`, cacheDir: path.join(tmp, "cache"), limit: 3 });
  const args = ["workflows/tot.yaml", "--overlay", overlay, "--set", "plugins.search.with.beam=2"];
  const run = await runCli(args, dir);
  assert.equal(run.code, 0, `bdc run ${args.join(" ")} exited ${run.code}\n${run.err}\n${run.out}`);
  const search = stepOutputs<{ code: string; public_pass_rate: number; tree: string; stopped_by: string }>(dir, "search");
  assert.equal(search.length, 3, "one search per problem");
  const files = listFiles(path.join(dir, "steps", "search"));
  for (const r of search) {
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.ok(r.output!.public_pass_rate >= 0 && r.output!.public_pass_rate <= 1);
    assert.ok(files.includes(r.output!.tree) && files.includes(r.output!.tree.replace(/\.json$/, ".html")), `tree JSON + page of ${r.id}`);
    const tree = JSON.parse(fs.readFileSync(path.join(dir, "steps", "search", r.output!.tree), "utf8")) as { beams: string[][]; config: { beam: number } };
    assert.equal(tree.config.beam, 2);
    assert.ok(tree.beams.every((b) => b.length <= 2), `beams of ${r.id}: ${JSON.stringify(tree.beams)}`);
  }
  assert.deepEqual([...new Set(server.calls().map((c) => c.model))], ["gpt-4o-mini"], "a single agent");
  assert.match(fs.readFileSync(path.join(dir, "steps", "score", "table.md"), "utf8"), /ToT/);
  const t2s = readJsonl(path.join(dir, "steps", "export", "D_t2s.jsonl"));
  assert.ok(t2s.length > 0, "thought->solution pairs exported");
});
