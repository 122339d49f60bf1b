import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, test } from "node:test";
import { PluginRegistry } from "../registry.ts";
import { loadWorkflow } from "../workflow/load.ts";
import { resolveWorkflow } from "../workflow/resolve.ts";
import { global, probes } from "./fixtures/probe-step.ts";
import { runWorkflow } from "./run.ts";

const registry = PluginRegistry.of(import.meta.dirname, [
  { id: "step/probe", slot: "step", module: path.join(import.meta.dirname, "fixtures/probe-step.ts"), pkg: "test" },
  { id: "dataset/range", slot: "dataset", module: path.resolve(import.meta.dirname, "../../../tests/fixtures/plugins/range-dataset.ts"), pkg: "test" },
]);
const tmp: string[] = [];
afterEach(() => {
  probes.clear();
  global.maxInFlight = 0;
  for (const d of tmp.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function run(yaml: string, options: { resume?: string } = {}) {
  const dir = options.resume ?? fs.mkdtempSync(path.join(os.tmpdir(), "bdc-engine-"));
  if (options.resume === undefined) tmp.push(dir);
  const file = path.join(dir, "..", `${path.basename(dir)}.yaml`);
  fs.writeFileSync(file, yaml);
  tmp.push(file);
  const workflow = await resolveWorkflow(loadWorkflow({ file }), { registry });
  const runDir = path.join(dir, "run");
  return { ...(await runWorkflow({ workflow, dir: runDir, resume: options.resume !== undefined })), base: dir };
}

const outputs = (dir: string, step: string) =>
  fs.readFileSync(path.join(dir, "steps", step, "outputs.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { id: string; output: unknown });

test("independent steps run concurrently under the run-wide limit; dependents wait", async () => {
  const r = await run(`
run: { concurrency: 3 }
plugins:
  items: { use: dataset/range, with: { n: 12 } }
  a: { use: step/probe, with: { ms: 15 } }
  b: { use: step/probe, with: { ms: 15 } }
  c: { use: step/probe, with: { read: [a, b] } }
steps:
  a: { for_each: items, concurrency: 2 }
  b: { for_each: items, concurrency: 2 }
  c: { needs: [a, b] }
`);
  assert.equal(r.status, "succeeded");
  const [a, b, c] = ["a", "b", "c"].map((n) => probes.get(n)!);
  assert.equal(a!.maxInFlight, 2, "step limit");
  assert.equal(b!.maxInFlight, 2, "step limit");
  assert.equal(global.maxInFlight, 3, "run-wide limit, reached because a and b overlap");
  assert.ok(c!.startedAt >= Math.max(a!.endedAt, b!.endedAt), "c starts after both of its needs finished");
  assert.deepEqual(outputs(r.dir, "c")[0]!.output, { id: "all", data: null, read: { a: 12, b: 12 } });
  assert.ok([a, b, c].every((p) => p!.closed), "instances are closed when the run ends");
  assert.deepEqual(r.summary.steps.a!.summary, { ok: 12, failed: 0 });
  // stats() of every instance lands in summary.json, taken before the instances are closed.
  assert.deepEqual(r.summary.instances, { a: { items: 12, closed_yet: false }, b: { items: 12, closed_yet: false }, c: { items: 1, closed_yet: false } });
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(r.dir, "summary.json"), "utf8")).instances.c, { items: 1, closed_yet: false });
});

test("on_error continue: failed items are recorded, others go on, the run fails; resume retries only them", async () => {
  const yaml = (fail: string) => `
plugins:
  items: { use: dataset/range, with: { n: 5 } }
  a: { use: step/probe, with: { fail: [${fail}] } }
  b: { use: step/probe }
steps:
  a: { for_each: items }
  b: { for_each: a }
`;
  const first = await run(yaml("item-001, item-003"));
  assert.equal(first.status, "failed");
  assert.equal(first.exitCode, 1);
  assert.deepEqual(
    first.summary.steps.a!.failures.map((f) => [f.id, f.code]),
    [["item-001", "BDC_ITEM_FAILED"], ["item-003", "BDC_ITEM_FAILED"]],
  );
  assert.equal(first.summary.steps.b!.items, 3, "b works on a's successful outputs");
  assert.deepEqual(first.summary.steps.a!.summary, { ok: 3, failed: 2 });

  // Resume (same workflow): only the failed items run again.
  probes.clear();
  const again = await run(yaml("item-001, item-003"), { resume: first.base });
  assert.deepEqual([...probes.get("a")!.ran].sort(), ["item-001", "item-003"], "only the failed items run again");
  assert.equal(again.summary.steps.a!.resumed, 3);
  assert.equal(again.summary.sessions, 2);
});

test("on_error stop ends the run at the first failure; a step that fails as a whole skips its dependents", async () => {
  const stopped = await run(`
run: { concurrency: 1, on_error: stop }
plugins:
  items: { use: dataset/range, with: { n: 20 } }
  a: { use: step/probe, with: { fail: [item-002] } }
steps:
  a: { for_each: items }
`);
  assert.equal(stopped.status, "failed");
  assert.deepEqual(probes.get("a")!.ran, ["item-000", "item-001", "item-002"]);

  probes.clear();
  const broken = await run(`
plugins:
  items: { use: dataset/range, with: { n: 2 } }
  a: { use: step/probe, with: { summarize_throws: true } }
  b: { use: step/probe }
steps:
  a: { for_each: items }
  b: { for_each: a }
`);
  assert.equal(broken.status, "failed");
  assert.equal(broken.summary.steps.a!.status, "failed");
  assert.match(broken.summary.steps.a!.error!.message, /summary broke/);
  assert.equal(broken.summary.steps.b!.status, "skipped");
  assert.equal(probes.get("b"), undefined, "a skipped step's instance is never built (instances are built when their step starts)");
});

test("a step's instances are built when the step starts: after the steps it needs (they may read their files)", async () => {
  const done = await run(`
plugins:
  items: { use: dataset/range, with: { n: 3 } }
  a: { use: step/probe, with: { ms: 20 } }
  b: { use: step/probe }
  c: { use: step/probe }
steps:
  a: { for_each: items }
  b: { for_each: a }
  c: { for_each: items }
`);
  assert.equal(done.status, "succeeded");
  assert.ok(probes.get("b")!.builtAt >= probes.get("a")!.endedAt, "b is built after a has finished");
  assert.ok(probes.get("c")!.builtAt < probes.get("a")!.endedAt, "c, which needs nothing, does not wait for a");
  assert.ok(probes.get("a")!.closed && probes.get("b")!.closed, "every built instance is closed at the end");
});

test("an instance that cannot be built when its step starts fails that step, recorded; the earlier step's work is kept", async () => {
  const outcome = await run(`
plugins:
  items: { use: dataset/range, with: { n: 2 } }
  a: { use: step/probe }
  b: { use: step/probe, with: { make_throws: true } }
steps:
  a: { for_each: items }
  b: { for_each: a }
`);
  assert.equal(outcome.status, "failed");
  assert.equal(outcome.summary.steps.a!.status, "succeeded");
  assert.deepEqual(probes.get("a")!.ran, ["item-000", "item-001"]);
  assert.equal(outcome.summary.steps.b!.status, "failed");
  assert.match(outcome.summary.steps.b!.error!.message, /cannot build instance "b": cannot be built on purpose/);
});

test("an aborted signal interrupts the run; resume finishes it without redoing items", async () => {
  const yaml = `
run: { concurrency: 2 }
plugins:
  items: { use: dataset/range, with: { n: 30 } }
  a: { use: step/probe, with: { ms: 10 } }
steps:
  a: { for_each: items }
`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-engine-"));
  tmp.push(dir);
  const file = path.join(dir, "wf.yaml");
  fs.writeFileSync(file, yaml);
  const workflow = await resolveWorkflow(loadWorkflow({ file }), { registry });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 60);
  const first = await runWorkflow({ workflow, dir: path.join(dir, "run"), signal: controller.signal });
  assert.equal(first.status, "interrupted");
  assert.equal(first.exitCode, 130);
  const done = outputs(first.dir, "a").map((o) => o.id);
  assert.ok(done.length > 0 && done.length < 30, `interrupted mid-way (${done.length})`);

  probes.clear();
  const second = await runWorkflow({ workflow, dir: path.join(dir, "run"), resume: true });
  assert.equal(second.status, "succeeded");
  const rerun = probes.get("a")!.ran;
  assert.deepEqual(rerun.filter((id) => done.includes(id)), [], "finished items are not run again");
  assert.equal(new Set(outputs(second.dir, "a").map((o) => o.id)).size, 30);
});

test("a step may read only the outputs of the steps it needs", async () => {
  const r = await run(`
plugins:
  items: { use: dataset/range, with: { n: 1 } }
  a: { use: step/probe }
  b: { use: step/probe, with: { read: [a] } }
steps:
  a: { for_each: items }
  b: {}
`);
  assert.equal(r.summary.steps.b!.status, "failed");
  assert.match(r.summary.steps.b!.failures[0]!.message, /reads outputs of "a" without needing it/);
  assert.equal(r.summary.steps.b!.failures[0]!.code, "BDC_UNKNOWN_STEP");
});

test("fan-out: for_each {step, items} runs once per element of a list in each output; each element resumes on its own", async () => {
  const yaml = (fail: string) => `
plugins:
  items: { use: dataset/range, with: { n: 2 } }
  split: { use: step/probe, with: { parts: 3, ms: 1 } }
  each: { use: step/probe, with: { fail: [${fail}], ms: 1 } }
steps:
  split: { for_each: items }
  each: { for_each: { step: split, items: parts } }
`;
  const first = await run(yaml(`"item-000-p1"`));
  assert.equal(first.status, "failed");
  const each = first.summary.steps["each"]!;
  assert.deepEqual([each.items, each.done, each.failed], [6, 5, 1]);
  assert.deepEqual(probes.get("each")!.ran.sort(), ["item-000-p0", "item-000-p1", "item-000-p2", "item-001-p0", "item-001-p1", "item-001-p2"]);
  const row = outputs(first.dir, "each").find((o) => o.id === "item-001-p2")!;
  assert.deepEqual((row.output as { data: unknown }).data, { id: "item-001-p2", i: 2 }, "the element is the item's data");

  probes.clear();
  const again = await run(yaml(""), { resume: first.base });
  assert.equal(again.status, "succeeded");
  assert.deepEqual(probes.get("each")!.ran, ["item-000-p1"], "only the failed element runs again");
  assert.deepEqual(probes.get("split")?.ran ?? [], [], "the source step is not redone");
});

test("fan-out errors: an unknown source step is located; an output without the list fails the step, naming it", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-engine-"));
  tmp.push(dir);
  const file = path.join(dir, "wf.yaml");
  fs.writeFileSync(file, "plugins:\n  each: { use: step/probe }\nsteps:\n  each: { for_each: { step: splitt, items: parts } }\n");
  await assert.rejects(resolveWorkflow(loadWorkflow({ file }), { registry }), (e: unknown) => /steps\.each\.for_each\.step/.test(JSON.stringify(e, Object.getOwnPropertyNames(e))) || /no step named "splitt"/.test(String((e as Error).message)));
  const r = await run(`
plugins:
  items: { use: dataset/range, with: { n: 1 } }
  split: { use: step/probe }
  each: { use: step/probe }
steps:
  split: { for_each: items }
  each: { for_each: { step: split, items: parts } }
`);
  assert.equal(r.status, "failed");
  assert.match(r.summary.steps["each"]!.error!.message, /step "split", item "item-000": its output has no list "parts" to fan out over/);
});
