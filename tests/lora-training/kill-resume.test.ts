/**
 * A training run killed with SIGKILL at several moments and resumed each time by running the same
 * command gives a final adapter bit-identical to an uninterrupted run's (same thread count), with
 * dropout on, so the data order and the dropout masks must replay exactly. The kills land while
 * steps run and while checkpoints are written (polling every few ms, each step ~10 ms).
 */
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { writeTinyCheckpoint } from "@bdc/lm-local";

const repo = path.resolve(import.meta.dirname, "../..");
const bin = path.join(repo, "core/src/cli/bin.ts");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-train-kill-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const env = { ...process.env, BDC_ONNX_CACHE: path.join(tmp, "onnx") };

const steps = (out: string) => {
  try {
    return fs.readFileSync(path.join(out, "events.jsonl"), "utf8").split("\n").filter((l) => l.includes('"train.step"')).length;
  } catch {
    return 0;
  }
};

test("kill -9 at any moment, then the same command: the final adapter is bit-identical to an uninterrupted run", async (t) => {
  const model = path.join(tmp, "model");
  writeTinyCheckpoint(model, { arch: "llama", layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 512, seed: 4 });
  const data = path.join(tmp, "train.jsonl");
  fs.writeFileSync(data, Array.from({ length: 40 }, (_, i) => JSON.stringify({ prompt: `item ${i}: ${"x ".repeat(i % 7)}`, completion: `answer ${i * 3}` })).join("\n") + "\n");
  const argv = (out: string) => ["--import", "tsx", bin, "lm", "train", "--model", model, "--data", data, "--out", out, "--batch", "4", "--micro-batch", "2", "--epochs", "3", "--save-steps", "3", "--dropout", "0.1", "--lr", "5e-3", "--threads", "1", "--quiet"];

  const straight = path.join(tmp, "straight");
  const r = spawnSync(process.execPath, argv(straight), { cwd: repo, env, encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);

  const resumed = path.join(tmp, "resumed");
  const killedAt: number[] = [];
  for (const atStep of [2, 7, 13, 22]) {
    const child = spawn(process.execPath, argv(resumed), { cwd: repo, env, stdio: "ignore" });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    let done = false;
    void exited.then(() => (done = true));
    while (!done && steps(resumed) < atStep) await new Promise((res) => setTimeout(res, 3));
    assert.ok(!done, `the run ended before step ${atStep}`);
    child.kill("SIGKILL");
    await exited;
    killedAt.push(steps(resumed));
  }
  const last = spawnSync(process.execPath, argv(resumed), { cwd: repo, env, encoding: "utf8", timeout: 120_000 });
  assert.equal(last.status, 0, last.stderr);
  const file = "adapter_model.safetensors";
  assert.ok(fs.readFileSync(path.join(resumed, file)).equals(fs.readFileSync(path.join(straight, file))), `bit-identical after kills at steps ${killedAt.join(", ")}`);
  t.diagnostic(`killed after ${killedAt.join(", ")} logged steps`);
  const report = JSON.parse(fs.readFileSync(path.join(resumed, "train_report.json"), "utf8")) as { steps: number; resumed_from_step: number | null };
  assert.equal(report.steps, 30);
  assert.ok((report.resumed_from_step ?? 0) > 0);
  assert.deepEqual(fs.readdirSync(resumed).filter((n) => n.startsWith(".")), [], "no temporary checkpoint folder is left");
  assert.deepEqual(fs.readdirSync(resumed).filter((n) => n.startsWith("checkpoint-")).sort(), ["checkpoint-27", "checkpoint-30"], "the newest two checkpoints are kept");
});
