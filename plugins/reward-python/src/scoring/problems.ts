import { BdcError, type DatasetImpl } from "@bdc/core";
import type { HiddenTestSource, PublicProblem } from "../types.ts";

export type ProblemDataset = DatasetImpl<PublicProblem> & HiddenTestSource;

export function asProblemDataset(instance: unknown, name: string): ProblemDataset {
  const d = instance as Partial<ProblemDataset>;
  if (typeof d?.items !== "function" || typeof d.hiddenTests !== "function" || typeof d.references !== "function") {
    throw new BdcError({
      code: "BDC_REF_SLOT",
      message: `"${name}" is not a problem dataset with hidden tests (dataset/apps, dataset/codecontests, dataset/humaneval, dataset/mbpp)`,
      hint: "point `problems` at a problem dataset instance",
    });
  }
  return d as ProblemDataset;
}

/** The dataset's problems by id, read once. */
export function problemIndex(dataset: ProblemDataset): (signal: AbortSignal) => Promise<Map<string, PublicProblem>> {
  let index: Promise<Map<string, PublicProblem>> | undefined;
  return (signal) =>
    (index ??= (async () => {
      const out = new Map<string, PublicProblem>();
      for await (const item of await dataset.items(signal)) out.set(item.id, item.data);
      return out;
    })());
}
