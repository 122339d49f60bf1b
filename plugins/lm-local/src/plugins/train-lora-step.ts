/**
 * step/train-lora: fine-tunes one LoRA adapter of a local model from a workflow (the trainer of
 * `bdc lm train`), writing the PEFT folder into the step's directory: `steps/<step>/<item>/`
 * (adapter_config.json, adapter_model.safetensors, checkpoints, events.jsonl, loss.html, which the
 * run's report links). Without `for_each` it trains once (item "all"); with `for_each` it trains
 * one adapter per item, the item's `data` overriding `data:` - a path relative to the run
 * directory, as earlier steps write them (one expert per cluster:
 * `for_each: {step: cluster, items: clusters}`), or absolute.
 * A run killed mid-training resumes the item from its last checkpoint (`bdc run --resume`).
 *
 * Output per item: {adapter, steps, final_loss, eval_loss, train_tokens, seconds}.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Schema } from "effect";
import { BdcError, definePlugin, FilePath, option, optional, PathOrName, required, type StepImpl } from "@bdc/core";
import { resolveModelDir } from "../hub/pull-model.ts";
import { LORA_TARGETS } from "../lora/adapter.ts";
import { defaultOnnxCache } from "../model/causal-lm.ts";
import { SCHEDULES } from "../train/optimizer.ts";
import { TRAIN_DEFAULTS, trainLora } from "../train/trainer.ts";
import { MODEL_DOC, modelProblems, placementFields } from "./device-config.ts";

export interface TrainLoraOutput {
  /** The adapter folder, relative to the run directory. */
  readonly adapter: string;
  readonly steps: number;
  readonly final_loss: number;
  readonly eval_loss: number | null;
  readonly train_tokens: number;
  readonly seconds: number;
}

const D = TRAIN_DEFAULTS;
const positiveInt = Schema.Int.pipe(Schema.positive());

export const TrainLoraConfig = Schema.Struct({
  model: required(PathOrName.pipe(Schema.minLength(1)), MODEL_DOC),
  data: optional(FilePath, 'the training JSONL ({"messages"}, {"prompt","completion"} or {"text"} rows); an item\'s `data` field overrides it'),
  eval_data: optional(FilePath, "a validation JSONL, evaluated every eval_steps and at the end"),
  rank: option(positiveInt, D.rank, "LoRA rank"),
  alpha: option(Schema.Number.pipe(Schema.positive()), D.alpha, "lora_alpha (scale alpha / rank)"),
  rslora: option(Schema.Boolean, D.rslora, "rank-stabilised scale alpha / sqrt(rank)"),
  dropout: option(Schema.Number.pipe(Schema.greaterThanOrEqualTo(0), Schema.lessThan(1)), D.dropout, "dropout on the LoRA input"),
  targets: option(Schema.Array(Schema.Literal(...LORA_TARGETS)).pipe(Schema.minItems(1)), [...D.targets], "projections to adapt"),
  layers: optional(Schema.Array(Schema.Int.pipe(Schema.nonNegative())).pipe(Schema.minItems(1)), "layers to adapt (default: all)"),
  lr: option(Schema.Number.pipe(Schema.positive()), D.lr, "peak learning rate"),
  epochs: option(positiveInt, D.epochs, "passes over the data"),
  max_steps: optional(positiveInt, "stop after this many optimizer steps"),
  batch: option(positiveInt, D.batch, "rows per optimizer step"),
  micro_batch: option(positiveInt, D.microBatch, "rows (or packed sequences) per forward pass"),
  max_length: option(positiveInt, D.maxLength, "longer rows are cut and counted"),
  packing: option(Schema.Boolean, D.packing, "pack rows into sequences of max_length (block-diagonal attention)"),
  schedule: option(Schema.Literal(...SCHEDULES), D.schedule, "learning-rate schedule"),
  warmup: option(Schema.Number.pipe(Schema.nonNegative()), D.warmup, "warmup steps, or a fraction < 1 of all steps"),
  weight_decay: option(Schema.Number.pipe(Schema.nonNegative()), D.weightDecay, "AdamW's decoupled weight decay"),
  max_grad_norm: option(Schema.Number.pipe(Schema.nonNegative()), D.maxGradNorm, "gradient-norm clipping; 0 = off"),
  seed: option(Schema.Int, D.seed, "data order, initialisation and dropout"),
  save_steps: option(positiveInt, D.saveSteps, "a checkpoint every this many steps"),
  eval_steps: optional(positiveInt, "evaluate every this many steps (default: save_steps)"),
  init: optional(FilePath, "start from this PEFT adapter"),
  ...placementFields,
  threads: optional(positiveInt, "CPU threads (default: every core)"),
  onnx_cache: optional(FilePath, "where the built ONNX models are kept (default: .cache/bdc/onnx under the project root)"),
});
export type TrainLoraConfig = Schema.Schema.Type<typeof TrainLoraConfig>;

