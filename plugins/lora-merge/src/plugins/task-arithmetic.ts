import { Schema } from "effect";
import { definePlugin } from "@bdc/core";
import type { Merger } from "../merger.ts";
import { METHODS, PRESET_DEFAULTS } from "../presets.ts";
import { lambda, spaceField, weightsField } from "./fields.ts";

export default definePlugin({
  id: "merge/task-arithmetic",
  version: "0.1.0",
  description: `Task arithmetic: ${METHODS["task-arithmetic"]}`,
  config: Schema.Struct({ weights: weightsField, lambda: lambda(PRESET_DEFAULTS["task-arithmetic"].lambda), space: spaceField }),
  make: (c): Merger => ({ method: "task-arithmetic", options: { weights: c.weights, lambda: c.lambda }, space: c.space }),
});
