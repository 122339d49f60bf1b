/**
 * `bdc lm score|generate|train`: look at what the local model does, compare it with other
 * frameworks, and fine-tune LoRA adapters of it. With --json the last line of stdout is one JSON
 * object:
 *   score:    {"tokens": [ids], "logprobs": [floats]}  (logprobs[i] = log p(tokens[i+1] | tokens[..i]))
 *   generate: {"text": ..., "tokens": N, "tokens_per_second": X, ...}
 *   train:    {"adapter": DIR, "steps": N, "final_loss": X, "eval_loss": X|null, ...}
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError, BdcErrors, numberFlag as parseNumberFlag, type CliCommand, type Io, type ParsedArgs } from "@bdc/core";
import { LORA_TARGETS, type LoraTarget } from "./lora/adapter.ts";
import { SCHEDULES, type Schedule } from "./train/optimizer.ts";
import { TrainProgressDisplay } from "./train/progress.ts";
import { TRAIN_DEFAULTS, TRAIN_FILES, trainLora, type TrainArgs } from "./train/trainer.ts";
import { resolveModelDir } from "./hub/pull-model.ts";
import { deviceInstallHint, DEVICES, deviceUnavailableReason, type Device } from "@bdc/onnx-graph";
import { CausalLM, defaultOnnxCache } from "./model/causal-lm.ts";
import { generate } from "./model/generate.ts";
import { scoreTokens } from "./model/score.ts";

const spec = {
  name: "lm",
  summary: "Run the local model: token log-probabilities (lm score), text (lm generate), LoRA fine-tuning (lm train), the devices it can run on (lm devices)",
  usage: [
    'bdc lm score --model DIR --text "..." [--bos] [--adapter DIR] [--device D] [--dtype T] [--attention ops|fused] [--json]',
    '       bdc lm generate --model DIR --prompt "..." [--max-tokens N] [--chat] [--adapter DIR] [--device D] [--dtype T] [--attention ops|fused] [--json]',
    "       bdc lm train --model DIR --data train.jsonl --out ADAPTER [--eval-data F] [--rank --alpha --dropout --targets --layers --lr --epochs",
    "                    --batch --micro-batch --max-length --schedule --warmup --seed --save-steps --device] [--json]",
    "       bdc lm devices [--json]",
  ].join("\n"),
  minPositionals: 1,
  maxPositionals: 1,
  details: [
    "--model is a checkpoint folder (config.json, *.safetensors, tokenizer.json) or a hub id pulled with `bdc models pull`.",
    "score tokenises --text with the model's tokenizer without special tokens (--bos puts the BOS token first).",
    "generate decodes greedily unless --temperature > 0; --chat wraps the prompt in the model's chat template.",
    "The first run on a checkpoint builds its ONNX model (cached in .cache/bdc/onnx, or $BDC_ONNX_CACHE).",
    "",
    "train fine-tunes a LoRA adapter (PEFT semantics) on a JSONL file of {\"messages\": [...]} rows (loss on the assistant turns,",
    "rendered with the model's chat template), {\"prompt\", \"completion\"} rows or {\"text\"} rows, and writes a PEFT adapter folder to --out",
    "(with checkpoint-<step>/ folders, events.jsonl, loss.html, train_report.json). Killed or stopped, the same command resumes it from",
    "the last checkpoint; a finished run is not redone. Defaults are the BDC authors' SFT: rank 8, alpha 16, dropout 0.05, q_proj+v_proj,",
    `lr 1e-3, 1 epoch, batch 64, linear schedule; micro-batch ${TRAIN_DEFAULTS.microBatch}, max length ${TRAIN_DEFAULTS.maxLength}, seed ${TRAIN_DEFAULTS.seed}, a checkpoint every ${TRAIN_DEFAULTS.saveSteps} steps.`,
  ].join("\n"),
  flags: {
    model: { type: "string", value: "DIR", description: "checkpoint folder or pulled hub id" },
    text: { type: "string", value: "TEXT", description: "score: the text" },
    bos: { type: "boolean", description: "score: put the BOS token first" },
    prompt: { type: "string", value: "TEXT", description: "generate: the prompt" },
    chat: { type: "boolean", description: "generate: apply the chat template to the prompt (as a user message)" },
    "max-tokens": { type: "string", value: "N", description: "generate: most new tokens (default 128)" },
    temperature: { type: "string", value: "T", description: "generate: 0 = greedy (default)" },
    "top-p": { type: "string", value: "P", description: "generate: nucleus mass" },
    "top-k": { type: "string", value: "K", description: "generate: sample among the k most likely" },
    stop: { type: "string", value: "TEXT", multiple: true, description: "generate: stop at this text" },
    adapter: { type: "string", value: "DIR", description: "a PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) to apply" },
    data: { type: "string", value: "FILE", description: "train: the training JSONL" },
    "eval-data": { type: "string", value: "FILE", description: "train: a validation JSONL, evaluated every --eval-steps and at the end" },
    out: { type: "string", value: "DIR", description: "train: the adapter folder to write (and resume)" },
    rank: { type: "string", value: "R", description: `train: LoRA rank (default ${TRAIN_DEFAULTS.rank})` },
    alpha: { type: "string", value: "A", description: `train: lora_alpha; scale alpha/rank (default ${TRAIN_DEFAULTS.alpha})` },
    rslora: { type: "boolean", description: "train: scale alpha/sqrt(rank) (rank-stabilised LoRA)" },
    dropout: { type: "string", value: "P", description: `train: dropout on the LoRA input (default ${TRAIN_DEFAULTS.dropout})` },
    targets: { type: "string", value: "LIST", description: `train: projections to adapt, comma-separated, or all (default ${TRAIN_DEFAULTS.targets.join(",")})` },
    layers: { type: "string", value: "LIST", description: "train: layers to adapt, e.g. 0-9 or 0,2,4 (default all)" },
    lr: { type: "string", value: "LR", description: `train: peak learning rate (default ${TRAIN_DEFAULTS.lr})` },
    epochs: { type: "string", value: "N", description: `train: passes over the data (default ${TRAIN_DEFAULTS.epochs})` },
    "max-steps": { type: "string", value: "N", description: "train: stop after N optimizer steps" },
    batch: { type: "string", value: "N", description: `train: rows per optimizer step (default ${TRAIN_DEFAULTS.batch})` },
    "micro-batch": { type: "string", value: "N", description: `train: rows (or packed sequences) per forward pass; gradients accumulate to --batch (default ${TRAIN_DEFAULTS.microBatch})` },
    "max-length": { type: "string", value: "N", description: `train: longer rows are cut (and counted) (default ${TRAIN_DEFAULTS.maxLength})` },
    packing: { type: "boolean", description: "train: pack rows into sequences of --max-length (block-diagonal attention) instead of padding" },
    schedule: { type: "string", value: "KIND", description: `train: ${SCHEDULES.join(" | ")} (default ${TRAIN_DEFAULTS.schedule})` },
    warmup: { type: "string", value: "N", description: "train: warmup steps, or a fraction < 1 of all steps (default 0)" },
    "weight-decay": { type: "string", value: "W", description: "train: AdamW's decoupled weight decay (default 0)" },
    "max-grad-norm": { type: "string", value: "N", description: "train: clip the gradient norm; 0 = off (default 1)" },
    seed: { type: "string", value: "S", description: "generate: sampling seed; train: data order, init, dropout (default 42)" },
    "save-steps": { type: "string", value: "N", description: `train: a checkpoint every N steps and at the end (default ${TRAIN_DEFAULTS.saveSteps})` },
    "eval-steps": { type: "string", value: "N", description: "train: evaluate every N steps (default: --save-steps)" },
    init: { type: "string", value: "DIR", description: "train: start from this PEFT adapter instead of a new one" },
    overwrite: { type: "boolean", description: "train: delete the earlier training files in --out and start over" },
    device: { type: "string", value: "cpu|webgpu|cuda", description: "where to run (default cpu); webgpu: any GPU through ONNX Runtime's bundled WebGPU provider" },
    "device-id": { type: "string", value: "N", description: "CUDA device ordinal (default 0)" },
    dtype: { type: "string", value: "float32|float16", description: "score/generate: compute type; float16 on a GPU only (default float32)" },
    attention: { type: "string", value: "ops|fused", description: "score/generate: plain ops, or ONNX Runtime's fused GroupQueryAttention (default ops)" },
    threads: { type: "string", value: "N", description: "CPU threads (default: every core)" },
    json: { type: "boolean", description: "end stdout with one JSON line" },
    quiet: { type: "boolean", short: "q", description: "no progress output" },
  },
} as const;

const usage = (message: string) => new BdcError({ code: "BDC_USAGE", message: `bdc lm: ${message}`, hint: `usage: ${spec.usage}` });

const numberFlag = (args: ParsedArgs, name: string, check: (n: number) => boolean, what: string) => parseNumberFlag(args, name, check, what, usage);

const isPositiveInt = (n: number) => Number.isInteger(n) && n > 0;

async function load(io: Io, args: ParsedArgs): Promise<CausalLM> {
  const model = args.flags["model"];
  if (typeof model !== "string") throw usage("--model is required");
  const device = deviceFlag(args);
  const dtype = args.flags["dtype"] ?? "float32";
  if (dtype !== "float32" && dtype !== "float16") throw usage(`--dtype ${String(dtype)}: choose float32 or float16`);
  if (dtype === "float16" && device === "cpu") throw usage("--dtype float16 is for a GPU (--device webgpu or cuda); on the CPU float32 is ONNX Runtime's fast path");
  const attention = args.flags["attention"] ?? "ops";
  if (attention !== "ops" && attention !== "fused") throw usage(`--attention ${String(attention)}: choose ops or fused`);
  const dir = resolveModelDir(model, io.cwd);
  const quiet = args.flags["quiet"] === true;
  return CausalLM.load(dir, {
    device,
    dtype,
    attention,
    deviceId: numberFlag(args, "device-id", (n) => Number.isInteger(n) && n >= 0, "a device number"),
    threads: numberFlag(args, "threads", isPositiveInt, "a positive integer"),
    cacheDir: defaultOnnxCache(io.cwd),
    adapter: typeof args.flags["adapter"] === "string" ? path.resolve(io.cwd, args.flags["adapter"]) : undefined,
    onProgress: quiet ? undefined : (line) => io.err(`${line}\n`),
  });
}

/** Which devices this machine can run the model on, each probed as `device:` would be. */
async function devices(io: Io, args: ParsedArgs): Promise<number> {
  const rows = await Promise.all(DEVICES.map(async (device) => ({ device, unavailable: await deviceUnavailableReason(device) })));
  if (args.flags["json"] === true) {
    io.out(`${JSON.stringify(rows.map((r) => ({ device: r.device, available: r.unavailable === undefined, ...(r.unavailable === undefined ? {} : { reason: r.unavailable, hint: deviceInstallHint(r.device) }) })))}\n`);
  } else {
    for (const r of rows) io.out(`${r.device.padEnd(7)} ${r.unavailable === undefined ? "available" : `unavailable: ${r.unavailable}`}\n`);
    const first = rows.find((r) => r.unavailable !== undefined);
    if (first !== undefined) io.err(`to enable ${first.device}: ${deviceInstallHint(first.device).split("\n").join("\n  ")}\n`);
  }
  return 0;
}

