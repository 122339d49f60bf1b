/**
 * The same LoRA training on ONNX Runtime (`bdc lm train`'s trainer) and in PyTorch
 * (llama_reference.py train), step for step: the micro-batches the trainer lays out (its own data
 * and batching functions) are handed to PyTorch, which starts from the same adapter. Used by
 * tests/lora-training/torch-parity.test.ts (tiny models) and the lora-train benchmark (125M).
 */
import { epochSteps, layoutStep, loadTokenizer, loadTrainingData, type LoraAdapter, readModelConfig, readPeftAdapter } from "@bdc/lm-local";
import { torchTrain, type TorchTrainPlan, type TorchTrainResult } from "./torch-reference.ts";

export interface ParityRun {
  readonly model: string;
  readonly data: string;
  readonly initAdapter: string;
  readonly batch: number;
  readonly microBatch: number;
  readonly maxLength: number;
  readonly packing: boolean;
  readonly epochs: number;
  readonly seed: number;
  readonly optimizer: TorchTrainPlan["optimizer"];
}

/** The steps of the trainer's run, as PyTorch's plan. */
export function parityPlan(run: ParityRun): TorchTrainPlan {
  const { examples } = loadTrainingData(run.data, loadTokenizer(run.model), { maxLength: run.maxLength });
  const steps: Array<TorchTrainPlan["steps"][number]> = [];
  for (let epoch = 0; epoch < run.epochs; epoch++) {
    for (const rows of epochSteps(examples.length, run.batch, run.seed, epoch)) {
      const micro = layoutStep(examples, rows, { microBatch: run.microBatch, packing: run.packing, maxLength: run.maxLength });
      steps.push({ scored_tokens: micro.reduce((n, m) => n + m.lossIndex.length, 0), micro_batches: micro.map((m) => ({ ids: m.ids, positions: m.positions, segments: m.segments, loss_index: m.lossIndex, labels: m.labels })) });
    }
  }
  return { init_adapter: run.initAdapter, optimizer: run.optimizer, steps };
}

export interface ParityResult {
  readonly torch: TorchTrainResult;
  /** max over steps of |ours - torch| / |torch|. */
  readonly maxRelativeLossDiff: number;
  /** max |ours - torch| over every final A and B value. */
  readonly maxWeightDiff: number;
  /** max |final - initial| of our weights (that training moved them). */
  readonly maxWeightMove: number;
}

/** Runs PyTorch on the plan and compares with our per-step losses and final adapter folder. */
export function compareWithTorch(python: string, run: ParityRun, ourLosses: ReadonlyArray<number>, ourAdapterDir: string, threads?: number): ParityResult {
  const torch = torchTrain(python, run.model, parityPlan(run), threads === undefined ? {} : { threads });
  if (torch.losses.length !== ourLosses.length) throw new Error(`parity: ${ourLosses.length} steps here, ${torch.losses.length} in PyTorch`);
  const config = readModelConfig(run.model);
  const ours: LoraAdapter = readPeftAdapter(ourAdapterDir, config);
  const init = readPeftAdapter(run.initAdapter, config);
  let maxWeightDiff = 0;
  let maxWeightMove = 0;
  for (const [key, m] of ours.modules) {
    const theirs = torch.final[key];
    if (theirs === undefined) throw new Error(`parity: PyTorch has no ${key}`);
    const start = init.modules.get(key)!;
    for (const [mine, other, first] of [[m.A, theirs.A, start.A], [m.B, theirs.B, start.B]] as const) {
      if (mine.length !== other.length) throw new Error(`parity: ${key} has ${mine.length} values here, ${other.length} in PyTorch`);
      for (let i = 0; i < mine.length; i++) {
        maxWeightDiff = Math.max(maxWeightDiff, Math.abs(mine[i]! - other[i]!));
        maxWeightMove = Math.max(maxWeightMove, Math.abs(mine[i]! - first[i]!));
      }
    }
  }
  const maxRelativeLossDiff = Math.max(...ourLosses.map((l, i) => Math.abs(l - torch.losses[i]!) / Math.abs(torch.losses[i]!)));
  return { torch, maxRelativeLossDiff, maxWeightDiff, maxWeightMove };
}
