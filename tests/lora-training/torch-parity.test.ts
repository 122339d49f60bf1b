/**
 * LoRA training against PyTorch. `bdc lm train` (the real CLI, ONNX Runtime) and
 * benchmarks/python/llama_reference.py's `train` mode (plain torch autograd, torch.optim.AdamW,
 * LambdaLR with transformers' schedule, clip_grad_norm_) run the same training: the same tiny
 * checkpoint, the same initial adapter (B non-zero, so A trains from the first step), the same
 * micro-batches (the trainer's own data and batching functions lay them out for both), dropout 0,
 * 20 optimizer steps with gradient accumulation. Per-step loss must agree to 1e-5 relative and the
 * final LoRA weights to 1e-4 absolute.
 *
 * - llama, GQA, q_proj + v_proj (the authors' targets), padding, linear schedule with warmup,
 *   weight decay, clipping;
 * - qwen2 (q/k/v biases, tied embeddings), all seven projections, packing, cosine, rsLoRA.
 *
 * Without Debian's python3-torch the cases are reported as skipped with the reason (CI installs it
 * and fails instead).
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { initLoraAdapter, type LoraTarget, normalizeLoraConfig, readLossHistory, readModelConfig, stepsPerEpoch, type TinyCheckpointOptions, writePeftAdapter, writeTinyCheckpoint } from "@bdc/lm-local";
import { compareWithTorch } from "../../benchmarks/src/lora-parity.ts";
import type { TorchTrainPlan } from "../../benchmarks/src/torch-reference.ts";
import { torchOrSkip } from "../torch.ts";

const repo = path.resolve(import.meta.dirname, "../..");
const bin = path.join(repo, "core/src/cli/bin.ts");
let tmp = "";

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-train-parity-"));
});
after(() => {
  if (tmp !== "") fs.rmSync(tmp, { recursive: true, force: true });
});

interface Case {
  readonly name: string;
  readonly model: TinyCheckpointOptions;
  readonly targets: ReadonlyArray<LoraTarget>;
  readonly flags: ReadonlyArray<string>;
  readonly rank: number;
  readonly alpha: number;
  readonly rslora: boolean;
  readonly packing: boolean;
  readonly optimizer: TorchTrainPlan["optimizer"];
}

const CASES: ReadonlyArray<Case> = [
  {
    name: "llama GQA, q_proj+v_proj, padding, linear warmup, weight decay",
    model: { arch: "llama", layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 512, seed: 11, initStd: 0.1 },
    targets: ["q_proj", "v_proj"],
    flags: ["--schedule", "linear", "--warmup", "2", "--weight-decay", "0.01"],
    rank: 4,
    alpha: 8,
    rslora: false,
    packing: false,
    optimizer: { lr: 2e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.01, max_grad_norm: 1, schedule: "linear", warmup: 2 },
  },
  {
    name: "qwen2 (biases, tied), all projections, packing, cosine, rsLoRA",
    model: { arch: "qwen2", layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 512, seed: 12, initStd: 0.1 },
    targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    flags: ["--schedule", "cosine", "--warmup", "0", "--rslora", "--packing", "--max-length", "64"],
    rank: 3,
    alpha: 6,
    rslora: true,
    packing: true,
    optimizer: { lr: 2e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0, max_grad_norm: 1, schedule: "cosine", warmup: 0 },
  },
];

const ROWS = Array.from({ length: 40 }, (_, i) => ({
  messages: [
    { role: "user", content: `problem ${i}: ${"add the numbers ".repeat(1 + (i % 4))}${i} and ${i * 7}` },
    { role: "assistant", content: `def solve():\n    return ${i} + ${i * 7}${i % 3 === 0 ? "  # the sum" : ""}` },
  ],
}));
const BATCH = 8;
const MICRO = 3;
const EPOCHS = 4; // 5 steps an epoch: 20 optimizer steps
const SEED = 7;

for (const c of CASES) {
  test(`lm train equals PyTorch: ${c.name}`, async (t) => {
    const python = torchOrSkip(t);
    if (python === undefined) return;
    const dir = path.join(tmp, c.model.arch!);
    writeTinyCheckpoint(dir, c.model);
    const config = readModelConfig(dir);
    const data = path.join(tmp, `${c.model.arch}-train.jsonl`);
    fs.writeFileSync(data, ROWS.map((r) => JSON.stringify(r)).join("\n") + "\n");
    // The initial adapter: PEFT's init for A, and a non-zero B so both factors move from step 1.
    const lora = normalizeLoraConfig({ rank: c.rank, alpha: c.alpha, rslora: c.rslora, dropout: 0, targets: c.targets }, config);
    const init = initLoraAdapter(config, lora, 3);
    let s = 5;
    for (const m of init.modules.values()) for (let i = 0; i < m.B.length; i++) m.B[i] = ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 0.05;
    const initDir = path.join(tmp, `${c.model.arch}-init`);
    writePeftAdapter(initDir, init, config);

    const out = path.join(tmp, `${c.model.arch}-out`);
    const maxLength = c.packing ? 64 : 1024;
    const r = spawnSync(
      process.execPath,
      ["--import", "tsx", bin, "lm", "train", "--model", dir, "--data", data, "--out", out, "--init", initDir, "--rank", String(c.rank), "--alpha", String(c.alpha), "--targets", c.targets.join(","), "--dropout", "0", "--lr", String(c.optimizer.lr), "--batch", String(BATCH), "--micro-batch", String(MICRO), "--epochs", String(EPOCHS), "--seed", String(SEED), "--threads", "1", "--json", "--quiet", ...c.flags],
      { cwd: repo, encoding: "utf8", env: { ...process.env, BDC_ONNX_CACHE: path.join(tmp, "onnx") }, timeout: 300_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { steps: number };
    assert.equal(summary.steps, EPOCHS * stepsPerEpoch(ROWS.length, BATCH));

    const ours = readLossHistory(path.join(out, "events.jsonl")).train.map((p) => p.value);
    const parity = compareWithTorch(python, { model: dir, data, initAdapter: initDir, batch: BATCH, microBatch: MICRO, maxLength, packing: c.packing, epochs: EPOCHS, seed: SEED, optimizer: c.optimizer }, ours, out, 1);
    ours.forEach((l, i) => {
      const rel = Math.abs(l - parity.torch.losses[i]!) / Math.abs(parity.torch.losses[i]!);
      assert.ok(rel <= 1e-5, `step ${i + 1}: loss ${l} vs PyTorch ${parity.torch.losses[i]} (relative ${rel})`);
    });
    assert.ok(ours[0]! - ours.at(-1)! > 0.05, `the loss moved: ${ours[0]} -> ${ours.at(-1)}`);
    assert.ok(parity.maxWeightDiff <= 1e-4, `final LoRA weights differ from PyTorch's by up to ${parity.maxWeightDiff}`);
    assert.ok(parity.maxWeightMove > 1e-2, `training moved the weights (by up to ${parity.maxWeightMove})`);
    const [worstLoss, worstWeight, moved] = [parity.maxRelativeLossDiff, parity.maxWeightDiff, parity.maxWeightMove];
    t.diagnostic(`max relative loss difference ${worstLoss.toExponential(2)}, max weight difference ${worstWeight.toExponential(2)} (weights moved up to ${moved.toFixed(3)})`);
  });
}