async function score(io: Io, args: ParsedArgs): Promise<number> {
  const text = args.flags["text"];
  if (typeof text !== "string") throw usage("score needs --text");
  const lm = await load(io, args);
  try {
    const ids = lm.tokenizer.encode(text, { addSpecialTokens: false });
    const bos = lm.tokenizer.bosTokenId ?? lm.config.bosTokenId;
    if (args.flags["bos"] === true) {
      if (bos === undefined) throw new BdcError({ code: "BDC_USAGE", message: `bdc lm score --bos: ${path.basename(lm.dir)} has no BOS token`, hint: "drop --bos" });
      ids.unshift(bos);
    }
    if (ids.length < 2) throw usage("--text must be at least two tokens long to be scored");
    const logprobs = await scoreTokens(lm, ids);
    if (args.flags["json"] === true) {
      io.out(`${JSON.stringify({ tokens: ids, logprobs })}\n`);
    } else {
      io.out(`${"token".padEnd(24)} ${"id".padStart(7)}  logprob\n`);
      ids.forEach((id, i) => io.out(`${JSON.stringify(lm.tokenizer.decode([id])).slice(0, 24).padEnd(24)} ${String(id).padStart(7)}  ${i === 0 ? "" : logprobs[i - 1]!.toFixed(4)}\n`));
      const total = logprobs.reduce((s, x) => s + x, 0);
      io.out(`total ${total.toFixed(4)} over ${logprobs.length} tokens, perplexity ${Math.exp(-total / logprobs.length).toFixed(3)}\n`);
    }
    return 0;
  } finally {
    await lm.dispose();
  }
}

