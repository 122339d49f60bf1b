import { BdcError } from "@bdc/core";
import type { PublicProblem } from "@bdc/reward-python";

/** The public part of a problem item, copied field by field (nothing else travels into the search). */
export function publicProblem(data: unknown, itemId: string): PublicProblem {
  const d = data as Partial<PublicProblem> | null;
  if (d === null || typeof d !== "object" || typeof d.statement !== "string" || !Array.isArray(d.publicTests)) {
    throw new BdcError({ code: "BDC_ITEM_FAILED", message: `item "${itemId}" is not a problem (expected a PublicProblem: statement, publicTests, ...)`, hint: "run the step for_each over a problem dataset (dataset/apps, dataset/codecontests, ...)" });
  }
  return {
    id: typeof d.id === "string" ? d.id : itemId,
    source: d.source ?? "unknown",
    difficulty: d.difficulty ?? "",
    statement: d.statement,
    ...(d.starterCode === undefined ? {} : { starterCode: d.starterCode }),
    ...(d.fnName === undefined ? {} : { fnName: d.fnName }),
    style: d.style ?? "stdio",
    publicTests: d.publicTests.map((t) => ({ ...t })),
    ...(d.timeLimitMs === undefined ? {} : { timeLimitMs: d.timeLimitMs }),
    ...(d.memoryLimitMb === undefined ? {} : { memoryLimitMb: d.memoryLimitMb }),
    split: d.split ?? "",
  };
}
