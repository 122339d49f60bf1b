/**
 * A stopped search run resumes problem by problem: problems finished before the stop are not
 * searched again, the one in flight is searched from scratch, and every problem ends up once.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { loadWorkflow, PluginRegistry, resolveWorkflow, runWorkflow } from "@bdc/core";
import { PROBLEMS, readJsonl, REPO, writeScriptedOverlay } from "./dev/e2e-harness.ts";
import { startScriptedServer } from "./dev/scripted-server.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-search-resume-"));
const server = await startScriptedServer({ problems: PROBLEMS, log: () => {} });
after(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("stop after the first finished problem, resume: nothing finished is searched again", { timeout: 120_000 }, async () => {
  const overlay = writeScriptedOverlay(path.join(tmp, "agents.yaml"), {
    baseURL: `${server.url}/v1`,
    cacheDir: path.join(tmp, "cache"),
    limit: 6,
    extra: { search: { with: { rollouts: 2, early_stop: false } } },
  });
  const loaded = loadWorkflow({ file: path.join(REPO, "workflows/tree-of-agents.yaml"), overlays: [overlay], sets: ["run.concurrency=1"] });
  const workflow = await resolveWorkflow(loaded, { registry: PluginRegistry.discover(REPO), env: { OPENAI_API_KEY: "x", ANTHROPIC_API_KEY: "x" } });
  const dir = path.join(tmp, "run");
  const outputs = () => {
    const f = path.join(dir, "steps/search/outputs.jsonl");
    return fs.existsSync(f) ? (readJsonl(f) as Array<{ id: string }>).map((o) => o.id) : [];
  };
  const controller = new AbortController();
  const poll = setInterval(() => outputs().length >= 1 && controller.abort(), 5);
  const first = await runWorkflow({ workflow, dir, signal: controller.signal });
  clearInterval(poll);
  assert.equal(first.status, "interrupted");
  const done = outputs();
  assert.ok(done.length >= 1 && done.length < 6, `stopped mid-way (${done.length} problems done)`);

  const second = await runWorkflow({ workflow, dir, resume: true });
  assert.equal(second.status, "succeeded");
  const all = outputs();
  assert.equal(all.length, 6, "every problem once");
  assert.equal(new Set(all).size, 6);
  const events = (readJsonl(path.join(dir, "events.jsonl")) as Array<{ type: string; step?: string; item?: string; session?: number }>);
  const secondStart = events.findIndex((e) => e.type === "run.start" && e.session === 2);
  const redone = events.slice(secondStart).filter((e) => e.type === "item.done" && e.step === "search" && done.includes(e.item!));
  assert.deepEqual(redone, [], "problems finished before the stop are not searched again");
  assert.equal(second.summary.steps.search!.resumed, done.length);
  assert.equal(second.summary.steps.score!.items, 6);
});