async function runGenerate(io: Io, args: ParsedArgs): Promise<number> {
  const prompt = args.flags["prompt"];
  if (typeof prompt !== "string") throw usage("generate needs --prompt");
  const maxNewTokens = numberFlag(args, "max-tokens", isPositiveInt, "a positive integer") ?? 128;
  const temperature = numberFlag(args, "temperature", (n) => n >= 0, "a temperature >= 0");
  const topP = numberFlag(args, "top-p", (n) => n > 0 && n <= 1, "in (0, 1]");
  const topK = numberFlag(args, "top-k", isPositiveInt, "a positive integer");
  const seed = numberFlag(args, "seed", Number.isInteger, "an integer");
  const lm = await load(io, args);
  try {
    const text = args.flags["chat"] === true ? lm.tokenizer.applyChatTemplate([{ role: "user", content: prompt }], { addGenerationPrompt: true }) : prompt;
    const ids = lm.tokenizer.encode(text, { addSpecialTokens: args.flags["chat"] !== true });
    const stop = args.flags["stop"] as string[] | undefined;
    const out = await generate(lm, ids, { maxNewTokens, temperature, topP, topK, seed, stop });
    const summary = {
      text: out.text,
      tokens: out.tokens.length,
      tokens_per_second: Math.round(out.tokensPerSecond * 100) / 100,
      prompt_tokens: out.promptTokens,
      prefill_tokens_per_second: out.prefillSeconds > 0 ? Math.round((out.promptTokens / out.prefillSeconds) * 100) / 100 : 0,
      finish_reason: out.finishReason,
    };
    if (args.flags["json"] === true) io.out(`${JSON.stringify(summary)}\n`);
    else {
      io.out(`${out.text}\n`);
      io.err(`${summary.tokens} tokens, ${summary.tokens_per_second} tokens/s (prompt ${summary.prompt_tokens} tokens at ${summary.prefill_tokens_per_second} tokens/s), ${summary.finish_reason}\n`);
    }
    return 0;
  } finally {
    await lm.dispose();
  }
}

