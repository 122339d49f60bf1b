import { Schema } from "effect";
import { definePlugin, option } from "@bdc/core";
import type { Merger } from "../merger.ts";
import { METHODS, PRESET_DEFAULTS } from "../presets.ts";
import { density, lambda, spaceField, weightsField } from "./fields.ts";

export default definePlugin({
  id: "merge/dare",
  version: "0.1.0",
  description: `DARE: ${METHODS.dare}. Defaults: the BDC authors' (drop 0.7, then task-arithmetic scale 0.7)`,
  config: Schema.Struct({
    weights: weightsField,
    density: density(PRESET_DEFAULTS.dare.density, "fraction of each update's entries kept at random, the rest rescaled by 1/density (the authors: drop 0.7, so 0.3)"),
    lambda: lambda(PRESET_DEFAULTS.dare.lambda),
    ties: option(Schema.Boolean, PRESET_DEFAULTS.dare.ties, "DARE-TIES: elect a sign per entry and average the agreeing ones"),
    space: spaceField,
  }),
  make: (c): Merger => ({ method: "dare", options: { weights: c.weights, density: c.density, lambda: c.lambda, ties: c.ties }, space: c.space }),
});
