import { Schema } from "effect";
import { definePlugin, option } from "@bdc/core";
import type { Merger } from "../merger.ts";
import { METHODS, PRESET_DEFAULTS } from "../presets.ts";
import { density, lambda, spaceField, weightsField } from "./fields.ts";

export default definePlugin({
  id: "merge/ties",
  version: "0.1.0",
  description: `TIES: ${METHODS.ties}. Defaults: the BDC authors' (mask rate 0.7 = density 0.3)`,
  config: Schema.Struct({
    weights: weightsField,
    density: density(PRESET_DEFAULTS.ties.density, "fraction of each update's entries kept, by magnitude (the authors: mask rate 0.7, so 0.3)"),
    sign: option(Schema.Literal("total", "frequency"), PRESET_DEFAULTS.ties.sign, "majority sign by total mass (TIES paper) or by count"),
    lambda: lambda(PRESET_DEFAULTS.ties.lambda),
    space: spaceField,
  }),
  make: (c): Merger => ({ method: "ties", options: { weights: c.weights, density: c.density, sign: c.sign, lambda: c.lambda }, space: c.space }),
});