/** "0-9,12" -> [0..9, 12]. */
function parseLayers(raw: string): number[] {
  const out: number[] = [];
  for (const part of raw.split(",").map((p) => p.trim())) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (m === null) throw usage(`--layers ${raw}: give layer numbers and ranges, e.g. 0-9 or 0,2,4`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw usage(`--layers ${raw}: the range ${part} is empty`);
    for (let l = from; l <= to; l++) out.push(l);
  }
  return out;
}

function parseTargets(raw: string): LoraTarget[] {
  if (raw.trim() === "all") return [...LORA_TARGETS];
  const names = raw.split(",").map((t) => t.trim()).filter((t) => t !== "");
  for (const t of names) {
    if (!(LORA_TARGETS as ReadonlyArray<string>).includes(t)) throw usage(`--targets: "${t}" is not a projection of a Llama-family model; choose from ${LORA_TARGETS.join(", ")}, or all`);
  }
  return names as LoraTarget[];
}

/** The training files a run writes into --out (what --overwrite deletes; nothing else there is touched). */
function removeTrainingFiles(out: string): void {
  if (!fs.existsSync(out)) return;
  for (const name of fs.readdirSync(out)) {
    if (name.startsWith("checkpoint-") || name.startsWith(".checkpoint-") || Object.values(TRAIN_FILES).includes(name as never) || name === "adapter_config.json" || name === "adapter_model.safetensors") {
      fs.rmSync(path.join(out, name), { recursive: true, force: true });
    }
  }
}

