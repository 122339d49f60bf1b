/**
 * LoRA supervised fine-tuning of a local Llama-family model on ONNX Runtime, with the semantics
 * of PEFT + transformers' Trainer (checked against PyTorch in the parity test): PEFT's LoRA
 * initialisation and scaling, dropout on the LoRA input, AdamW, a learning-rate schedule with
 * warmup, gradient-norm clipping, gradient accumulation over micro-batches to the effective
 * batch, a seeded data order, periodic evaluation on a validation file.
 *
 * The output folder holds the PEFT adapter (what `--adapter` and PEFT load), `checkpoint-<step>/`
 * folders (atomic; the run resumes from the newest after any crash), `events.jsonl` (one JSON
 * event per step), `training_args.json`, `train_report.json` and `loss.html` (the loss curve).
 * Every random draw (data order, dropout masks) is a pure function of the seed and the step, so
 * a resumed run computes exactly what an uninterrupted one does: the final adapter is
 * bit-identical given the same CPU thread count.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import { ort, type Device } from "@bdc/onnx-graph";
import { readModelConfig, type ModelConfig } from "../checkpoint/config.ts";
import { mixSeed, mulberry32 } from "../checkpoint/random.ts";
import { loadTokenizer } from "../checkpoint/tokenizer.ts";
import { checkLoraAdapter, cloneLoraAdapter, initLoraAdapter, loraScale, moduleKey, normalizeLoraConfig, projectionDims, type LoraAdapter, type LoraConfig, type LoraTarget } from "../lora/adapter.ts";
import { writeFileDurably } from "../durable-files.ts";
import { readPeftAdapter, writePeftAdapter } from "../lora/peft.ts";
import { filesKey } from "../model/compiled-cache.ts";
import { MASKED } from "../model/llama-graph.ts";
import { LORA_SCALE_INPUT, loraInputNames, type LoraSlots } from "../model/lora-slots.ts";
import { attentionBias, epochSteps, layoutStep, stepsPerEpoch, type MicroBatch } from "./batching.ts";
import { CheckpointStore, type CheckpointIo, type TrainerState } from "./checkpoints.ts";
import { loadTrainingData, type DataReport } from "./data.ts";
import { readLossHistory, writeLossCurve } from "./loss-curve.ts";
import { AdamW, clipGradNorm, learningRate, type Schedule } from "./optimizer.ts";
import { checkDevice, checkSameRun, hashArgs, placementChange, trainingInputs, type RunPlacement } from "./run-args.ts";
import { gradOutputName, LOSS_OUTPUT, openTrainingSession, trainableInputs, trainingInputNames } from "./training-graph.ts";

export interface TrainArgs {
  /** Checkpoint folder of the base model. */
  readonly model: string;
  /** Training JSONL (chat messages, prompt/completion or text rows). */
  readonly data: string;
  readonly evalData?: string | undefined;
  /** Output folder: the adapter, checkpoints, events, report. */
  readonly out: string;
  readonly rank: number;
  readonly alpha: number;
  readonly dropout: number;
  readonly targets: ReadonlyArray<LoraTarget>;
  /** Adapted layers (default: all). */
  readonly layers?: ReadonlyArray<number> | undefined;
  readonly rslora: boolean;
  readonly lr: number;
  readonly epochs: number;
  /** Rows per optimizer step (the effective batch). */
  readonly batch: number;
  /** Rows (padding) or packed sequences (packing) per forward pass. */
  readonly microBatch: number;
  readonly maxLength: number;
  readonly schedule: Schedule;
  /** Warmup steps, or a fraction (< 1) of all steps. */
  readonly warmup: number;
  readonly weightDecay: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  /** 0 turns clipping off. */
  readonly maxGradNorm: number;
  readonly packing: boolean;
  readonly seed: number;
  /** A checkpoint every this many steps (and at the end). */
  readonly saveSteps: number;
  /** Evaluate on evalData every this many steps (default: saveSteps) and at the end. */
  readonly evalSteps?: number | undefined;
  readonly saveTotalLimit: number;
  /** Start from this PEFT adapter instead of PEFT's initialisation. */
  readonly init?: string | undefined;
  /** Stop after this many steps (default: epochs x steps per epoch). */
  readonly maxSteps?: number | undefined;
  /** Where the steps run (default cpu): the frozen weights are session initializers on that device; LoRA tensors and gradients move each step. */
  readonly device?: Device | undefined;
  readonly deviceId?: number | undefined;
  readonly threads?: number | undefined;
  readonly cacheDir?: string | undefined;
}

