/**
 * End to end, without any model: workflows/reflexion.yaml and workflows/ldb.yaml through the real
 * `bdc run` (in-process) on 3 bundled problems, the scripted OpenAI-compatible server playing gpt
 * (src/dev/e2e-harness.ts writes the overlay; the server recognises the repair prompts as "repair").
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { checkSandbox } from "@bdc/reward-python";
import { PROBLEMS, runCli, stepOutputs, writeScriptedOverlay } from "./dev/e2e-harness.ts";
import { startScriptedServer, type ScriptedServer } from "./dev/scripted-server.ts";
import type { IterativeRepairOutput } from "./iterative-repair-step.ts";

let server: ScriptedServer;
let tmp: string;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-repair-e2e-"));
  server = await startScriptedServer({ problems: PROBLEMS });
});
after(async () => {
  await server?.close();
  if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
});

async function runWorkflow(name: string, label: string, t: { diagnostic(m: string): void }) {
  t.diagnostic(`reward sandbox: ${checkSandbox().ok ? "bwrap" : "none (bubblewrap missing)"}`);
  const overlay = writeScriptedOverlay(path.join(tmp, `${name}.overlay.yaml`), { baseURL: `${server.url}/v1`, cacheDir: path.join(tmp, `cache-${name}`), limit: 3 });
  const dir = path.join(tmp, name);
  const args = [`workflows/${name}.yaml`, "--overlay", overlay];
  const before = server.requests();
  const run = await runCli(args, dir);
  assert.equal(run.code, 0, `bdc run ${args.join(" ")} exited ${run.code}\n${run.err}\n${run.out}`);
  const solve = stepOutputs<IterativeRepairOutput>(dir, "solve");
  assert.equal(solve.length, 3, "one result per problem");
  for (const r of solve) {
    assert.equal(r.error, undefined, `${r.id}: ${JSON.stringify(r.error)}`);
    const o = r.output!;
    assert.equal(o.agent, "gpt");
    assert.match(o.code, /\S/);
    assert.ok(o.iterations >= 1 && o.iterations <= 4 && o.history.length === o.iterations);
    assert.equal(o.public_pass_rate, Math.max(...o.history.map((h) => h.public_pass_rate)));
    // Stops on success: only the last attempt may pass every public test.
    assert.ok(o.history.slice(0, -1).every((h) => h.public_pass_rate < 1));
  }
  const table = fs.readFileSync(path.join(dir, "steps", "score", "table.md"), "utf8");
  assert.match(table, new RegExp(`\\b${label}\\b`), `the "${label}" row`);
  const calls = server.calls().slice(before);
  assert.ok(calls.every((c) => c.model === "gpt-4o-mini" && c.kind !== "unknown"), `every prompt recognised: ${JSON.stringify(calls)}`);
  return { solve, calls };
}

test("reflexion.yaml runs end to end on the scripted agent", async (t) => {
  const { solve, calls } = await runWorkflow("reflexion", "Reflexion", t);
  const repairs = solve.reduce((n, r) => n + r.output!.iterations - 1, 0);
  assert.equal(calls.filter((c) => c.kind === "zero-shot").length, 3);
  assert.equal(calls.filter((c) => c.kind === "repair").length, repairs);
  assert.equal(calls.filter((c) => c.kind === "reflection").length, repairs, "one reflection before each repair");
  t.diagnostic(`repairs: ${repairs}`);
});

test("ldb.yaml runs end to end on the scripted agent", async (t) => {
  const { solve, calls } = await runWorkflow("ldb", "LDB", t);
  const repairs = solve.reduce((n, r) => n + r.output!.iterations - 1, 0);
  assert.equal(calls.filter((c) => c.kind === "zero-shot").length, 3);
  assert.equal(calls.filter((c) => c.kind === "repair").length, repairs);
  assert.equal(calls.filter((c) => c.kind === "reflection").length, 0);
  t.diagnostic(`repairs: ${repairs}`);
});
