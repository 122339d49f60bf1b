/**
 * One generalised task-arithmetic core, in the spirit of mergekit: every method is a preset of
 *
 *   sparsify each task tensor (magnitude top-k, or random drop with rescale)
 *   -> optionally elect a sign per entry and keep only the agreeing entries (disjoint mean)
 *   -> weight and sum -> scale by lambda
 *
 * with the exact semantics of PEFT's merge_utils (magnitude_based_pruning, random_pruning,
 * calculate_majority_sign_mask, disjoint_merge): pruning acts per tensor and before the weights,
 * the sign is elected on the pruned, unweighted tensors, the disjoint mean divides by the number
 * of agreeing entries. Task tensors here are the FULL deltas dW = scale * B A of one projection
 * (merging A and B separately adds cross terms; that is only offered as a labelled option).
 */
import { BdcError } from "@bdc/core";

export type Sparsify = { readonly method: "magnitude"; readonly density: number } | { readonly method: "random"; readonly density: number; readonly rescale: boolean };

export interface MergeSpec {
  /** Per task tensor, applied after sparsification. */
  readonly weights: ReadonlyArray<number>;
  readonly sparsify?: Sparsify | undefined;
  /** Elect the majority sign (by total mass, or by count) and average only agreeing entries. */
  readonly sign?: "total" | "frequency" | undefined;
  /** Lambda, multiplying the merged tensor (task arithmetic's scaling coefficient). */
  readonly lambda: number;
}

/** The value of rank `k` (0-based) in ascending order, by quickselect (expected linear time); reorders `a`. */
function select(a: Float64Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    // Median of three as the pivot.
    const x = a[lo]!;
    const y = a[mid]!;
    const z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}

/**
 * The mask of the k = floor(density * n) entries of largest magnitude (PEFT's int()): those
 * above the k-th largest magnitude, then entries equal to it in index order until k are kept.
 */
export function magnitudeMask(t: Float64Array, density: number): Uint8Array {
  const n = t.length;
  const k = Math.floor(density * n);
  const mask = new Uint8Array(n);
  if (k <= 0) return mask;
  if (k >= n) return mask.fill(1);
  const threshold = select(Float64Array.from(t, Math.abs), n - k);
  let kept = 0;
  for (let i = 0; i < n; i++) {
    if (Math.abs(t[i]!) > threshold) {
      mask[i] = 1;
      kept++;
    }
  }
  for (let i = 0; i < n && kept < k; i++) {
    if (mask[i] === 0 && Math.abs(t[i]!) === threshold) {
      mask[i] = 1;
      kept++;
    }
  }
  return mask;
}

/** Bernoulli(density) per entry from `random`. */
export function randomMask(n: number, density: number, random: () => number): Uint8Array {
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = random() < density ? 1 : 0;
  return mask;
}

export interface MergeTrace {
  /** The sparsification mask of each task tensor (when sparsified), for checks against other implementations. */
  readonly masks: Uint8Array[];
}

/** Merges equally shaped task tensors by `spec`. */
export function mergeTensors(tasks: ReadonlyArray<Float64Array>, spec: MergeSpec, random: () => number, trace?: MergeTrace): Float64Array {
  if (tasks.length === 0) throw new BdcError({ code: "BDC_MERGE_INPUT", message: "nothing to merge" });
  if (spec.weights.length !== tasks.length) throw new BdcError({ code: "BDC_MERGE_INPUT", message: `${spec.weights.length} weights for ${tasks.length} adapters` });
  const n = tasks[0]!.length;
  const sp = spec.sparsify;
  const pruned = tasks.map((t) => {
    if (sp === undefined || sp.density >= 1) return t;
    const mask = sp.method === "magnitude" ? magnitudeMask(t, sp.density) : randomMask(n, sp.density, random);
    trace?.masks.push(mask);
    const scale = sp.method === "random" && sp.rescale ? 1 / sp.density : 1;
    return t.map((x, i) => (mask[i] === 1 ? x * scale : 0));
  });
  const out = new Float64Array(n);
  if (spec.sign === undefined) {
    pruned.forEach((t, k) => {
      const w = spec.weights[k]!;
      for (let i = 0; i < n; i++) out[i]! += w * t[i]!;
    });
  } else {
    for (let i = 0; i < n; i++) {
      let mass = 0;
      for (const t of pruned) mass += spec.sign === "total" ? t[i]! : Math.sign(t[i]!);
      const majority = mass >= 0 ? 1 : -1;
      let sum = 0;
      let agree = 0;
      pruned.forEach((t, k) => {
        if (Math.sign(t[i]!) === majority) {
          sum += spec.weights[k]! * t[i]!;
          agree++;
        }
      });
      out[i] = sum / Math.max(agree, 1);
    }
  }
  if (spec.lambda !== 1) for (let i = 0; i < n; i++) out[i]! *= spec.lambda;
  return out;
}