/** The authors' SFT (../shared/paper/reference-notes.md) where they set it; transformers/TRL defaults elsewhere. */
export const TRAIN_DEFAULTS = {
  rank: 8,
  alpha: 16,
  dropout: 0.05,
  targets: ["q_proj", "v_proj"] as ReadonlyArray<LoraTarget>,
  rslora: false,
  lr: 1e-3,
  epochs: 1,
  batch: 64,
  microBatch: 4,
  maxLength: 1024,
  schedule: "linear" as Schedule,
  warmup: 0,
  weightDecay: 0,
  betas: [0.9, 0.999] as readonly [number, number],
  eps: 1e-8,
  maxGradNorm: 1,
  packing: false,
  seed: 42,
  saveSteps: 10,
  saveTotalLimit: 2,
} as const;

export interface TrainProgress {
  readonly step: number;
  readonly totalSteps: number;
  readonly epoch: number;
  readonly loss: number;
  readonly lr: number;
  readonly tokensPerSecond: number;
  readonly etaSeconds: number;
  readonly evalLoss?: number | undefined;
}

export interface TrainHooks {
  readonly log?: ((line: string) => void) | undefined;
  readonly progress?: ((p: TrainProgress) => void) | undefined;
  readonly signal?: AbortSignal | undefined;
  /** How checkpoint files are written (tests simulate a full disk). */
  readonly io?: CheckpointIo | undefined;
}

export interface TrainReport {
  readonly status: "completed";
  readonly out: string;
  readonly steps: number;
  readonly epochs: number;
  readonly resumed_from_step: number | undefined;
  readonly final_loss: number;
  readonly eval_loss: number | undefined;
  readonly best_eval_loss: number | undefined;
  readonly best_step: number | undefined;
  readonly train_tokens: number;
  readonly seconds: number;
  readonly tokens_per_second: number;
  readonly threads: number;
  readonly device: Device;
  readonly data: DataReport;
  readonly eval_data: DataReport | undefined;
  readonly trainable_parameters: number;
  readonly args_hash: string;
}

export interface TrainResult {
  readonly report: TrainReport;
  readonly adapterDir: string;
  /** True when OUT already held a completed run of the same arguments (nothing was done). */
  readonly alreadyDone: boolean;
}

export const TRAIN_FILES = { args: "training_args.json", report: "train_report.json", events: "events.jsonl", lossCurve: "loss.html" } as const;

const fail = (message: string, hint?: string, code = "BDC_TRAIN_CONFIG") => new BdcError({ code, message, ...(hint === undefined ? {} : { hint }) });

