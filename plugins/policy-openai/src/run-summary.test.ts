/**
 * A run reports what it spent: the policy's calls, tokens and cost land in summary.json
 * (`instances`), each call is an event, and a rerun of the workflow is served by the cache.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { cli, loadWorkflow, PluginRegistry, resolveWorkflow, runWorkflow } from "@bdc/core";
import { startEchoServer } from "./dev/echo-server.ts";

const repo = path.resolve(import.meta.dirname, "../../..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-spend-"));
const server = await startEchoServer(0, { log: () => {} });
after(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("tokens and cost per instance are in summary.json; the rerun costs nothing", async () => {
  const file = path.join(tmp, "spend.yaml");
  fs.writeFileSync(
    file,
    `name: spend
plugins:
  items: { use: ${path.join(repo, "tests/fixtures/plugins/range-dataset.ts")}, with: { n: 3 } }
  local:
    use: policy/openai
    with: { model: echo, baseURL: "${server.url}/v1", cache_dir: cache, price_input_per_million: 1000, price_output_per_million: 2000 }
  ask: { use: ${path.join(repo, "tests/fixtures/plugins/ask-step.ts")} }
steps:
  ask: { for_each: items }
`,
  );
  const run = async (dir: string) => {
    const workflow = await resolveWorkflow(loadWorkflow({ file }), { registry: PluginRegistry.discover(repo), env: {} });
    return runWorkflow({ workflow, dir: path.join(tmp, dir) });
  };
  const first = await run("run1");
  assert.equal(first.status, "succeeded");
  const spent = first.summary.instances!.local as Record<string, number>;
  assert.equal(spent.calls, 3);
  assert.equal(spent.cached, 0);
  assert.equal(spent.input_tokens, 6); // "item item-00N": 2 words each, counted by the echo server
  assert.ok(spent.output_tokens! > 0);
  assert.equal(spent.cost_usd, Math.round((spent.input_tokens! * 1000 + spent.output_tokens! * 2000)) / 1e6);
  const events = fs.readFileSync(path.join(tmp, "run1", "events.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(events.filter((e) => e.event === "llm.call" && e.instance === "local").length, 3);
  assert.equal(server.requests(), 3);

  const second = await run("run2");
  const again = second.summary.instances!.local as Record<string, number>;
  assert.deepEqual([again.calls, again.cached, again.cost_usd], [3, 3, 0]);
  assert.equal(server.requests(), 3, "the rerun made no request");

  // `bdc run` says what the run spent (here: nothing new, all from the cache).
  let err = "";
  const code = await cli(["run", file, "--out", path.join(tmp, "run3"), "--quiet"], { out: () => {}, err: (t) => void (err += t), cwd: tmp, env: {}, isTTY: false });
  assert.equal(code, 0, err);
  assert.match(err, /\nspent: 0 input \+ 0 output tokens, \$0\.0000 \(local \$0\.0000\)\n/);
});
