import { Schema } from "effect";
import { BdcError, definePlugin, option, type StepImpl } from "@bdc/core";
import { asProblemDataset } from "./scoring/problems.ts";

/** The dataset's own reference solution per problem (to check a harness: they should pass). */
export default definePlugin({
  id: "step/references",
  version: "0.1.0",
  description: "The dataset's reference solution of each problem, as {code} (for harness checks)",
  config: Schema.Struct({ which: option(Schema.Int.pipe(Schema.nonNegative()), 0, "index of the reference solution to take") }),
  requires: { problems: { slot: "dataset" } },
  make(config, deps): StepImpl<unknown, { code: string }> {
    const problems = asProblemDataset(deps.problems, "problems");
    return {
      async run(item) {
        const refs = await problems.references(item.id);
        const code = refs[config.which];
        if (code === undefined) {
          throw new BdcError({ code: "BDC_ITEM_FAILED", message: `problem "${item.id}" has ${refs.length} reference solution(s); none at index ${config.which}` });
        }
        return { code };
      },
    };
  },
});