/** Checks the numeric arguments; the messages name the flag/key. */
export function checkTrainArgs(a: TrainArgs): void {
  const positiveInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw fail(`${name} must be a positive integer, got ${v}`);
  };
  positiveInt("rank", a.rank);
  positiveInt("epochs", a.epochs);
  positiveInt("batch", a.batch);
  positiveInt("micro_batch", a.microBatch);
  positiveInt("max_length", a.maxLength);
  positiveInt("save_steps", a.saveSteps);
  positiveInt("save_total_limit", a.saveTotalLimit);
  if (a.evalSteps !== undefined) positiveInt("eval_steps", a.evalSteps);
  if (a.maxSteps !== undefined) positiveInt("max_steps", a.maxSteps);
  if (!(a.lr > 0) || !Number.isFinite(a.lr)) throw fail(`lr must be a positive number, got ${a.lr}`);
  if (!(a.alpha > 0)) throw fail(`alpha must be positive, got ${a.alpha}`);
  if (!(a.dropout >= 0 && a.dropout < 1)) throw fail(`dropout must be in [0, 1), got ${a.dropout}`);
  if (!(a.warmup >= 0)) throw fail(`warmup must be >= 0 (steps, or a fraction < 1 of all steps), got ${a.warmup}`);
  if (a.warmup >= 1 && !Number.isInteger(a.warmup)) throw fail(`warmup ${a.warmup}: give whole steps, or a fraction < 1 of all steps`);
  if (!(a.weightDecay >= 0)) throw fail(`weight_decay must be >= 0, got ${a.weightDecay}`);
  if (!(a.eps > 0)) throw fail(`eps must be positive, got ${a.eps}`);
  if (!(a.maxGradNorm >= 0)) throw fail(`max_grad_norm must be >= 0 (0: no clipping), got ${a.maxGradNorm}`);
  for (const b of a.betas) if (!(b >= 0 && b < 1)) throw fail(`betas must be in [0, 1), got ${a.betas.join(", ")}`);
}

/**
 * LoRA dropout masks are drawn in JS (bit-identical to the CPU path and to the PyTorch parity
 * check) and fed with every micro-batch: on a GPU that is host work and an upload proportional to
 * the activations, which the user should know before a long run.
 */
export function dropoutOnDeviceWarning(slots: ReadonlyArray<{ readonly inDim: number }>, microBatch: number, maxLength: number, device: Device): string {
  const values = slots.reduce((n, s) => n + s.inDim, 0) * microBatch * maxLength;
  return `note: with dropout > 0 the LoRA dropout masks are drawn on the host and sent to ${device} with every micro-batch (up to ${(values * 4 / 2 ** 20).toFixed(0)} MB, ${(values / 1e6).toFixed(0)}M random draws); dropout 0 (--dropout 0) keeps a step on the GPU`;
}

/** The arguments that decide the result (threads and cadence of saves do not). */
function resultArgs(a: TrainArgs, model: ModelConfig, lora: LoraConfig): Record<string, unknown> {
  return {
    ...trainingInputs(a.model, a.data, a.evalData),
    architecture: model.architecture,
    rank: lora.rank,
    alpha: lora.alpha,
    rslora: lora.rslora,
    dropout: lora.dropout,
    targets: lora.targets,
    layers: lora.layers,
    lr: a.lr,
    epochs: a.epochs,
    batch: a.batch,
    micro_batch: a.microBatch,
    max_length: a.maxLength,
    schedule: a.schedule,
    warmup: a.warmup,
    weight_decay: a.weightDecay,
    betas: a.betas,
    eps: a.eps,
    max_grad_norm: a.maxGradNorm,
    packing: a.packing,
    seed: a.seed,
    init: a.init === undefined ? null : path.resolve(a.init),
    init_files: a.init === undefined ? null : filesKey(a.init),
    max_steps: a.maxSteps ?? null,
  };
}

interface Slot {
  readonly layer: number;
  readonly target: LoraTarget;
  readonly inDim: number;
  readonly outDim: number;
}

