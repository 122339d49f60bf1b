/**
 * workflows/bdc.yaml end to end, CPU-sized (fixtures/cpu.yaml): the scripted server as both
 * agents and a tiny generated student. Boost collects pairs for every problem (the root expanded
 * first, best-path), Disentangle clusters them and trains an expert per cluster, Customize trains
 * the hypernetwork over the experts, and the composed student is scored on the hidden tests -
 * one `bdc run`, then `--resume` redoes nothing.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { writeTinyCheckpoint } from "@bdc/lm-local";
import { checkSandbox } from "@bdc/reward-python";
import { startScriptedServer, type ScriptedServer } from "../../plugins/search-mcts/src/dev/scripted-server.ts";
import { webgpuUnavailableReason } from "../../plugins/onnx-graph/src/index.ts";
import { runBdcAsync } from "../cli.ts";

const repo = path.resolve(import.meta.dirname, "../..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-pipeline-"));
let server: ScriptedServer;
before(async () => {
  server = await startScriptedServer({ problems: path.join(repo, "workflows/data/quickstart-problems.jsonl") });
});
after(async () => {
  await server?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});
const readJsonl = <T>(file: string): T[] => fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as T);

test("workflows/bdc.yaml: problems -> pairs -> clusters -> experts -> hypernetwork -> the composed student on the hidden tests, in one run", { timeout: 600_000 }, async () => {
  const model = path.join(tmp, "tiny");
  writeTinyCheckpoint(model, { arch: "llama", layers: 2, hidden: 32, heads: 2, kvHeads: 1, seed: 21, initStd: 0.1 });
  // policy/auto takes the OpenAI-compatible server when no API key is set, as the README's quickstart does.
  const env = { OPENAI_API_KEY: undefined, ANTHROPIC_API_KEY: undefined, OPENAI_BASE_URL: `${server.url}/v1` };
  const sets = [
    ...["agent1", "agent2"].flatMap((a) => ["--set", `plugins.${a}.with.cache_dir=${path.join(tmp, "cache")}`]),
    ...["encoder", "expert", "hypernet", "student"].flatMap((i) => ["--set", `plugins.${i}.with.model=${model}`]),
    ...(checkSandbox().ok ? [] : ["--set", "plugins.reward.with.sandbox=none"]),
  ];
  const run = path.join(tmp, "run");
  const bdc = (...args: string[]) => runBdcAsync(repo, args, { onnxCache: path.join(tmp, "onnx"), timeoutMs: 540_000, env });
  const r = await bdc("run", "workflows/bdc.yaml", "--overlay", "tests/bdc-pipeline/fixtures/cpu.yaml", ...sets, "--out", run);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /\nscore:\n\| method \| introductory PR \|[\s\S]*\| DisenLoRA \|/, "bdc run ends with the PR/AC table");

  // Boost: every searched problem gave one problem->clues and one clues->program pair.
  const train = readJsonl<{ id: string; problem_id: string; messages: Array<{ content: string }> }>(path.join(run, "steps/export/D_train.jsonl"));
  assert.equal(train.length, 6, "3 problems x (p2t + t2s)");
  assert.deepEqual(new Set(train.map((t) => t.problem_id)).size, 3);
  assert.match(train[0]!.messages[1]!.content, /^\["Clue of Step 1: /);
  // Disentangle: the rows embedded and clustered (K = 2), an expert per cluster.
  const [cluster] = readJsonl<{ output: { k: number; sizes: number[] } }>(path.join(run, "steps/cluster/outputs.jsonl"));
  assert.equal(cluster!.output.sizes.reduce((a, b) => a + b, 0), 6);
  assert.equal(readJsonl(path.join(run, "steps/expert/outputs.jsonl")).length, 2);
  // Customize: the hypernetwork over both experts, and the composed student on the hidden tests.
  assert.ok(fs.existsSync(path.join(run, "steps/hypernet/hypernet/hypernet.safetensors")));
  const solved = readJsonl<{ output: { composition: { experts: string[] } } }>(path.join(run, "steps/solve/outputs.jsonl"));
  assert.equal(solved.length, 2);
  assert.deepEqual(solved[0]!.output.composition.experts, ["cluster-0", "cluster-1"]);
  const summary = JSON.parse(fs.readFileSync(path.join(run, "summary.json"), "utf8")) as { status: string; steps: Record<string, { summary?: { label?: string; problems?: number } }> };
  assert.equal(summary.status, "succeeded");
  assert.equal(summary.steps["score"]!.summary!.label, "DisenLoRA");
  assert.equal(summary.steps["score"]!.summary!.problems, 2);

  const again = await bdc("run", "--resume", run);
  assert.equal(again.code, 0, again.err);
  assert.doesNotMatch(again.err, /step \d+\/\d+ loss/, "nothing is trained again");
});

test("configs/devices/webgpu.yaml puts the System-1 half of bdc.yaml on the GPU: without one, validate says so once for its four places", { timeout: 120_000 }, async () => {
  const model = path.join(tmp, "tiny-gpu");
  writeTinyCheckpoint(model, { arch: "llama", layers: 1, hidden: 32, heads: 2, kvHeads: 1, seed: 3 });
  const env = { OPENAI_API_KEY: undefined, ANTHROPIC_API_KEY: undefined, OPENAI_BASE_URL: `${server.url}/v1` };
  const sets = ["encoder", "expert", "hypernet", "student"].flatMap((i) => ["--set", `plugins.${i}.with.model=${model}`]);
  const r = await runBdcAsync(repo, ["validate", "workflows/bdc.yaml", "--overlay", "configs/devices/webgpu.yaml", ...sets], { onnxCache: path.join(tmp, "onnx"), env });
  const reason = await webgpuUnavailableReason();
  if (reason === undefined) {
    assert.doesNotMatch(r.err, /BDC_DEVICE_UNAVAILABLE/, "a machine with a GPU adapter");
    return;
  }
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /^configs\/devices\/webgpu\.yaml:\d+:\d+ plugins\.encoder\.with\.device {2}device: webgpu, but .*\[BDC_DEVICE_UNAVAILABLE\]\n {2}also at: configs\/devices\/webgpu\.yaml:\d+:\d+ plugins\.expert\.with\.device \(step\/train-lora\)\n {2}also at: .* plugins\.hypernet\.with\.device \(step\/train-hypernet\)\n {2}also at: .* plugins\.student\.with\.device \(policy\/local\)\n/m);
  assert.equal(r.err.match(/apt install libvulkan1/g)?.length, 1, "the install hint once");
});
