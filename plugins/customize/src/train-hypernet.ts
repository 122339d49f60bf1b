/**
 * Training the DisenLoRA hypernetwork with the base model and the experts frozen (the authors'
 * train_router.py, with their defaults: Adam lr 1e-5, 5 epochs, batch 1, shuffled rows of
 * D_train, the validation loss every epoch, the best epoch kept).
 *
 * One step per row: the hypernetwork turns the row input's embedding into gates (hypernet.ts),
 * the gated training graph of the model (lm-local, slots with gates) gives the loss and dL/dG for
 * every adapted module in one ONNX Runtime run, and the hypernetwork's backward pass chains dL/dG
 * into its parameters. The loss is the usual shifted next-token cross-entropy on the completion;
 * the released code scores the logits at position t against the label at t (no shift), which
 * trains the router on the wrong target - not copied.
 *
 * The output folder holds the hypernetwork (hypernet_config.json + hypernet.safetensors: the best
 * epoch's, or the last without validation data), `checkpoint-<step>/` (atomic; the run resumes
 * from the newest after any crash), `events.jsonl`, `loss.html`, `train_report.json`.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import { ort, type Device } from "@bdc/onnx-graph";
import type { Encoder } from "@bdc/policy";
import { checkCompatible, readCentroids } from "@bdc/cluster";
import {
  AdamW,
  attentionBias,
  checkDevice,
  checkSameRun,
  CheckpointStore,
  compositionScale,
  epochSteps,
  filesKey,
  gradOutputName,
  hashArgs,
  layoutStep,
  loadTokenizer,
  loadTrainingData,
  LORA_SCALE_INPUT,
  loraInputNames,
  LOSS_OUTPUT,
  MASKED,
  momentsBytes,
  placementChange,
  moduleKey,
  openTrainingSession,
  OPTIMIZER_FILE,
  readModelConfig,
  readMoments,
  readLossHistory,
  readPeftAdapter,
  readState,
  sha256File,
  STATE_FILE,
  stackExperts,
  TRAIN_FILES,
  trainingInputNames,
  trainingInputs,
  writeFileDurably,
  writeLossCurve,
  type ExpertStack,
  type GateScale,
  type LoraSlots,
  type LoraTarget,
  type RunPlacement,
  type ModelConfig,
  type TrainerState,
  type TrainingExample,
  type TrainHooks,
} from "@bdc/lm-local";
import { HYPERNET_DEFAULTS, HYPERNET_FILES, hypernetFiles, Hypernetwork, readHypernet, writeHypernet, type HypernetConfig, type SoftmaxMode } from "./hypernet.ts";
import { embedInputs } from "./embed-inputs.ts";

export interface HypernetTrainArgs {
  readonly model: string;
  /** Expert adapters (PEFT folders), one per cluster, in cluster order. */
  readonly experts: ReadonlyArray<{ readonly name: string; readonly dir: string }>;
  /** centroids.safetensors of step/cluster (row k: the cluster of expert k). */
  readonly centroids: string;
  readonly data: string;
  readonly evalData?: string | undefined;
  readonly out: string;
  /** Compose on these layers and targets (default: every module the experts adapt). */
  readonly layers?: ReadonlyArray<number> | undefined;
  readonly targets?: ReadonlyArray<LoraTarget> | undefined;
  readonly hidden: number;
  readonly softmax: SoftmaxMode;
  readonly gateScale: GateScale;
  readonly lr: number;
  readonly epochs: number;
  /** Rows per optimizer step (each row has its own gates: one forward pass per row). */
  readonly batch: number;
  readonly maxLength: number;
  readonly seed: number;
  /** A checkpoint every this many steps (and at the end of every epoch). */
  readonly saveSteps: number;
  readonly maxSteps?: number | undefined;
  /** Where the gated model's steps run (default cpu); the hypernetwork itself is a small MLP in JS. */
  readonly device?: Device | undefined;
  readonly deviceId?: number | undefined;
  readonly threads?: number | undefined;
  readonly cacheDir?: string | undefined;
}