/** Trains a LoRA adapter; see the module comment. */
export async function trainLora(args: TrainArgs, hooks: TrainHooks = {}): Promise<TrainResult> {
  checkTrainArgs(args);
  const log = hooks.log ?? (() => {});
  const model = readModelConfig(args.model);
  const tokenizer = loadTokenizer(args.model);
  const lora = normalizeLoraConfig({ rank: args.rank, alpha: args.alpha, rslora: args.rslora, dropout: args.dropout, targets: args.targets, layers: args.layers, baseModel: path.resolve(args.model) }, model);
  const out = path.resolve(args.out);
  const threads = args.threads ?? os.availableParallelism();
  const placement: RunPlacement = { device: args.device ?? "cpu", deviceId: args.deviceId ?? 0, threads };
  await checkDevice(placement, fail);
  const result = resultArgs(args, model, lora);
  const argsHash = hashArgs(result);

  checkSameRun(path.join(out, TRAIN_FILES.args), result);
  const reportFile = path.join(out, TRAIN_FILES.report);
  if (fs.existsSync(reportFile)) {
    const report = JSON.parse(fs.readFileSync(reportFile, "utf8")) as TrainReport;
    if (report.args_hash === argsHash && report.status === "completed") {
      log(`${out} already holds this training run, completed (${report.steps} steps); nothing to do`);
      return { report, adapterDir: out, alreadyDone: true };
    }
  }

  const train = loadTrainingData(args.data, tokenizer, { maxLength: args.maxLength });
  const evalSet = args.evalData === undefined ? undefined : loadTrainingData(args.evalData, tokenizer, { maxLength: args.maxLength });
  const perEpoch = stepsPerEpoch(train.examples.length, args.batch);
  const totalSteps = args.maxSteps ?? args.epochs * perEpoch;
  const warmup = args.warmup < 1 ? Math.ceil(args.warmup * totalSteps) : args.warmup;
  const evalEvery = args.evalSteps ?? args.saveSteps;
  if (train.report.truncated > 0) log(`${train.report.truncated} of ${train.report.rows} rows were longer than max_length ${args.maxLength} and were cut${train.report.droppedNoCompletion > 0 ? ` (${train.report.droppedNoCompletion} lost every completion token and were dropped)` : ""}`);

  fs.mkdirSync(out, { recursive: true });
  const store = new CheckpointStore(out, hooks.io, args.saveTotalLimit);
  store.removeTemporary();

  // The adapter and optimizer: from the newest checkpoint, an init adapter, or PEFT's init.
  let adapter: LoraAdapter;
  const latest = store.latest();
  let startStep = 0;
  let moments: ReadonlyMap<string, { m: Float32Array; v: Float32Array }> | undefined;
  let optimizerStep = 0;
  let best: { loss: number; step: number } | undefined;
  if (latest !== undefined) {
    const loaded = store.load(latest.dir, model);
    if (loaded.state.args_hash !== argsHash) throw fail(`${latest.dir} was written by a run with other arguments`, "choose another --out, or --overwrite", "BDC_RESUME_MISMATCH");
    const moved = placementChange(loaded.state, placement);
    if (moved !== undefined) log(moved);
    adapter = { config: lora, modules: loaded.adapter.modules };
    moments = loaded.moments;
    startStep = loaded.state.global_step;
    optimizerStep = loaded.state.optimizer_step;
    best = loaded.state.best_eval_loss === undefined ? undefined : { loss: loaded.state.best_eval_loss, step: loaded.state.best_step! };
    log(`resuming from ${path.basename(latest.dir)} (step ${startStep} of ${totalSteps})`);
  } else if (args.init !== undefined) {
    const init = readPeftAdapter(args.init, model);
    const c = init.config;
    if (c.rank !== lora.rank || c.targets.join() !== lora.targets.join() || c.layers.join() !== lora.layers.join()) {
      throw fail(
        `the init adapter ${args.init} has rank ${c.rank} on ${c.targets.join(", ")} of layers ${c.layers.join(", ")}; this run trains rank ${lora.rank} on ${lora.targets.join(", ")} of layers ${lora.layers.join(", ")}`,
        "give --rank, --targets and --layers matching the init adapter",
        "BDC_ADAPTER_INVALID",
      );
    }
    adapter = cloneLoraAdapter({ config: lora, modules: init.modules });
    log(`starting from the adapter ${args.init}`);
  } else {
    adapter = initLoraAdapter(model, lora, mixSeed(args.seed, 0x1a17));
  }
  checkLoraAdapter(adapter, model);
  writeFileDurably(path.join(out, TRAIN_FILES.args), `${JSON.stringify({ result, threads, device: args.device ?? "cpu", save_steps: args.saveSteps, eval_steps: evalEvery, save_total_limit: args.saveTotalLimit, total_steps: totalSteps, warmup_steps: warmup }, null, 2)}\n`);

  const slots: LoraSlots = { targets: lora.targets, layers: lora.layers, dropout: lora.dropout > 0 };
  const session = await openTrainingSession(args.model, model, slots, { cacheDir: args.cacheDir, ...placement, log });
  try {
    const dims = projectionDims(model);
    const slotList: Slot[] = lora.layers.flatMap((layer) => lora.targets.map((target) => ({ layer, target, inDim: dims[target][0], outDim: dims[target][1] })));
    const trainable = trainableInputs(model, slots);
    if (slots.dropout === true && placement.device !== "cpu") log(dropoutOnDeviceWarning(slotList, args.microBatch, args.maxLength, placement.device));
    const params = new Map<string, Float32Array>();
    for (const s of slotList) {
      const m = adapter.modules.get(moduleKey(s.layer, s.target))!;
      const names = loraInputNames(s.layer, s.target);
      params.set(names.a, m.A);
      params.set(names.b, m.B);
    }
    const optimizer = new AdamW(params, { betas: args.betas, eps: args.eps, weightDecay: args.weightDecay });
    optimizer.step = optimizerStep;
    if (moments !== undefined) {
      for (const [name, s] of optimizer.state) {
        const saved = moments.get(name);
        if (saved === undefined || saved.m.length !== s.m.length || saved.v.length !== s.v.length) throw fail(`the optimizer state of ${latest!.dir} does not fit ${name}`, "delete the checkpoint folder to restart", "BDC_TRAIN_CHECKPOINT");
        s.m.set(saved.m);
        s.v.set(saved.v);
      }
    }
    const scale = loraScale(lora);
    const parameterCount = [...params.values()].reduce((n, p) => n + p.length, 0);
    const eventsFile = path.join(out, TRAIN_FILES.events);
    const emit = (type: string, data: Record<string, unknown>) => fs.appendFileSync(eventsFile, `${JSON.stringify({ type, time: new Date().toISOString(), ...data })}\n`);
    emit("train.start", { step: startStep, total_steps: totalSteps, resumed: startStep > 0, threads, examples: train.examples.length, trainable_parameters: parameterCount });
    log(`training ${parameterCount.toLocaleString("en-US")} LoRA parameters (rank ${lora.rank}, alpha ${lora.alpha}, ${lora.targets.join("+")}, ${lora.layers.length} layers) on ${train.examples.length} rows: ${totalSteps} steps of ${args.batch} rows, ${threads} thread${threads === 1 ? "" : "s"}`);

    /** Feeds of one micro-batch; `dropoutKey` undefined: no dropout (evaluation). */
    const feedsOf = (mb: MicroBatch, tokenWeight: number, dropoutKey: readonly number[] | undefined): Record<string, ort.Tensor> => {
      const rows = mb.ids.length;
      const S = mb.seq;
      const n = mb.lossIndex.length;
      const feeds: Record<string, ort.Tensor> = {
        [trainingInputNames.ids]: new ort.Tensor("int64", BigInt64Array.from(mb.ids.flat(), BigInt), [rows, S]),
        [trainingInputNames.positions]: new ort.Tensor("int64", BigInt64Array.from(mb.positions.flat(), BigInt), [rows, S]),
        [trainingInputNames.bias]: new ort.Tensor("float32", attentionBias(mb, MASKED.float32, model.slidingWindow), [rows, 1, S, S]),
        [trainingInputNames.lossIndex]: new ort.Tensor("int64", BigInt64Array.from(mb.lossIndex, BigInt), [n]),
        [trainingInputNames.labels]: new ort.Tensor("int64", BigInt64Array.from(mb.labels, BigInt), [n, 1]),
        [trainingInputNames.lossWeight]: new ort.Tensor("float32", new Float32Array(n).fill(tokenWeight), [n, 1]),
        [LORA_SCALE_INPUT]: new ort.Tensor("float32", Float32Array.of(scale), [1]),
      };
      slotList.forEach((s, k) => {
        const names = loraInputNames(s.layer, s.target);
        feeds[names.a] = new ort.Tensor("float32", params.get(names.a)!, [lora.rank, s.inDim]);
        feeds[names.b] = new ort.Tensor("float32", params.get(names.b)!, [s.outDim, lora.rank]);
        if (slots.dropout === true) {
          const mask = new Float32Array(rows * S * s.inDim);
          if (dropoutKey === undefined) mask.fill(1);
          else {
            // torch's dropout: zero with probability p, else scale by 1/(1-p).
            const rand = mulberry32(mixSeed(args.seed, ...dropoutKey, k));
            const keep = Math.fround(1 / (1 - lora.dropout));
            for (let i = 0; i < mask.length; i++) mask[i] = rand() < lora.dropout ? 0 : keep;
          }
          feeds[names.dropout] = new ort.Tensor("float32", mask, [rows, S, s.inDim]);
        }
      });
      return feeds;
    };

    const sources = (mb: MicroBatch) => mb.examples.map((i) => train.examples[i]!.source);
    const evaluate = async (): Promise<number | undefined> => {
      if (evalSet === undefined) return undefined;
      const all = evalSet.examples.map((_, i) => i);
      const batches = layoutStep(evalSet.examples, all, { microBatch: args.microBatch, packing: args.packing, maxLength: args.maxLength });
      const tokens = batches.reduce((n, b) => n + b.lossIndex.length, 0);
      let loss = 0;
      for (const mb of batches) loss += (await session.run(feedsOf(mb, 1 / tokens, undefined)))[LOSS_OUTPUT]!.data[0] as number;
      return loss;
    };

    const epochCache = new Map<number, number[][]>();
    const stepRows = (step: number): number[] => {
      const epoch = Math.floor(step / perEpoch);
      let steps = epochCache.get(epoch);
      if (steps === undefined) {
        epochCache.clear();
        steps = epochSteps(train.examples.length, args.batch, args.seed, epoch);
        epochCache.set(epoch, steps);
      }
      return steps[step % perEpoch]!;
    };

    const started = performance.now();
    let tokensDone = 0;
    let lastLoss = Number.NaN;
    let lastEval: number | undefined;
    let lastSaved = latest?.step;
    const stateAt = (step: number): TrainerState => ({
      global_step: step,
      total_steps: totalSteps,
      epoch: step / perEpoch,
      args_hash: argsHash,
      threads,
      device: placement.device,
      rng: { seed: args.seed, scheme: "mulberry32 streams keyed by (seed, epoch) for the data order and (seed, step, micro-batch, slot) for dropout" },
      optimizer_step: optimizer.step,
      best_eval_loss: best?.loss,
      best_step: best?.step,
    });

    for (let step = startStep; step < totalSteps; step++) {
      const rows = stepRows(step);
      const micro = layoutStep(train.examples, rows, { microBatch: args.microBatch, packing: args.packing, maxLength: args.maxLength });
      const scoredTokens = micro.reduce((n, mb) => n + mb.lossIndex.length, 0);
      const grads = new Map<string, Float32Array>();
      let loss = 0;
      for (const [k, mb] of micro.entries()) {
        if (hooks.signal?.aborted) {
          throw new BdcError({ code: "BDC_INTERRUPTED", message: `training stopped during step ${step + 1}; ${lastSaved === undefined ? "no checkpoint was written yet" : `checkpoint-${lastSaved} holds step ${lastSaved}`}`, hint: "run the same command again to resume" });
        }
        const outputs = await session.run(feedsOf(mb, 1 / scoredTokens, lora.dropout > 0 ? [step, k] : undefined));
        const mbLoss = outputs[LOSS_OUTPUT]!.data[0] as number;
        if (!Number.isFinite(mbLoss)) {
          throw new BdcError({
            code: "BDC_TRAIN_NONFINITE",
            message: `step ${step + 1}, micro-batch ${k + 1} of ${micro.length}: the loss is ${mbLoss} (rows ${sources(mb).join(", ")})`,
            hint: `lower the learning rate (--lr ${args.lr}) or check those rows; ${lastSaved === undefined ? "no checkpoint was written" : `checkpoint-${lastSaved} (the last good state) is kept`}, and the same command resumes from it`,
          });
        }
        loss += mbLoss;
        for (const name of trainable) {
          const g = outputs[gradOutputName(name)]!.data as Float32Array;
          const acc = grads.get(name);
          if (acc === undefined) grads.set(name, g);
          else for (let i = 0; i < acc.length; i++) acc[i]! += g[i]!;
        }
        tokensDone += mb.tokens;
      }
      const gradNorm = clipGradNorm(grads, args.maxGradNorm);
      if (!Number.isFinite(gradNorm)) {
        throw new BdcError({
          code: "BDC_TRAIN_NONFINITE",
          message: `step ${step + 1}: the gradient norm is ${gradNorm} (rows ${micro.flatMap(sources).join(", ")})`,
          hint: `lower the learning rate (--lr ${args.lr}); ${lastSaved === undefined ? "no checkpoint was written" : `checkpoint-${lastSaved} is kept`}, and the same command resumes from it`,
        });
      }
      const lr = learningRate(args.schedule, args.lr, step, totalSteps, warmup);
      optimizer.update(grads, lr);
      lastLoss = loss;
      const done = step + 1;
      const seconds = (performance.now() - started) / 1000;
      const tokensPerSecond = tokensDone / Math.max(seconds, 1e-9);
      emit("train.step", { step: done, epoch: done / perEpoch, loss, lr, grad_norm: gradNorm, tokens: micro.reduce((n, mb) => n + mb.tokens, 0), scored_tokens: scoredTokens, micro_batches: micro.length, seconds });
      if (evalSet !== undefined && (done % evalEvery === 0 || done === totalSteps)) {
        lastEval = await evaluate();
        if (lastEval !== undefined && (best === undefined || lastEval < best.loss)) best = { loss: lastEval, step: done };
        emit("train.eval", { step: done, eval_loss: lastEval });
        log(`step ${done}: eval loss ${lastEval!.toFixed(4)}`);
      }
      if (done % args.saveSteps === 0 || done === totalSteps) {
        store.save(done, adapter, model, optimizer.state, stateAt(done));
        lastSaved = done;
        emit("train.checkpoint", { step: done, dir: `checkpoint-${done}` });
      }
      hooks.progress?.({ step: done, totalSteps, epoch: done / perEpoch, loss, lr, tokensPerSecond, etaSeconds: ((totalSteps - done) * seconds) / Math.max(1, done - startStep), evalLoss: lastEval });
    }

    if (startStep === totalSteps) {
      // Killed after the last checkpoint but before the adapter was written: the state is final.
      lastLoss = readLossHistory(eventsFile).train.at(-1)?.value ?? Number.NaN;
      lastEval = await evaluate();
    }
    writePeftAdapter(out, { config: lora, modules: adapter.modules }, model);
    const seconds = (performance.now() - started) / 1000;
    const report: TrainReport = {
      status: "completed",
      out,
      steps: totalSteps,
      epochs: totalSteps / perEpoch,
      resumed_from_step: startStep > 0 ? startStep : undefined,
      final_loss: lastLoss,
      eval_loss: lastEval,
      best_eval_loss: best?.loss,
      best_step: best?.step,
      train_tokens: tokensDone,
      seconds,
      tokens_per_second: tokensDone / Math.max(seconds, 1e-9),
      threads,
      device: args.device ?? "cpu",
      data: train.report,
      eval_data: evalSet?.report,
      trainable_parameters: parameterCount,
      args_hash: argsHash,
    };
    emit("train.end", { steps: totalSteps, final_loss: lastLoss, eval_loss: lastEval });
    writeLossCurve(path.join(out, TRAIN_FILES.lossCurve), eventsFile, { title: `LoRA r${lora.rank} on ${path.basename(args.model)}: ${path.basename(args.data)}` });
    writeFileDurably(reportFile, `${JSON.stringify(report, null, 2)}\n`);
    return { report, adapterDir: out, alreadyDone: false };
  } finally {
    await session.release();
  }
}
