/**
 * step/train-hypernet: trains the DisenLoRA hypernetwork (train-hypernet.ts) over the cluster
 * experts, from a workflow. The experts are folders (`experts:`) or the outputs of the step that
 * trained them (`experts_from:`, a step/train-lora fan-out over the clusters: one adapter per
 * cluster, in cluster order); the centroids are a file (`centroids:`) or the cluster step's
 * (`clusters_from:`). Expert k must have been trained on cluster k: the hypernetwork's cosine
 * features pair them.
 *
 * Output: {hypernet, steps, best_epoch, eval_loss_by_epoch, experts, seconds}; the folder is
 * `steps/<step>/hypernet/` (what composer/hypernet and `bdc hypernet export` read). The rows
 * are a file (`data:`) or the D_train.jsonl of this run's step/export-pairs step (`data_from:`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Schema } from "effect";
import { BdcError, definePlugin, FilePath, option, optional, PathOrName, required, type StepContext, type StepImpl, StepName } from "@bdc/core";
import { defaultOnnxCache, deviceProblems, GATE_SCALES, LORA_TARGETS, placementFields, resolveModelDir } from "@bdc/lm-local";
import type { Encoder } from "@bdc/policy";
import { HYPERNET_DIR, SOFTMAX_MODES } from "../hypernet.ts";
import { HYPERNET_TRAIN_DEFAULTS, trainHypernet } from "../train-hypernet.ts";

export interface TrainHypernetOutput {
  readonly hypernet: string;
  readonly steps: number;
  readonly best_epoch: number | null;
  readonly eval_loss_by_epoch: ReadonlyArray<number>;
  readonly experts: ReadonlyArray<string>;
  readonly seconds: number;
}

const positiveInt = Schema.Int.pipe(Schema.positive());
const d = HYPERNET_TRAIN_DEFAULTS;

export const TrainHypernetConfig = Schema.Struct({
  model: required(PathOrName.pipe(Schema.minLength(1)), "the base model the experts were trained on (folder or pulled hub id)"),
  experts: optional(Schema.Array(FilePath), "expert adapter folders, expert k trained on cluster k"),
  experts_from: optional(StepName, "a step whose outputs name the experts (`adapter`; e.g. the step/train-lora fan-out over the clusters)"),
  centroids: optional(FilePath, "centroids.safetensors of the clustering"),
  clusters_from: optional(StepName, "the step/cluster step whose centroids to use"),
  data: optional(FilePath, "training rows (D_train: the problem->thought and thought->solution pairs; chat, prompt/completion or text JSONL)"),
  data_from: optional(StepName, "instead of data: the D_train.jsonl an earlier step of this run wrote (step/export-pairs)"),
  eval_data: optional(FilePath, "validation rows: the loss every epoch, the best epoch kept"),
  layers: optional(Schema.Array(Schema.Int.pipe(Schema.nonNegative())), "compose on these layers (default: every layer the experts adapt; the authors: 0-9)"),
  targets: optional(Schema.Array(Schema.Literal(...LORA_TARGETS)), "compose on these projections (default: the experts' targets; the authors: q_proj, v_proj)"),
  hidden: option(positiveInt, d.hidden, "hidden width of each module's MLP"),
  softmax: option(Schema.Literal(...SOFTMAX_MODES), d.softmax, "all: one softmax over the K*r slots (the authors'); per-rank: each rank across the experts"),
  gate_scale: option(Schema.Literal(...GATE_SCALES), d.gateScale, "mean: uniform gates = the experts' average, one expert's gates = that expert; authors: as released (no LoRA scale)"),
  lr: option(Schema.Number.pipe(Schema.positive()), d.lr, "Adam learning rate"),
  epochs: option(positiveInt, d.epochs, "passes over the data"),
  batch: option(positiveInt, d.batch, "rows per optimizer step"),
  max_length: option(positiveInt, d.maxLength, "rows longer than this many tokens are cut"),
  seed: option(Schema.Int, d.seed, "initialisation and data order"),
  save_steps: option(positiveInt, d.saveSteps, "a checkpoint every this many steps (and every epoch)"),
  max_steps: optional(positiveInt, "stop after this many steps"),
  ...placementFields,
  threads: optional(positiveInt, "CPU threads (default: every core)"),
  onnx_cache: optional(FilePath, "where the built ONNX models are kept (default: .cache/bdc/onnx under the project root)"),
});

function fromStep(ctx: StepContext, step: string, key: string): Array<{ id: string; file: string }> {
  const runDir = path.dirname(path.dirname(ctx.dir));
  return ctx.outputs<Record<string, unknown>>(step).map((o) => {
    const v = o.data?.[key];
    if (typeof v !== "string") throw new BdcError({ code: "BDC_ITEM_FAILED", message: `step "${step}", item "${o.id}" has no "${key}" in its output`, hint: `${step} must be a step whose outputs name ${key === "adapter" ? "adapter folders (step/train-lora)" : "a centroids file (step/cluster)"}` });
    return { id: o.id, file: path.resolve(runDir, v) };
  });
}

export default definePlugin({
  id: "step/train-hypernet",
  version: "0.1.0",
  description: "Train the DisenLoRA hypernetwork (rank-wise gates over the cluster experts per layer) with the base and experts frozen",
  config: TrainHypernetConfig,
  requires: { encoder: { slot: "encoder", description: "embeds each row's input (the encoder the clusters were made with)" } },
  async preflight(config) {
    const problems = await deviceProblems(config);
    if (config.experts !== undefined && config.experts.length === 0) problems.push({ code: "BDC_CONFIG_VALUE", path: ["experts"], message: "no expert folders given", hint: "set experts: to the expert adapters, one per cluster in cluster order (runs/<experts>/steps/expert/cluster-<k>)" });
    if ((config.experts === undefined) === (config.experts_from === undefined)) problems.push({ code: "BDC_CONFIG_VALUE", path: ["experts"], message: "give the experts as experts: (folders) or experts_from: (a step), one of them", hint: "experts_from: expert (the step/train-lora fan-out over the clusters)" });
    if ((config.data === undefined) === (config.data_from === undefined)) problems.push({ code: "BDC_CONFIG_VALUE", path: ["data"], message: "give the training rows as data: (a file) or data_from: (the step/export-pairs step of this run), one of them", hint: "data_from: export" });
    if ((config.centroids === undefined) === (config.clusters_from === undefined)) problems.push({ code: "BDC_CONFIG_VALUE", path: ["centroids"], message: "give the centroids as centroids: (a file) or clusters_from: (the step/cluster step), one of them", hint: "clusters_from: cluster" });
    for (const [key, file] of [["data", config.data], ["eval_data", config.eval_data], ["centroids", config.centroids]] as const) {
      if (file !== undefined && !fs.existsSync(file)) problems.push({ code: "BDC_FILE_NOT_FOUND", path: [key], message: `${file} does not exist` });
    }
    return problems;
  },
  make(config, deps, kernel): StepImpl<unknown, TrainHypernetOutput> {
    const encoder = deps.encoder as Encoder;
    const model = resolveModelDir(config.model, kernel.baseDir);
    return {
      async run(_item, ctx) {
        const experts = config.experts_from !== undefined ? fromStep(ctx, config.experts_from, "adapter").map((e) => ({ name: e.id, dir: e.file })) : config.experts!.map((dir) => ({ name: path.basename(dir), dir }));
        const centroids = config.clusters_from !== undefined ? fromStep(ctx, config.clusters_from, "centroids")[0]?.file : config.centroids;
        if (centroids === undefined) throw new BdcError({ code: "BDC_ITEM_FAILED", message: `step "${config.clusters_from}" has no output with centroids` });
        const runDir = path.dirname(path.dirname(ctx.dir));
        const data = config.data ?? path.join(runDir, "steps", config.data_from!, "D_train.jsonl");
        const out = path.join(ctx.dir, HYPERNET_DIR);
        let shown = -1;
        const { report } = await trainHypernet(
          {
            model,
            experts,
            centroids,
            data,
            evalData: config.eval_data,
            out,
            layers: config.layers,
            targets: config.targets,
            hidden: config.hidden,
            softmax: config.softmax,
            gateScale: config.gate_scale,
            lr: config.lr,
            epochs: config.epochs,
            batch: config.batch,
            maxLength: config.max_length,
            seed: config.seed,
            saveSteps: config.save_steps,
            maxSteps: config.max_steps,
            device: config.device,
            deviceId: config.device_id,
            threads: config.threads,
            cacheDir: config.onnx_cache ?? defaultOnnxCache(kernel.baseDir),
          },
          encoder,
          {
            log: (line) => ctx.log(line),
            signal: ctx.signal,
            progress: (p) => {
              const tenth = Math.floor((10 * p.step) / p.totalSteps);
              if (tenth === shown) return;
              shown = tenth;
              ctx.log(`step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)}${p.evalLoss === undefined ? "" : ` validation ${p.evalLoss.toFixed(4)}`}`);
            },
          },
        );
        return { hypernet: path.relative(runDir, out), steps: report.steps, best_epoch: report.best_epoch ?? null, eval_loss_by_epoch: report.eval_loss_by_epoch, experts: report.experts, seconds: Math.round(report.seconds * 100) / 100 };
      },
      summarize(results) {
        const o = results[0]?.output;
        return o === undefined ? {} : { steps: o.steps, best_epoch: o.best_epoch, eval_loss_by_epoch: o.eval_loss_by_epoch, experts: o.experts.length };
      },
    };
  },
});