/** The authors' train_router.py (reference-notes.md, Stage 3). */
export const HYPERNET_TRAIN_DEFAULTS = { ...HYPERNET_DEFAULTS, lr: 1e-5, epochs: 5, batch: 1, maxLength: 2048, seed: 7, saveSteps: 100 } as const;

export interface HypernetTrainReport {
  readonly status: "completed";
  readonly out: string;
  readonly steps: number;
  readonly epochs: number;
  readonly resumed_from_step: number | undefined;
  readonly final_loss: number;
  /** Validation loss per epoch (mean per completion token). */
  readonly eval_loss_by_epoch: ReadonlyArray<number>;
  readonly best_epoch: number | undefined;
  readonly kept: "best" | "last";
  readonly seconds: number;
  readonly seconds_per_step: number;
  readonly threads: number;
  readonly experts: ReadonlyArray<string>;
  readonly gate_scale: GateScale;
  readonly softmax: SoftmaxMode;
  readonly trainable_parameters: number;
  readonly embedding: { readonly model: string; readonly dimension: number; readonly truncated: number };
  readonly args_hash: string;
}

/** The LoRA trainer's files, and the best epoch's hypernetwork. */
export const HYPERNET_TRAIN_FILES = { ...TRAIN_FILES, best: "best" } as const;

const fail = (message: string, hint?: string, code = "BDC_TRAIN_CONFIG") => new BdcError({ code, message, ...(hint === undefined ? {} : { hint }) });

/** The experts as one stack, restricted to the composed layers and targets. */
export function loadExpertStack(experts: HypernetTrainArgs["experts"], model: ModelConfig, layers?: ReadonlyArray<number>, targets?: ReadonlyArray<LoraTarget>): ExpertStack {
  const full = stackExperts(
    experts.map((e) => ({ name: e.name, adapter: readPeftAdapter(e.dir, model) })),
    model,
  );
  const keepLayers = layers === undefined ? full.layers : [...new Set(layers)].sort((a, b) => a - b);
  const keepTargets = targets === undefined ? full.targets : full.targets.filter((t) => targets.includes(t));
  for (const l of keepLayers) if (!full.layers.includes(l)) throw fail(`layer ${l} is not adapted by the experts (they adapt layers ${full.layers.join(", ")})`, "compose on layers the experts adapt", "BDC_EXPERTS_MISMATCH");
  for (const t of targets ?? []) if (!full.targets.includes(t)) throw fail(`target ${t} is not adapted by the experts (they adapt ${full.targets.join(", ")})`, "compose on targets the experts adapt", "BDC_EXPERTS_MISMATCH");
  const modules = new Map([...full.modules].filter(([key]) => keepLayers.some((l) => keepTargets.some((t) => moduleKey(l, t) === key))));
  return { ...full, layers: keepLayers, targets: keepTargets, modules };
}

/**
 * The gated training graph of one model over one stack of experts: loss and dL/dG of one row for
 * given gates (batch 1: every row has its own gates). The experts' factors are fed once.
 */
