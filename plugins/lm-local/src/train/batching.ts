/**
 * Which rows each optimizer step sees, and how they are laid out for the graph.
 *
 * - Order: every epoch is a seeded shuffle of the rows (a pure function of seed and epoch), cut
 *   into steps of `batch` rows (the last step of an epoch may be smaller, as PyTorch's DataLoader
 *   with drop_last=False). Step k's rows never depend on anything but (seed, k): resuming at a
 *   step replays exactly the data order of an uninterrupted run.
 * - Layout: a step's rows go through the model in micro-batches (gradients are summed over them).
 *   Padding: rows sorted by length, `microBatch` rows per pass, padded to the longest and masked.
 *   Packing: rows are packed first-fit into sequences of at most `maxLength` tokens with a
 *   block-diagonal causal mask and positions restarting at each row, so packed rows never see each
 *   other (what TRL's padding-free packing does with position ids); `microBatch` sequences per
 *   pass. Both layouts give the same loss and gradient: only the arithmetic's grouping differs.
 * - Loss: the mean over every completion token of the step (each scored token weighs
 *   1 / tokens-in-step), whatever the micro-batching, as transformers does since 4.46.
 */
import { mixSeed, mulberry32 } from "../checkpoint/random.ts";
import type { TrainingExample } from "./data.ts";

export interface MicroBatch {
  /** [rows, seq] token ids (padding: 0). */
  readonly ids: ReadonlyArray<ReadonlyArray<number>>;
  /** [rows, seq] positions (restart at each packed row). */
  readonly positions: ReadonlyArray<ReadonlyArray<number>>;
  /** Per sequence row, [start, length] of each packed example: attention stays inside one. */
  readonly segments: ReadonlyArray<ReadonlyArray<readonly [number, number]>>;
  /** Flat positions b*seq+t whose next token is a completion token. */
  readonly lossIndex: ReadonlyArray<number>;
  /** The token each of them predicts. */
  readonly labels: ReadonlyArray<number>;
  /** Example indices in this micro-batch. */
  readonly examples: ReadonlyArray<number>;
  readonly seq: number;
  /** Real (non-padding) tokens. */
  readonly tokens: number;
}

export interface LayoutOptions {
  readonly microBatch: number;
  readonly packing: boolean;
  readonly maxLength: number;
}

/** The rows of every step of one epoch: a seeded permutation cut into `batch`-sized steps. */
export function epochSteps(count: number, batch: number, seed: number, epoch: number): number[][] {
  const order = Array.from({ length: count }, (_, i) => i);
  const rand = mulberry32(mixSeed(seed, epoch, 0x5eed));
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const steps: number[][] = [];
  for (let i = 0; i < count; i += batch) steps.push(order.slice(i, i + batch));
  return steps;
}

export const stepsPerEpoch = (count: number, batch: number): number => Math.ceil(count / batch);

/** Scored (position, label) pairs of an example placed at `offset` of a sequence. */
function scored(example: TrainingExample, offset: number, into: { lossIndex: number[]; labels: number[] }, rowBase: number): number {
  let n = 0;
  for (let t = 1; t < example.ids.length; t++) {
    if (example.lossMask[t] === 0) continue;
    into.lossIndex.push(rowBase + offset + t - 1);
    into.labels.push(example.ids[t]!);
    n++;
  }
  return n;
}

/** The micro-batches of one step's rows. */
export function layoutStep(examples: ReadonlyArray<TrainingExample>, rows: ReadonlyArray<number>, options: LayoutOptions): MicroBatch[] {
  // Longest first (stable): less padding, and a deterministic grouping.
  const sorted = [...rows].sort((a, b) => examples[b]!.ids.length - examples[a]!.ids.length || a - b);
  const sequences: number[][] = [];
  if (options.packing) {
    const fill: number[] = [];
    for (const r of sorted) {
      const len = examples[r]!.ids.length;
      let bin = fill.findIndex((f) => f + len <= options.maxLength);
      if (bin < 0) {
        bin = sequences.length;
        sequences.push([]);
        fill.push(0);
      }
      sequences[bin]!.push(r);
      fill[bin]! += len;
    }
  } else {
    for (const r of sorted) sequences.push([r]);
  }
  const out: MicroBatch[] = [];
  for (let i = 0; i < sequences.length; i += options.microBatch) {
    const group = sequences.slice(i, i + options.microBatch);
    const lengths = group.map((s) => s.reduce((sum, r) => sum + examples[r]!.ids.length, 0));
    const seq = Math.max(...lengths);
    const acc = { lossIndex: [] as number[], labels: [] as number[] };
    const ids: number[][] = [];
    const positions: number[][] = [];
    const segments: Array<Array<readonly [number, number]>> = [];
    group.forEach((members, b) => {
      const rowIds = new Array<number>(seq).fill(0);
      const rowPos = Array.from({ length: seq }, (_, t) => t);
      const rowSegs: Array<readonly [number, number]> = [];
      let offset = 0;
      for (const r of members) {
        const e = examples[r]!;
        for (let t = 0; t < e.ids.length; t++) {
          rowIds[offset + t] = e.ids[t]!;
          rowPos[offset + t] = t;
        }
        rowSegs.push([offset, e.ids.length]);
        scored(e, offset, acc, b * seq);
        offset += e.ids.length;
      }
      ids.push(rowIds);
      positions.push(rowPos);
      segments.push(rowSegs);
    });
    out.push({ ids, positions, segments, lossIndex: acc.lossIndex, labels: acc.labels, examples: group.flat(), seq, tokens: lengths.reduce((a, b) => a + b, 0) });
  }
  return out;
}

/**
 * The additive attention bias [rows, 1, seq, seq] of a micro-batch: 0 where a query may look (an
 * earlier or the same position of its own packed example, within the sliding window if any),
 * `masked` elsewhere. Padding queries look at their own position only (defined, never scored).
 */
export function attentionBias(mb: MicroBatch, masked: number, slidingWindow?: number): Float32Array {
  const S = mb.seq;
  const bias = new Float32Array(mb.ids.length * S * S).fill(masked);
  mb.segments.forEach((segs, b) => {
    let covered = 0;
    for (const [start, len] of segs) {
      for (let q = 0; q < len; q++) {
        const row = (b * S + start + q) * S + start;
        const from = slidingWindow === undefined ? 0 : Math.max(0, q - slidingWindow + 1);
        bias.fill(0, row + from, row + q + 1);
      }
      covered = start + len;
    }
    for (let q = covered; q < S; q++) bias[(b * S + q) * S + q] = 0;
  });
  return bias;
}
