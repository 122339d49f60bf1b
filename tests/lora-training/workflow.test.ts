/**
 * LoRA training in workflows, by the real CLI: step/train-lora writes a PEFT adapter into the run
 * (with its loss curve linked from the report), `run --resume` trains nothing again, and the
 * adapter then serves policy/local (`adapter:`) as the agent of step/zero-shot.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { readModelConfig, readPeftAdapter, writeTinyCheckpoint } from "@bdc/lm-local";
import { checkSandbox } from "@bdc/reward-python";
import { runBdc } from "../cli.ts";

const here = import.meta.dirname;
const repo = path.resolve(here, "../..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-train-workflow-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const bdc = (cwd: string, ...args: string[]) => runBdc(cwd, args, { onnxCache: path.join(tmp, "onnx") });

test("step/train-lora trains a PEFT adapter in a run, resume redoes nothing, and policy/local generates with it", { timeout: 120_000 }, () => {
  const model = path.join(tmp, "tiny");
  writeTinyCheckpoint(model, { arch: "qwen2", layers: 2, hidden: 64, heads: 4, kvHeads: 2, seed: 8 });
  const run = path.join(tmp, "train-run");
  const r = bdc(path.join(here, "fixtures"), "run", "train-lora.yaml", "--set", `plugins.train.with.model=${model}`, "--out", run);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /all: step 6\/6 loss \d/, "progress lines per tenth of the run");
  const adapterDir = path.join(run, "steps/train/all");
  const adapter = readPeftAdapter(adapterDir, readModelConfig(model));
  assert.deepEqual([adapter.config.rank, adapter.config.alpha, adapter.config.targets], [8, 16, ["q_proj", "v_proj"]], "the authors' defaults");
  const [row] = fs.readFileSync(path.join(run, "steps/train/outputs.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { output: { adapter: string; steps: number; final_loss: number; eval_loss: number } });
  assert.equal(row!.output.adapter, "steps/train/all");
  assert.equal(row!.output.steps, 6, "2 epochs of 10 rows in batches of 4");
  assert.ok(Number.isFinite(row!.output.final_loss) && Number.isFinite(row!.output.eval_loss));
  assert.match(fs.readFileSync(path.join(run, "report.html"), "utf8"), /href="steps\/train\/all\/loss\.html"/, "the report links the loss curve");
  assert.match(fs.readFileSync(path.join(adapterDir, "loss.html"), "utf8"), /<svg[^>]*>.*<circle/s);

  const resumed = bdc(path.join(here, "fixtures"), "run", "--resume", run);
  assert.equal(resumed.code, 0, resumed.err);
  assert.doesNotMatch(resumed.err, /all: step/, "nothing is trained again");

  const sandbox = checkSandbox().ok ? [] : ["--set", "plugins.reward.with.sandbox=none"];
  const use = bdc(path.join(repo, "tests/local-model/fixtures"), "run", "zero-shot-local.yaml", "--set", `plugins.student.with.model=${model}`, "--set", `plugins.student.with.adapter=${adapterDir}`, ...sandbox, "--out", path.join(tmp, "use-run"));
  assert.equal(use.code, 0, use.err);
  assert.match(use.err, /succeeded: 2 items done, 0 failed/);
});
