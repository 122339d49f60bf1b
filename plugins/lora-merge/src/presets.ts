/**
 * The merge methods as presets of the one core (merge-core.ts), with their papers and the
 * defaults of the BDC authors' baselines (../shared/paper/reference-notes.md: "TIES (mask rate
 * 0.7), DARE (drop 0.7, then task-arithmetic scale 0.7)"). "Mask rate" and "drop" are MergeLM's
 * terms (the DARE authors' library) for the fraction REMOVED, so both keep 30% (density 0.3).
 * Pruning is per tensor (one projection of one layer), as PEFT and mergekit do; MergeLM's TIES
 * trims over all parameters of a model at once.
 */
import { BdcError } from "@bdc/core";
import type { MergeSpec } from "./merge-core.ts";

export const METHODS = {
  linear: "weighted average of the updates (Wortsman et al. 2022, model soups); weights default to 1/K",
  "task-arithmetic": "sum of the updates times lambda (Ilharco et al. 2023, Editing Models with Task Arithmetic)",
  ties: "trim each update to its largest-magnitude entries, elect a sign per entry, average the agreeing ones (Yadav et al. 2023, TIES-Merging)",
  dare: "drop entries at random and rescale the rest by 1/density, then task arithmetic (Yu et al. 2024, Language Models are Super Mario); ties: true for DARE-TIES",
  twin: "a shared merge plus SVD-compressed exclusive parts per expert, weighted by a router (Lu et al. 2024, Twin-Merging)",
  cat: "concatenate the factors: exact, rank = the sum of the ranks (PEFT's cat)",
} as const;
export type MethodName = keyof typeof METHODS;

export interface MethodOptions {
  /** Per adapter (default 1/K for linear, 1 otherwise). */
  readonly weights?: ReadonlyArray<number> | undefined;
  /** Fraction of entries kept (ties, dare). */
  readonly density?: number | undefined;
  /** Scaling of the merged update (task-arithmetic, ties, dare). */
  readonly lambda?: number | undefined;
  readonly sign?: "total" | "frequency" | undefined;
  /** dare: elect signs and take the disjoint mean (DARE-TIES). */
  readonly ties?: boolean | undefined;
}

export const PRESET_DEFAULTS = {
  "task-arithmetic": { lambda: 1 },
  ties: { density: 0.3, lambda: 1, sign: "total" as const },
  dare: { density: 0.3, lambda: 0.7, ties: false },
} as const;

const bad = (message: string) => new BdcError({ code: "BDC_CONFIG_VALUE", message, hint: `methods: ${Object.keys(METHODS).join(", ")}` });

/** The core's spec of a delta-space method for `count` adapters. */
export function specOf(method: Exclude<MethodName, "twin" | "cat">, count: number, o: MethodOptions = {}): MergeSpec {
  const weights = o.weights ?? Array.from({ length: count }, () => (method === "linear" ? 1 / count : 1));
  if (weights.length !== count) throw bad(`${weights.length} weights for ${count} adapters`);
  if (o.density !== undefined && !(o.density > 0 && o.density <= 1)) throw bad(`density ${o.density} is not in (0, 1]`);
  switch (method) {
    case "linear":
      return { weights, lambda: 1 };
    case "task-arithmetic":
      return { weights, lambda: o.lambda ?? PRESET_DEFAULTS["task-arithmetic"].lambda };
    case "ties":
      return { weights, sparsify: { method: "magnitude", density: o.density ?? PRESET_DEFAULTS.ties.density }, sign: o.sign ?? PRESET_DEFAULTS.ties.sign, lambda: o.lambda ?? PRESET_DEFAULTS.ties.lambda };
    case "dare":
      return {
        weights,
        sparsify: { method: "random", density: o.density ?? PRESET_DEFAULTS.dare.density, rescale: true },
        sign: (o.ties ?? PRESET_DEFAULTS.dare.ties) ? (o.sign ?? "total") : undefined,
        lambda: o.lambda ?? PRESET_DEFAULTS.dare.lambda,
      };
  }
}
