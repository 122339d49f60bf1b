/**
 * LoRA training speed: one optimizer step (forward, backward, AdamW) of rank-8 LoRA on q_proj and
 * v_proj over 1 x 256 tokens (every position scored), on the 125M Llama of lm-generation (fp32,
 * random weights), by the real trainer on ONNX Runtime (`trainLora`: the step times come from its
 * events) side by side with PyTorch doing the same step (benchmarks/python/llama_reference.py
 * train-bench: plain torch autograd, PEFT's LoRA forward, torch.optim.AdamW) with the same thread
 * count, and peak memory. Dropout is 0 on both sides.
 *
 * It also checks parity on this model: 20 AdamW steps (batch 2 of short chat rows, micro-batch 1,
 * so gradients accumulate; linear schedule with warmup; clipping) from the same adapter on both
 * sides must give per-step losses equal to 1e-5 relative and final weights to 1e-4.
 *
 * Target: ONNX Runtime step time <= 1.0x PyTorch's, and parity. `--shape qwen0.5b` measures a
 * Qwen2.5-0.5B-shaped model instead (24 layers, hidden 896, vocab 151936; ~2 GB written once).
 *
 *   pnpm exec tsx benchmarks/src/lora-train.ts [--reps R] [--shape 125m|qwen0.5b] [--json]
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { findProjectRoot } from "@bdc/core";
import type { Device } from "@bdc/onnx-graph";
import { initLoraAdapter, normalizeLoraConfig, readLossHistory, readModelConfig, type TinyCheckpointOptions, TRAIN_DEFAULTS, trainLora, writePeftAdapter, writeTinyCheckpoint } from "@bdc/lm-local";
import { FLAGS_HELP, fmt, median, parseFlags, printOutcome, runIfMain, type Benchmark, type BenchFlags, type BenchOutcome } from "./common.ts";
import { benchModelDir } from "./lm-generation.ts";
import { compareWithTorch, type ParityResult } from "./lora-parity.ts";
import { findTorchPython, torchTrainBench } from "./torch-reference.ts";

const TOKENS = 256;
const RANK = 8;
const TARGETS = ["q_proj", "v_proj"] as const;

const SHAPES: Readonly<Record<string, { label: string; dir: () => string; options: TinyCheckpointOptions }>> = {
  "125m": { label: "125M Llama fp32 (12 layers, hidden 768, vocab 32000)", dir: benchModelDir, options: { arch: "llama", layers: 12, hidden: 768, heads: 12, kvHeads: 4, intermediate: 2048, vocab: 32000, seed: 0 } },
  "qwen0.5b": {
    label: "Qwen2.5-0.5B-shaped fp32 (24 layers, hidden 896, 14/2 heads, vocab 151936)",
    dir: () => path.join(findProjectRoot(process.cwd()), ".cache", "bdc", "bench-models", "qwen2.5-0.5b-shape"),
    options: { arch: "qwen2", layers: 24, hidden: 896, heads: 14, kvHeads: 2, intermediate: 4864, vocab: 151936, seed: 0 },
  },
};

function ensureModel(shape: string, log: (line: string) => void): string {
  const s = SHAPES[shape]!;
  const dir = s.dir();
  if (!fs.existsSync(path.join(dir, "model.safetensors"))) {
    log(`writing the ${shape} benchmark checkpoint to ${dir}`);
    writeTinyCheckpoint(dir, s.options);
  }
  return dir;
}

/**
 * Step times of the real trainer (rank-8 LoRA on q,v, AdamW): `reps` measured steps between two
 * warm-up steps and the final (checkpointing) one, each over `batch` rows of exactly `tokens`
 * tokens in one micro-batch. Shared with the device check (device-check.ts).
 */
