/** `bdc lm train` as a user meets it: exit codes, located messages, --json, an idempotent rerun. */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { cli } from "@bdc/core";
import { webgpuUnavailableReason } from "@bdc/onnx-graph";
import { writeTinyCheckpoint } from "../checkpoint/make-tiny.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-train-cli-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const model = path.join(root, "model");
writeTinyCheckpoint(model, { arch: "llama", layers: 1, hidden: 32, heads: 2, kvHeads: 1, vocab: 320, seed: 1 });
const data = path.join(root, "train.jsonl");
fs.writeFileSync(data, Array.from({ length: 6 }, (_, i) => JSON.stringify({ prompt: `q${i}`, completion: ` a${i}` })).join("\n") + "\n");

async function bdc(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await cli(args, { out: (t) => void (out += t), err: (t) => void (err += t), cwd: root, env: { ...process.env, BDC_ONNX_CACHE: path.join(root, "onnx") }, isTTY: false });
  return { code, out, err };
}
const base = ["lm", "train", "--model", model, "--data", data, "--threads", "1"];

test("usage and input errors exit 2 with what to fix; a finished run is not redone", async () => {
  const noData = await bdc("lm", "train", "--model", model, "--out", path.join(root, "x"));
  assert.equal(noData.code, 2);
  assert.match(noData.err, /train needs --data/);
  const targets = await bdc(...base, "--out", path.join(root, "x"), "--targets", "q_proj,qkv");
  assert.equal(targets.code, 2);
  assert.match(targets.err, /--targets: "qkv" is not a projection .* choose from q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, or all/);
  const layers = await bdc(...base, "--out", path.join(root, "x"), "--layers", "3-1");
  assert.match(layers.err, /--layers 3-1: the range 3-1 is empty/);
  const schedule = await bdc(...base, "--out", path.join(root, "x"), "--schedule", "step");
  assert.match(schedule.err, /--schedule step: choose linear, cosine, constant/);
  const bad = path.join(root, "bad.jsonl");
  fs.writeFileSync(bad, '{"prompt": "a", "completion": "b"}\n{"messages": []}\n');
  const badData = await bdc("lm", "train", "--model", model, "--data", bad, "--out", path.join(root, "y"));
  assert.equal(badData.code, 2);
  assert.match(badData.err, /bad\.jsonl:2: "messages" must be a non-empty list/);
  assert.match(badData.err, /\[BDC_TRAIN_DATA\]/);

  const out = path.join(root, "ok");
  const first = await bdc(...base, "--out", out, "--batch", "3", "--json", "--quiet");
  assert.equal(first.code, 0, first.err);
  const summary = JSON.parse(first.out.trim()) as { adapter: string; steps: number; already_done: boolean; loss_curve: string };
  assert.deepEqual([summary.adapter, summary.steps, summary.already_done], [out, 2, false]);
  assert.ok(fs.existsSync(summary.loss_curve));
  const again = await bdc(...base, "--out", out, "--batch", "3", "--json", "--quiet");
  assert.equal((JSON.parse(again.out.trim()) as { already_done: boolean }).already_done, true);
  const other = await bdc(...base, "--out", out, "--batch", "2");
  assert.equal(other.code, 2);
  assert.match(other.err, /holds a training run with other arguments: batch was 3, now 2 .*\[BDC_RESUME_MISMATCH\]/s);
  const over = await bdc(...base, "--out", out, "--batch", "2", "--overwrite", "--quiet");
  assert.equal(over.code, 0, over.err);
  assert.equal(over.out.trim(), out);
});

test("--device: an unknown one is a usage error listing the choices; webgpu without a GPU adapter exits 2 before any work, naming what to install", async () => {
  const tpu = await bdc(...base, "--out", path.join(root, "d1"), "--device", "tpu");
  assert.equal(tpu.code, 2);
  assert.match(tpu.err, /--device tpu: choose cpu, webgpu, cuda/);
  const reason = await webgpuUnavailableReason();
  if (reason === undefined) return; // a GPU machine: the device path is the device check's (benchmarks/src/device-check.ts)
  const out = path.join(root, "d2");
  const gpu = await bdc(...base, "--out", out, "--device", "webgpu");
  assert.equal(gpu.code, 2, gpu.err);
  assert.match(gpu.err, /device: webgpu, but .*\[BDC_DEVICE_UNAVAILABLE\]/);
  assert.match(gpu.err, /libvulkan1/);
  assert.equal(fs.existsSync(out), false, "nothing was written");
  const generate = await bdc("lm", "generate", "--model", model, "--prompt", "hi", "--device", "webgpu");
  assert.equal(generate.code, 1);
  assert.match(generate.err, /device: webgpu was asked for the model .*, but .*\[BDC_DEVICE_UNAVAILABLE\]/);
  const fp16 = await bdc("lm", "score", "--model", model, "--text", "hi", "--dtype", "float16");
  assert.equal(fp16.code, 2);
  assert.match(fp16.err, /--dtype float16 is for a GPU/);
});

test("lm score --attention fused gives the plain graph's log-probabilities (ORT's GroupQueryAttention)", async () => {
  const plain = await bdc("lm", "score", "--model", model, "--text", "def f(x): return x * x", "--json", "--quiet");
  const fused = await bdc("lm", "score", "--model", model, "--text", "def f(x): return x * x", "--attention", "fused", "--json", "--quiet");
  assert.equal(fused.code, 0, fused.err);
  const a = (JSON.parse(plain.out.trim().split("\n").at(-1)!) as { logprobs: number[] }).logprobs;
  const b = (JSON.parse(fused.out.trim().split("\n").at(-1)!) as { logprobs: number[] }).logprobs;
  assert.equal(a.length, b.length);
  assert.ok(a.every((v, i) => Math.abs(v - b[i]!) < 1e-5), `${a} vs ${b}`);
  const bad = await bdc("lm", "score", "--model", model, "--text", "x", "--attention", "flash");
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--attention flash: choose ops or fused/);
});

test("lm devices lists every device with the probe's verdict, and how to enable the first missing one", async () => {
  const text = await bdc("lm", "devices");
  assert.equal(text.code, 0);
  assert.match(text.out, /^cpu {5}available$/m);
  const json = await bdc("lm", "devices", "--json");
  const rows = JSON.parse(json.out) as Array<{ device: string; available: boolean; reason?: string; hint?: string }>;
  assert.deepEqual(rows.map((r) => r.device), ["cpu", "webgpu", "cuda"]);
  const webgpu = rows[1]!;
  assert.equal(webgpu.available, (await webgpuUnavailableReason()) === undefined);
  if (!webgpu.available) {
    assert.match(text.out, /^webgpu {2}unavailable: /m);
    assert.match(webgpu.hint ?? "", /libvulkan1/);
    assert.match(text.err, /^to enable webgpu: /m);
  }
});
