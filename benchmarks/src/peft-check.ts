/**
 * Our LoRA adapters and training against the real transformers + PEFT, which the development
 * machines do not have (the project's GPU machine does). Three steps:
 *
 *   pnpm exec tsx benchmarks/src/peft-check.ts prepare DIR [--layers 1]  # here: model, data, our training, our log-probs
 *   python3 benchmarks/python/peft_check.py --input DIR --out OUT # where PEFT is installed
 *   pnpm exec tsx benchmarks/src/peft-check.ts verify DIR OUT     # here: read the results and PEFT's own adapter
 *
 * Checked: PEFT loads the adapter `bdc lm train` wrote and gives our log-probabilities; PEFT +
 * transformers trained from the same initial adapter on the same micro-batches give our per-step
 * losses and final weights; PEFT's own initialisation has the distribution ours has; and our reader
 * loads an adapter PEFT's save_pretrained wrote, giving PEFT's log-probabilities.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { CausalLM, initLoraAdapter, normalizeLoraConfig, readLossHistory, readModelConfig, scoreTokens, TRAIN_DEFAULTS, trainLora, writePeftAdapter, writeTinyCheckpoint } from "@bdc/lm-local";
import { parityPlan } from "./lora-parity.ts";

const LORA = { rank: 4, alpha: 8, rslora: false, targets: ["q_proj", "v_proj"] as const };
const OPT = { lr: 2e-3, betas: [0.9, 0.999] as const, eps: 1e-8, weight_decay: 0, max_grad_norm: 1, schedule: "linear" as const, warmup: 1 };
const RUN = { batch: 8, microBatch: 3, epochs: 3, seed: 3, maxLength: 1024 };
const TOKENS = [1, 40, 41, 42, 300, 301, 7, 8, 9, 10, 200, 201, 202, 33, 34, 35, 36, 100, 101, 102];

async function prepare(dir: string, layers: number[] | undefined): Promise<void> {
  fs.rmSync(dir, { recursive: true, force: true });
  const model = path.join(dir, "model");
  writeTinyCheckpoint(model, { arch: "llama", layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 512, seed: 21, initStd: 0.1 });
  const data = path.join(dir, "train.jsonl");
  const rows = Array.from({ length: 24 }, (_, i) => ({ messages: [{ role: "user", content: `task ${i}: ${"sum ".repeat(1 + (i % 3))}${i}` }, { role: "assistant", content: `print(${i} + ${i})` }] }));
  fs.writeFileSync(data, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const config = readModelConfig(model);
  const init = initLoraAdapter(config, normalizeLoraConfig({ ...LORA, dropout: 0, layers }, config), 2);
  let s = 3;
  for (const m of init.modules.values()) for (let i = 0; i < m.B.length; i++) m.B[i] = ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 0.05;
  writePeftAdapter(path.join(dir, "init"), init, config);
  const trained = path.join(dir, "trained");
  await trainLora({ ...TRAIN_DEFAULTS, ...LORA, layers, model, data, out: trained, init: path.join(dir, "init"), dropout: 0, lr: OPT.lr, warmup: OPT.warmup, batch: RUN.batch, microBatch: RUN.microBatch, epochs: RUN.epochs, seed: RUN.seed, threads: 1, cacheDir: path.join(dir, ".onnx") });
  const ourLosses = readLossHistory(path.join(trained, "events.jsonl")).train.map((p) => p.value);
  // Only what PEFT needs stays: the adapter files.
  for (const f of fs.readdirSync(trained)) if (!f.startsWith("adapter_")) fs.rmSync(path.join(trained, f), { recursive: true, force: true });
  const plan = parityPlan({ model, data, initAdapter: "init", batch: RUN.batch, microBatch: RUN.microBatch, maxLength: RUN.maxLength, packing: false, epochs: RUN.epochs, seed: RUN.seed, optimizer: OPT });
  fs.writeFileSync(path.join(dir, "plan.json"), JSON.stringify(plan));
  const lm = await CausalLM.load(model, { adapter: trained, threads: 1, cacheDir: path.join(dir, ".onnx") });
  const ourLogprobs = await scoreTokens(lm, TOKENS);
  await lm.dispose();
  fs.rmSync(path.join(dir, ".onnx"), { recursive: true, force: true });
  fs.writeFileSync(path.join(dir, "check.json"), JSON.stringify({ tokens: TOKENS, our_logprobs: ourLogprobs, our_losses: ourLosses, lora: { ...LORA, layers: layers ?? null }, optimizer: OPT }));
  process.stdout.write(`prepared ${dir}: ${ourLosses.length} training steps\n`);
}

interface Results {
  readonly torch: string;
  readonly transformers: string;
  readonly peft: string;
  readonly load: { max_abs_logprob_diff: number; adapter_changes_logprobs_by: number; saved_logprobs: number[]; error?: string };
  readonly train: { steps: number; max_relative_loss_diff: number; max_weight_diff: number; error?: string };
  readonly init: { modules: number; max_abs_times_sqrt_in: number; mean_var_times_3in: number; error?: string };
}

async function verify(dir: string, out: string): Promise<number> {
  const r = JSON.parse(fs.readFileSync(path.join(out, "results.json"), "utf8")) as Results;
  for (const [name, part] of Object.entries({ load: r.load, train: r.train, init: r.init })) {
    if (part?.error !== undefined) {
      process.stdout.write(`FAIL  ${name}: ${part.error}\n`);
      return 1;
    }
  }
  const lm = await CausalLM.load(path.join(dir, "model"), { adapter: path.join(out, "peft-saved"), threads: 1, cacheDir: path.join(dir, ".onnx") });
  const ours = await scoreTokens(lm, TOKENS);
  await lm.dispose();
  const savedDiff = Math.max(...ours.map((x, i) => Math.abs(x - r.load.saved_logprobs[i]!)));
  const checks: Array<[string, boolean, string]> = [
    ["PEFT loads our adapter: log-probabilities", r.load.max_abs_logprob_diff <= 1e-4 && r.load.adapter_changes_logprobs_by > 1e-3, `max |diff| ${r.load.max_abs_logprob_diff.toExponential(2)} (the adapter moves them by up to ${r.load.adapter_changes_logprobs_by.toExponential(2)}); bound 1e-4`],
    ["PEFT + transformers training: per-step loss", r.train.max_relative_loss_diff <= 1e-5, `${r.train.steps} steps, max relative diff ${r.train.max_relative_loss_diff.toExponential(2)}; bound 1e-5`],
    ["PEFT + transformers training: final weights", r.train.max_weight_diff <= 1e-4, `max |diff| ${r.train.max_weight_diff.toExponential(2)}; bound 1e-4`],
    ["PEFT's init: A within 1/sqrt(in), variance 1/(3 in)", r.init.max_abs_times_sqrt_in <= 1 && Math.abs(r.init.mean_var_times_3in - 1) < 0.15, `max |A| sqrt(in) ${r.init.max_abs_times_sqrt_in.toFixed(3)}, var 3 in ${r.init.mean_var_times_3in.toFixed(3)} over ${r.init.modules} modules`],
    ["our reader loads PEFT's save_pretrained", savedDiff <= 1e-4, `max |diff| ${savedDiff.toExponential(2)}; bound 1e-4`],
  ];
  process.stdout.write(`torch ${r.torch}, transformers ${r.transformers}, peft ${r.peft}\n`);
  for (const [name, ok, detail] of checks) process.stdout.write(`${ok ? "PASS" : "FAIL"}  ${name}: ${detail}\n`);
  return checks.every(([, ok]) => ok) ? 0 : 1;
}

const [mode, dir, out] = process.argv.slice(2);
const layersAt = process.argv.indexOf("--layers");
if (mode === "prepare" && dir !== undefined) await prepare(path.resolve(dir), layersAt < 0 ? undefined : process.argv[layersAt + 1]!.split(",").map(Number));
else if (mode === "verify" && dir !== undefined && out !== undefined) process.exitCode = await verify(path.resolve(dir), path.resolve(out));
else {
  process.stderr.write("usage: peft-check.ts prepare DIR | verify DIR OUT\n");
  process.exitCode = 2;
}