export async function measureOrtTrainStep(dir: string, o: { reps: number; threads: number; tokens: number; batch: number; device?: Device; cacheDir?: string }, log: (line: string) => void) {
  const { reps, threads, tokens, batch } = o;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-bench-lora-"));
  try {
    // Text rows longer than `tokens`, cut to exactly that: every position after the first is scored.
    const words = "def solve(n):\n    total = 0\n    for i in range(n):\n        total += i * i\n    return total\n".repeat(Math.ceil(tokens / 6));
    const data = path.join(work, "train.jsonl");
    fs.writeFileSync(data, Array.from({ length: (reps + 3) * batch }, (_, i) => JSON.stringify({ text: `# row ${i}\n${words}` })).join("\n") + "\n");
    const { report } = await trainLora(
      { ...TRAIN_DEFAULTS, model: dir, data, out: path.join(work, "out"), batch, microBatch: batch, maxLength: tokens, dropout: 0, maxSteps: reps + 3, saveSteps: 1_000_000, threads, device: o.device ?? "cpu", cacheDir: o.cacheDir },
      { log },
    );
    const events = fs.readFileSync(path.join(work, "out", "events.jsonl"), "utf8").split("\n").filter((l) => l.includes('"train.step"')).map((l) => JSON.parse(l) as { seconds: number; tokens: number });
    if (events.some((e) => e.tokens !== tokens * batch)) throw new Error(`lora-train: a step had ${events.map((e) => e.tokens).join(", ")} tokens, not ${tokens * batch}`);
    const steps = events.slice(2, -1).map((e, i) => e.seconds - events[i + 1]!.seconds);
    const loss = readLossHistory(path.join(work, "out", "events.jsonl")).train.at(-1)?.value;
    return { stepSeconds: median(steps), samples: steps, peakRssMb: process.resourceUsage().maxRSS / 1024, loss, trainable: report.trainable_parameters };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const PARITY = { steps: 20, batch: 2, lr: 1e-3, warmup: 2, seed: 5 } as const;

/** 20 steps here and in PyTorch from the same adapter; their losses and final weights compared. */
async function measureParity(python: string, dir: string, threads: number, log: (line: string) => void): Promise<ParityResult> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-bench-parity-"));
  try {
    const data = path.join(work, "train.jsonl");
    const rows = Array.from({ length: PARITY.steps * PARITY.batch }, (_, i) => ({ messages: [{ role: "user", content: `Write a function that returns ${i} squared${" please".repeat(i % 5)}.` }, { role: "assistant", content: `def f():\n    return ${i} * ${i}` }] }));
    fs.writeFileSync(data, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const config = readModelConfig(dir);
    const init = initLoraAdapter(config, normalizeLoraConfig({ rank: RANK, alpha: 16, rslora: false, dropout: 0, targets: TARGETS }, config), 1);
    let s = 9;
    for (const m of init.modules.values()) for (let i = 0; i < m.B.length; i++) m.B[i] = ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 0.02;
    const initDir = path.join(work, "init");
    writePeftAdapter(initDir, init, config);
    const out = path.join(work, "out");
    const optimizer = { lr: PARITY.lr, betas: [0.9, 0.999] as const, eps: 1e-8, weight_decay: 0, max_grad_norm: 1, schedule: "linear" as const, warmup: PARITY.warmup };
    log(`parity: ${PARITY.steps} steps on ONNX Runtime`);
    await trainLora({ ...TRAIN_DEFAULTS, model: dir, data, out, init: initDir, dropout: 0, batch: PARITY.batch, microBatch: 1, lr: PARITY.lr, warmup: PARITY.warmup, seed: PARITY.seed, saveSteps: 1_000_000, threads });
    const losses = readLossHistory(path.join(out, "events.jsonl")).train.map((p) => p.value);
    log(`parity: the same ${PARITY.steps} steps in PyTorch`);
    return compareWithTorch(python, { model: dir, data, initAdapter: initDir, batch: PARITY.batch, microBatch: 1, maxLength: TRAIN_DEFAULTS.maxLength, packing: false, epochs: 1, seed: PARITY.seed, optimizer }, losses, out, threads);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export const loraTrain: Benchmark = {
  name: "lora-train",
  description: "one LoRA training step (1 x 256 tokens, r 8 on q,v, AdamW) of a 125M Llama: ONNX Runtime vs PyTorch CPU",
  async run(flags: BenchFlags, log): Promise<BenchOutcome> {
    const reps = flags.reps ?? 3;
    const shape = process.argv.includes("--shape") ? process.argv[process.argv.indexOf("--shape") + 1]! : "125m";
    if (SHAPES[shape] === undefined) throw new Error(`--shape ${shape}: choose ${Object.keys(SHAPES).join(", ")}`);
    const threads = os.availableParallelism();
    const dir = ensureModel(shape, log);
    const ort = await measureOrtTrainStep(dir, { reps, threads, tokens: TOKENS, batch: 1 }, log);
    log(`ort: ${ort.samples.map((s) => `${(s * 1000).toFixed(0)} ms`).join(", ")}`);
    const py = findTorchPython();
    const torch = "python" in py ? torchTrainBench(py.python, dir, { tokens: TOKENS, batch: 1, rank: RANK, targets: TARGETS, repeats: reps, threads }) : undefined;
    if (torch !== undefined) log(`pytorch ${torch.torch} (BLAS: ${torch.blas}): ${torch.samples.map((s) => `${(s * 1000).toFixed(0)} ms`).join(", ")}`);
    const ratio = torch === undefined ? Number.NaN : ort.stepSeconds / torch.step_seconds;
    const parity = "python" in py ? await measureParity(py.python, dir, threads, log) : undefined;
    const parityOk = parity !== undefined && parity.maxRelativeLossDiff <= 1e-5 && parity.maxWeightDiff <= 1e-4;
    const pass = torch !== undefined && ratio <= 1 && parityOk;
    const text = [
      `lora-train: ${SHAPES[shape]!.label}, LoRA r${RANK} on ${TARGETS.join("+")} (${ort.trainable.toLocaleString("en-US")} parameters), 1 x ${TOKENS} tokens, AdamW, ${threads} threads, median of ${reps}`,
      ...(torch === undefined ? [`python3-torch is not installed (${(py as { missing: string }).missing}): nothing to compare with`] : [`PyTorch ${torch.torch}, BLAS ${torch.blas}`]),
      "",
      "| | ONNX Runtime | PyTorch | ratio |",
      "|---|---|---|---|",
      `| step time | ${fmt(ort.stepSeconds * 1000, 0)} ms | ${torch === undefined ? "-" : `${fmt(torch.step_seconds * 1000, 0)} ms`} | ${fmt(ratio)}x |`,
      `| tokens/s | ${fmt(TOKENS / ort.stepSeconds, 0)} | ${torch === undefined ? "-" : fmt(torch.tokens_per_second, 0)} | |`,
      `| peak RSS | ${fmt(ort.peakRssMb, 0)} MB | ${torch === undefined ? "-" : `${fmt(torch.peak_rss_mb, 0)} MB`} | |`,
      "",
      parity === undefined
        ? "parity: not checked (no PyTorch)"
        : `parity over ${PARITY.steps} AdamW steps (batch ${PARITY.batch}, accumulated): per-step loss within ${parity.maxRelativeLossDiff.toExponential(1)} relative (bound 1e-5), final LoRA weights within ${parity.maxWeightDiff.toExponential(1)} (bound 1e-4; they moved up to ${parity.maxWeightMove.toExponential(1)})`,
      "",
      `${pass ? "PASS" : "FAIL"}: targets: ONNX Runtime step time <= 1.0x PyTorch's; parity within its bounds`,
    ].join("\n");
    return { pass, text, json: { shape, ort, torch: torch === undefined ? undefined : { ...torch }, ratio, parity: parity === undefined ? undefined : { maxRelativeLossDiff: parity.maxRelativeLossDiff, maxWeightDiff: parity.maxWeightDiff, maxWeightMove: parity.maxWeightMove }, threads, reps, tokens: TOKENS } };
  },
};

async function main(argv: ReadonlyArray<string>): Promise<number> {
  const rest = [...argv];
  const at = rest.indexOf("--shape");
  if (at >= 0) rest.splice(at, 2);
  const flags = parseFlags(rest);
  if (flags.help) {
    process.stdout.write(`usage: pnpm exec tsx benchmarks/src/lora-train.ts [--shape ${Object.keys(SHAPES).join("|")}] [flags]\n${loraTrain.description}\n\n${FLAGS_HELP}\n`);
    return 0;
  }
  return printOutcome(flags, await loraTrain.run(flags, (line) => process.stderr.write(`${line}\n`)));
}

runIfMain(import.meta.url, "lora-train", main);
