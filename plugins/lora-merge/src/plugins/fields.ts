/** Config keys the merge plugins share. */
import { Schema } from "effect";
import { option, optional } from "@bdc/core";

export const weightsField = optional(Schema.Array(Schema.Number).pipe(Schema.minItems(1)), "one weight per adapter, in the order the merge step lists them");
export const spaceField = option(Schema.Literal("delta", "factors"), "delta", "delta: merge the full updates scale * B A (faithful); factors: merge A and B separately as PEFT's non-SVD types do (adds cross terms)");
export const density = (fallback: number, what: string) => option(Schema.Number.pipe(Schema.greaterThan(0), Schema.lessThanOrEqualTo(1)), fallback, what);
export const lambda = (fallback: number) => option(Schema.Number, fallback, "scaling coefficient of the merged update");