/** Input problems (bad data, flags, adapters, a device that is not there) exit 2, as usage errors do; failures of the run exit 1. */
const INPUT_ERRORS = /^BDC_(TRAIN_CONFIG|TRAIN_DATA|LORA_CONFIG|ADAPTER_|MODEL_|RESUME_MISMATCH|FILE_NOT_FOUND|USAGE|DEVICE_UNAVAILABLE)/;

function deviceFlag(args: ParsedArgs): Device {
  const device = args.flags["device"] ?? "cpu";
  if (!DEVICES.includes(device as Device)) throw usage(`--device ${String(device)}: choose ${DEVICES.join(", ")}`);
  return device as Device;
}

async function runTrain(io: Io, args: ParsedArgs): Promise<number> {
  const str = (name: string) => (typeof args.flags[name] === "string" ? (args.flags[name] as string) : undefined);
  const need = (name: string) => str(name) ?? (() => {
    throw usage(`train needs --${name}`);
  })();
  const modelFlag = need("model");
  const data = path.resolve(io.cwd, need("data"));
  const out = path.resolve(io.cwd, need("out"));
  const device = deviceFlag(args);
  const schedule = str("schedule") ?? TRAIN_DEFAULTS.schedule;
  if (!SCHEDULES.includes(schedule as Schedule)) throw usage(`--schedule ${schedule}: choose ${SCHEDULES.join(", ")}`);
  const num = (name: string, fallback: number, check: (n: number) => boolean, what: string) => numberFlag(args, name, check, what) ?? fallback;
  const optionalPath = (name: string) => (str(name) === undefined ? undefined : path.resolve(io.cwd, str(name)!));
  const train: TrainArgs = {
    ...TRAIN_DEFAULTS,
    model: resolveModelDir(modelFlag, io.cwd),
    data,
    evalData: optionalPath("eval-data"),
    out,
    rank: num("rank", TRAIN_DEFAULTS.rank, isPositiveInt, "a positive integer"),
    alpha: num("alpha", TRAIN_DEFAULTS.alpha, (n) => n > 0, "a positive number"),
    rslora: args.flags["rslora"] === true,
    dropout: num("dropout", TRAIN_DEFAULTS.dropout, (n) => n >= 0 && n < 1, "in [0, 1)"),
    targets: str("targets") === undefined ? TRAIN_DEFAULTS.targets : parseTargets(str("targets")!),
    layers: str("layers") === undefined ? undefined : parseLayers(str("layers")!),
    lr: num("lr", TRAIN_DEFAULTS.lr, (n) => n > 0, "a positive number"),
    epochs: num("epochs", TRAIN_DEFAULTS.epochs, isPositiveInt, "a positive integer"),
    maxSteps: numberFlag(args, "max-steps", isPositiveInt, "a positive integer"),
    batch: num("batch", TRAIN_DEFAULTS.batch, isPositiveInt, "a positive integer"),
    microBatch: num("micro-batch", TRAIN_DEFAULTS.microBatch, isPositiveInt, "a positive integer"),
    maxLength: num("max-length", TRAIN_DEFAULTS.maxLength, isPositiveInt, "a positive integer"),
    packing: args.flags["packing"] === true,
    schedule: schedule as Schedule,
    warmup: num("warmup", TRAIN_DEFAULTS.warmup, (n) => n >= 0 && (n < 1 || Number.isInteger(n)), "whole steps, or a fraction < 1 of all steps"),
    weightDecay: num("weight-decay", TRAIN_DEFAULTS.weightDecay, (n) => n >= 0, "a number >= 0"),
    maxGradNorm: num("max-grad-norm", TRAIN_DEFAULTS.maxGradNorm, (n) => n >= 0, "a number >= 0"),
    seed: num("seed", TRAIN_DEFAULTS.seed, Number.isInteger, "an integer"),
    saveSteps: num("save-steps", TRAIN_DEFAULTS.saveSteps, isPositiveInt, "a positive integer"),
    evalSteps: numberFlag(args, "eval-steps", isPositiveInt, "a positive integer"),
    init: optionalPath("init"),
    device,
    deviceId: numberFlag(args, "device-id", (n) => Number.isInteger(n) && n >= 0, "a device number"),
    threads: numberFlag(args, "threads", isPositiveInt, "a positive integer"),
    cacheDir: defaultOnnxCache(io.cwd),
  };
  if (args.flags["overwrite"] === true) removeTrainingFiles(out);
  const quiet = args.flags["quiet"] === true;
  const display = new TrainProgressDisplay((t) => io.err(t), io.isTTY);
  const controller = new AbortController();
  const onSignal = () => {
    io.err("\nstopping after this micro-batch; the last checkpoint is kept (the same command resumes)\n");
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const result = await trainLora(train, { log: quiet ? undefined : (line) => display.log(line), progress: quiet ? undefined : (p) => display.update(p), signal: controller.signal });
    display.close();
    const r = result.report;
    const summary = {
      adapter: result.adapterDir,
      steps: r.steps,
      final_loss: r.final_loss,
      eval_loss: r.eval_loss ?? null,
      best_eval_loss: r.best_eval_loss ?? null,
      tokens_per_second: Math.round(r.tokens_per_second * 10) / 10,
      seconds: Math.round(r.seconds * 100) / 100,
      examples: r.data.examples,
      truncated: r.data.truncated,
      resumed_from_step: r.resumed_from_step ?? null,
      already_done: result.alreadyDone,
      loss_curve: path.join(result.adapterDir, TRAIN_FILES.lossCurve),
    };
    if (args.flags["json"] === true) io.out(`${JSON.stringify(summary)}\n`);
    else {
      io.err(`${result.alreadyDone ? "already trained" : `trained ${r.steps} steps in ${summary.seconds}s`}: final loss ${r.final_loss.toFixed(4)}${r.eval_loss === undefined ? "" : `, eval loss ${r.eval_loss.toFixed(4)}`}; loss curve: ${summary.loss_curve}\n`);
      io.out(`${result.adapterDir}\n`);
    }
    return 0;
  } catch (e) {
    display.close();
    if (e instanceof BdcError && e.code === "BDC_INTERRUPTED") {
      io.err(`${e.message}\n`);
      return 130;
    }
    if (e instanceof BdcError && INPUT_ERRORS.test(e.code)) throw new BdcErrors([e]);
    throw e;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

const command: CliCommand = {
  spec,
  async run(io, args) {
    const sub = args.positionals[0];
    if (sub === "score") return score(io, args);
    if (sub === "generate") return runGenerate(io, args);
    if (sub === "train") return runTrain(io, args);
    if (sub === "devices") return devices(io, args);
    throw usage(`unknown subcommand "${sub}" (score, generate, train or devices)`);
  },
};

export default command;