export default definePlugin({
  id: "step/train-lora",
  version: "0.1.0",
  description: "Fine-tune a LoRA adapter of a local model (PEFT semantics, ONNX Runtime): one PEFT folder per item, resumable from checkpoints",
  config: TrainLoraConfig,
  async preflight(config, ctx) {
    const problems = await modelProblems(config.model, { device: config.device, device_id: config.device_id, dtype: "float32", adapter: config.init }, ctx.baseDir);
    for (const [key, file] of [["data", config.data], ["eval_data", config.eval_data]] as const) {
      if (file !== undefined && !fs.existsSync(file)) problems.push({ code: "BDC_FILE_NOT_FOUND", path: [key], message: `${file} does not exist`, hint: "give a JSONL file of training rows" });
    }
    return problems;
  },
  make(config, _deps, kernel): StepImpl<unknown, TrainLoraOutput> {
    const model = resolveModelDir(config.model, kernel.baseDir);
    return {
      async run(item, ctx) {
        const fromItem = (item.data as { data?: unknown } | null)?.data;
        const runDir = path.dirname(path.dirname(ctx.dir));
        const data = typeof fromItem === "string" ? path.resolve(runDir, fromItem) : config.data;
        if (data === undefined) {
          throw new BdcError({ code: "BDC_ITEM_FAILED", message: `item "${item.id}": no training data (set data: in the step's with:, or give items a "data" path)` });
        }
        const out = path.join(ctx.dir, item.id.replace(/[^\w.-]+/g, "_"));
        let shown = -1;
        const result = await trainLora(
          {
            ...TRAIN_DEFAULTS,
            model,
            data,
            evalData: config.eval_data,
            out,
            rank: config.rank,
            alpha: config.alpha,
            rslora: config.rslora,
            dropout: config.dropout,
            targets: config.targets,
            layers: config.layers,
            lr: config.lr,
            epochs: config.epochs,
            maxSteps: config.max_steps,
            batch: config.batch,
            microBatch: config.micro_batch,
            maxLength: config.max_length,
            packing: config.packing,
            schedule: config.schedule,
            warmup: config.warmup,
            weightDecay: config.weight_decay,
            maxGradNorm: config.max_grad_norm,
            seed: config.seed,
            saveSteps: config.save_steps,
            evalSteps: config.eval_steps,
            init: config.init,
            device: config.device,
            deviceId: config.device_id,
            threads: config.threads,
            cacheDir: config.onnx_cache ?? defaultOnnxCache(kernel.baseDir),
          },
          {
            log: (line) => ctx.log(`${item.id}: ${line}`),
            signal: ctx.signal,
            progress: (p) => {
              // A line per tenth of the run: the kernel's bars count items, not optimizer steps.
              const tenth = Math.floor((10 * p.step) / p.totalSteps);
              if (tenth === shown) return;
              shown = tenth;
              ctx.log(`${item.id}: step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)}${p.evalLoss === undefined ? "" : ` eval ${p.evalLoss.toFixed(4)}`} ${p.tokensPerSecond.toFixed(0)} tok/s`);
            },
          },
        );
        const r = result.report;
        ctx.emit("train.done", { item: item.id, steps: r.steps, final_loss: r.final_loss, eval_loss: r.eval_loss ?? null });
        return {
          adapter: path.relative(path.dirname(path.dirname(ctx.dir)), out),
          steps: r.steps,
          final_loss: r.final_loss,
          eval_loss: r.eval_loss ?? null,
          train_tokens: r.train_tokens,
          seconds: Math.round(r.seconds * 100) / 100,
        };
      },
      summarize(results) {
        const done = results.flatMap((r) => (r.output === undefined ? [] : [r.output]));
        return { adapters: done.length, failed: results.length - done.length, steps: done.reduce((n, o) => n + o.steps, 0), final_loss: done.map((o) => o.final_loss) };
      },
    };
  },
});
