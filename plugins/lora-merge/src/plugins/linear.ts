import { Schema } from "effect";
import { definePlugin } from "@bdc/core";
import type { Merger } from "../merger.ts";
import { METHODS } from "../presets.ts";
import { spaceField, weightsField } from "./fields.ts";

export default definePlugin({
  id: "merge/linear",
  version: "0.1.0",
  description: `Linear merge: ${METHODS.linear}`,
  config: Schema.Struct({ weights: weightsField, space: spaceField }),
  make: (c): Merger => ({ method: "linear", options: { weights: c.weights }, space: c.space }),
});