export class GatedLoss {
  private readonly factorFeeds: Record<string, ort.Tensor>;
  private readonly slots: ReadonlyArray<{ readonly key: string; readonly gates: string }>;
  private readonly R: number;

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly model: ModelConfig,
    stack: ExpertStack,
    readonly scale: number,
    private readonly maxLength: number,
  ) {
    const R = stack.rank * stack.experts.length;
    this.R = R;
    this.factorFeeds = { [LORA_SCALE_INPUT]: new ort.Tensor("float32", Float32Array.of(scale), [1]) };
    const slots: Array<{ key: string; gates: string }> = [];
    for (const layer of stack.layers) {
      for (const target of stack.targets) {
        const key = moduleKey(layer, target);
        const m = stack.modules.get(key)!;
        const names = loraInputNames(layer, target);
        this.factorFeeds[names.a] = new ort.Tensor("float32", m.A, [R, m.A.length / R]);
        this.factorFeeds[names.b] = new ort.Tensor("float32", m.B, [m.B.length / R, R]);
        slots.push({ key, gates: names.gates });
      }
    }
    this.slots = slots;
  }

  /** The loss of `example` (each completion token weighted by `tokenWeight`) and dL/dG per module. */
  async run(example: TrainingExample, gates: ReadonlyMap<string, Float32Array>, tokenWeight: number): Promise<{ loss: number; gateGrads: Map<string, Float32Array> }> {
    const [mb] = layoutStep([example], [0], { microBatch: 1, packing: false, maxLength: this.maxLength });
    const S = mb!.seq;
    const n = mb!.lossIndex.length;
    const feeds: Record<string, ort.Tensor> = {
      ...this.factorFeeds,
      [trainingInputNames.ids]: new ort.Tensor("int64", BigInt64Array.from(mb!.ids.flat(), BigInt), [1, S]),
      [trainingInputNames.positions]: new ort.Tensor("int64", BigInt64Array.from(mb!.positions.flat(), BigInt), [1, S]),
      [trainingInputNames.bias]: new ort.Tensor("float32", attentionBias(mb!, MASKED.float32, this.model.slidingWindow), [1, 1, S, S]),
      [trainingInputNames.lossIndex]: new ort.Tensor("int64", BigInt64Array.from(mb!.lossIndex, BigInt), [n]),
      [trainingInputNames.labels]: new ort.Tensor("int64", BigInt64Array.from(mb!.labels, BigInt), [n, 1]),
      [trainingInputNames.lossWeight]: new ort.Tensor("float32", new Float32Array(n).fill(tokenWeight), [n, 1]),
    };
    for (const s of this.slots) feeds[s.gates] = new ort.Tensor("float32", gates.get(s.key)!, [1, 1, this.R]);
    const outputs = await this.session.run(feeds);
    return { loss: outputs[LOSS_OUTPUT]!.data[0] as number, gateGrads: new Map(this.slots.map((s) => [s.key, outputs[gradOutputName(s.gates)]!.data as Float32Array])) };
  }
}

