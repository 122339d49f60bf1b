import { Schema } from "effect";
import { definePlugin, optional } from "@bdc/core";
import type { Merger } from "../merger.ts";
import { METHODS, PRESET_DEFAULTS } from "../presets.ts";
import { density, weightsField } from "./fields.ts";

export default definePlugin({
  id: "merge/twin",
  version: "0.1.0",
  description: `Twin-Merging: ${METHODS.twin}. The static adapter fixes the router to uniform weights; the parts are written for per-input routing`,
  config: Schema.Struct({
    weights: weightsField,
    density: density(PRESET_DEFAULTS.ties.density, "density of the TIES merge that forms the shared part"),
    shared_rank: optional(Schema.Int.pipe(Schema.positive()), "rank of the shared part (default: the largest expert rank)"),
    exclusive_rank: optional(Schema.Int.pipe(Schema.positive()), "rank each exclusive part is compressed to by SVD (default: the largest expert rank)"),
  }),
  make: (c): Merger => ({ method: "twin", options: { weights: c.weights, density: c.density }, space: "delta", twin: { sharedRank: c.shared_rank, exclusiveRank: c.exclusive_rank } }),
});