export async function trainHypernet(args: HypernetTrainArgs, encoder: Encoder, hooks: TrainHooks = {}): Promise<{ report: HypernetTrainReport; alreadyDone: boolean }> {
  const log = hooks.log ?? (() => {});
  for (const [name, v] of [["epochs", args.epochs], ["batch", args.batch], ["max_length", args.maxLength], ["save_steps", args.saveSteps], ["hidden", args.hidden]] as const) {
    if (!Number.isInteger(v) || v < 1) throw fail(`${name} must be a positive integer, got ${v}`);
  }
  if (!(args.lr > 0)) throw fail(`lr must be a positive number, got ${args.lr}`);
  const model = readModelConfig(args.model);
  const tokenizer = loadTokenizer(args.model);
  const stack = loadExpertStack(args.experts, model, args.layers, args.targets);
  const centroids = readCentroids(args.centroids);
  if (centroids.k !== stack.experts.length) {
    throw fail(`${args.centroids} holds ${centroids.k} centroids, but ${stack.experts.length} experts were given`, "give one expert per cluster, in cluster order (expert k was trained on cluster k)", "BDC_EXPERTS_MISMATCH");
  }
  checkCompatible(centroids, encoder.dimension, encoder.model);
  const out = path.resolve(args.out);
  const threads = args.threads ?? os.availableParallelism();
  const placement: RunPlacement = { device: args.device ?? "cpu", deviceId: args.deviceId ?? 0, threads };
  await checkDevice(placement, fail);
  const result: Record<string, unknown> = {
    ...trainingInputs(args.model, args.data, args.evalData),
    experts: args.experts.map((e) => ({ name: e.name, dir: path.resolve(e.dir), files: filesKey(e.dir) })),
    centroids_sha256: sha256File(args.centroids),
    encoder: { model: encoder.model, dimension: encoder.dimension },
    layers: stack.layers,
    targets: stack.targets,
    hidden: args.hidden,
    softmax: args.softmax,
    gate_scale: args.gateScale,
    lr: args.lr,
    epochs: args.epochs,
    batch: args.batch,
    max_length: args.maxLength,
    seed: args.seed,
    max_steps: args.maxSteps ?? null,
  };
  const argsHash = hashArgs(result);
  checkSameRun(path.join(out, HYPERNET_TRAIN_FILES.args), result);
  const reportFile = path.join(out, HYPERNET_TRAIN_FILES.report);
  if (fs.existsSync(reportFile)) {
    const report = JSON.parse(fs.readFileSync(reportFile, "utf8")) as HypernetTrainReport;
    if (report.args_hash === argsHash) {
      log(`${out} already holds this hypernetwork, trained (${report.steps} steps); nothing to do`);
      return { report, alreadyDone: true };
    }
  }

  const train = loadTrainingData(args.data, tokenizer, { maxLength: args.maxLength });
  const evalSet = args.evalData === undefined ? undefined : loadTrainingData(args.evalData, tokenizer, { maxLength: args.maxLength });
  if (train.report.truncated > 0) log(`${train.report.truncated} of ${train.report.rows} rows were longer than max_length ${args.maxLength} and were cut`);
  const embedded = await embedInputs(encoder, [...train.examples, ...(evalSet?.examples ?? [])].map((e) => e.input), { signal: hooks.signal, log });
  const trainEmbeddings = embedded.vectors.slice(0, train.examples.length);
  const evalEmbeddings = embedded.vectors.slice(train.examples.length);

  const config: HypernetConfig = { encoder: { model: encoder.model, dimension: encoder.dimension }, experts: stack.experts, rank: stack.rank, hidden: args.hidden, layers: stack.layers, targets: stack.targets, softmax: args.softmax, gateScale: args.gateScale };
  const perEpoch = Math.ceil(train.examples.length / args.batch);
  const totalSteps = args.maxSteps ?? args.epochs * perEpoch;
  fs.mkdirSync(out, { recursive: true });
  const store = new CheckpointStore(out, hooks.io, 2);
  store.removeTemporary();

  let net = Hypernetwork.init(config, centroids.centroids, args.seed);
  const optimizer = new AdamW(net.params, { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
  let startStep = 0;
  let evalByEpoch: number[] = [];
  const latest = store.latest();
  if (latest !== undefined) {
    const state = readState(latest.dir) as TrainerState & { eval_by_epoch?: number[] };
    if (state.args_hash !== argsHash) throw fail(`${latest.dir} was written by a run with other arguments`, "choose another --out", "BDC_RESUME_MISMATCH");
    const saved = readHypernet(latest.dir);
    for (const [name, p] of net.params) p.set(saved.params.get(name)!);
    for (const [name, s] of readMoments(latest.dir)) {
      const mine = optimizer.state.get(name);
      if (mine === undefined || mine.m.length !== s.m.length) throw fail(`the optimizer state of ${latest.dir} does not fit ${name}`, "delete the checkpoint folder to restart", "BDC_TRAIN_CHECKPOINT");
      mine.m.set(s.m);
      mine.v.set(s.v);
    }
    optimizer.step = state.optimizer_step;
    startStep = state.global_step;
    const moved = placementChange(state, placement);
    if (moved !== undefined) log(moved);
    evalByEpoch = state.eval_by_epoch ?? [];
    log(`resuming from ${path.basename(latest.dir)} (step ${startStep} of ${totalSteps})`);
  }
  writeFileDurably(path.join(out, HYPERNET_TRAIN_FILES.args), `${JSON.stringify({ result, threads, total_steps: totalSteps, save_steps: args.saveSteps }, null, 2)}\n`);

  const slots: LoraSlots = { targets: stack.targets, layers: stack.layers, gates: true };
  const session = await openTrainingSession(args.model, model, slots, { cacheDir: args.cacheDir, ...placement, log });
  try {
    const runner = new GatedLoss(session, model, stack, compositionScale(stack, args.gateScale, net.gateMass), args.maxLength);

    const evaluate = async (): Promise<number | undefined> => {
      if (evalSet === undefined) return undefined;
      const tokens = evalSet.examples.reduce((s, e) => s + e.lossMask.reduce((a, b) => a + b, 0), 0);
      let loss = 0;
      for (const [i, e] of evalSet.examples.entries()) loss += (await runner.run(e, net.forward(evalEmbeddings[i]!).gates, 1 / tokens)).loss;
      return loss;
    };

    const eventsFile = path.join(out, HYPERNET_TRAIN_FILES.events);
    const emit = (type: string, data: Record<string, unknown>) => fs.appendFileSync(eventsFile, `${JSON.stringify({ type, time: new Date().toISOString(), ...data })}\n`);
    const parameterCount = [...net.params.values()].reduce((s, p) => s + p.length, 0);
    emit("train.start", { step: startStep, total_steps: totalSteps, resumed: startStep > 0, examples: train.examples.length, trainable_parameters: parameterCount });
    log(`training the hypernetwork (${parameterCount.toLocaleString("en-US")} parameters: ${net.moduleKeys().length} modules x MLP ${net.inputDim}->${args.hidden}->${net.R}) over ${stack.experts.length} experts of rank ${stack.rank} on ${train.examples.length} rows: ${totalSteps} steps, gate scale ${args.gateScale} (${runner.scale})`);

    const bestDir = path.join(out, HYPERNET_TRAIN_FILES.best);
    const saveCheckpoint = (step: number) => {
      const state = { global_step: step, total_steps: totalSteps, epoch: step / perEpoch, args_hash: argsHash, threads, device: placement.device, rng: { seed: args.seed, scheme: "mulberry32 streams keyed by (seed, epoch) for the data order" }, optimizer_step: optimizer.step, eval_by_epoch: evalByEpoch };
      store.saveFiles(step, [...hypernetFiles(net), [OPTIMIZER_FILE, momentsBytes(optimizer.state)], [STATE_FILE, `${JSON.stringify(state, null, 2)}\n`]]);
      emit("train.checkpoint", { step, dir: `checkpoint-${step}` });
    };

    const started = performance.now();
    let lastLoss = Number.NaN;
    let tokensDone = 0;
    let order: { epoch: number; steps: number[][] } | undefined;
    for (let step = startStep; step < totalSteps; step++) {
      const epoch = Math.floor(step / perEpoch);
      if (order?.epoch !== epoch) order = { epoch, steps: epochSteps(train.examples.length, args.batch, args.seed, epoch) };
      const rows = order.steps[step % perEpoch]!;
      const tokens = rows.reduce((s, i) => s + train.examples[i]!.lossMask.reduce((a, b) => a + b, 0), 0);
      const grads = new Map<string, Float32Array>([...net.params].map(([name, p]) => [name, new Float32Array(p.length)]));
      let loss = 0;
      for (const i of rows) {
        if (hooks.signal?.aborted) throw new BdcError({ code: "BDC_INTERRUPTED", message: `hypernetwork training stopped during step ${step + 1}`, hint: "run the same command again to resume from the last checkpoint" });
        const { gates, trace } = net.forward(trainEmbeddings[i]!);
        const row = await runner.run(train.examples[i]!, gates, 1 / tokens);
        tokensDone += train.examples[i]!.ids.length;
        if (!Number.isFinite(row.loss)) {
          throw new BdcError({ code: "BDC_TRAIN_NONFINITE", message: `step ${step + 1}: the loss is ${row.loss} on ${train.examples[i]!.source}`, hint: `lower the learning rate (--lr ${args.lr}); the last checkpoint is kept and the same command resumes from it` });
        }
        loss += row.loss;
        for (const [name, g] of net.backward(trace, row.gateGrads)) {
          const acc = grads.get(name)!;
          for (let j = 0; j < acc.length; j++) acc[j]! += g[j]!;
        }
      }
      optimizer.update(grads, args.lr);
      lastLoss = loss;
      const done = step + 1;
      const seconds = (performance.now() - started) / 1000;
      emit("train.step", { step: done, epoch: done / perEpoch, loss, lr: args.lr, seconds });
      const epochEnd = done % perEpoch === 0 || done === totalSteps;
      let evalLoss: number | undefined;
      if (epochEnd) {
        evalLoss = await evaluate();
        if (evalLoss !== undefined) {
          evalByEpoch = [...evalByEpoch, evalLoss];
          emit("train.eval", { step: done, epoch: done / perEpoch, eval_loss: evalLoss });
          log(`epoch ${Math.ceil(done / perEpoch)}: validation loss ${evalLoss.toFixed(4)}`);
          if (evalLoss <= Math.min(...evalByEpoch)) {
            writeHypernet(bestDir, net, { kept: "best", epoch: evalByEpoch.length, eval_loss: evalLoss });
          }
        }
      }
      if (epochEnd || done % args.saveSteps === 0) saveCheckpoint(done);
      hooks.progress?.({ step: done, totalSteps, epoch: done / perEpoch, loss, lr: args.lr, tokensPerSecond: tokensDone / Math.max(seconds, 1e-9), etaSeconds: ((totalSteps - done) * seconds) / Math.max(1, done - startStep), evalLoss });
    }
    // Killed after the last checkpoint but before the report: the state is final.
    if (startStep === totalSteps) lastLoss = readLossHistory(eventsFile).train.at(-1)?.value ?? Number.NaN;

    // The kept hypernetwork: the best epoch's (validation data), else the last state.
    const bestEpoch = evalByEpoch.length === 0 ? undefined : evalByEpoch.indexOf(Math.min(...evalByEpoch)) + 1;
    const kept = bestEpoch !== undefined && fs.existsSync(path.join(bestDir, HYPERNET_FILES.weights)) ? readHypernet(bestDir) : net;
    writeHypernet(out, kept, { kept: bestEpoch === undefined ? "last" : "best", ...(bestEpoch === undefined ? {} : { epoch: bestEpoch, eval_loss: evalByEpoch[bestEpoch - 1] }), experts_dirs: args.experts.map((e) => path.resolve(e.dir)), base_model: path.resolve(args.model) });
    const seconds = (performance.now() - started) / 1000;
    const report: HypernetTrainReport = {
      status: "completed",
      out,
      steps: totalSteps,
      epochs: totalSteps / perEpoch,
      resumed_from_step: startStep > 0 ? startStep : undefined,
      final_loss: lastLoss,
      eval_loss_by_epoch: evalByEpoch,
      best_epoch: bestEpoch,
      kept: bestEpoch === undefined ? "last" : "best",
      seconds,
      seconds_per_step: seconds / Math.max(1, totalSteps - startStep),
      threads,
      experts: stack.experts,
      gate_scale: args.gateScale,
      softmax: args.softmax,
      trainable_parameters: parameterCount,
      embedding: { model: encoder.model, dimension: encoder.dimension, truncated: embedded.truncated },
      args_hash: argsHash,
    };
    emit("train.end", { steps: totalSteps, final_loss: lastLoss, best_epoch: bestEpoch });
    writeLossCurve(path.join(out, HYPERNET_TRAIN_FILES.lossCurve), eventsFile, { title: `DisenLoRA hypernetwork over ${stack.experts.length} experts on ${path.basename(args.model)}` });
    writeFileDurably(reportFile, `${JSON.stringify(report, null, 2)}\n`);
    return { report, alreadyDone: false };
  } finally {
    await session.release();
  }
}
