import { Schema } from "effect";
import { definePlugin } from "@bdc/core";
import type { Merger } from "../merger.ts";
import { METHODS } from "../presets.ts";
import { weightsField } from "./fields.ts";

export default definePlugin({
  id: "merge/cat",
  version: "0.1.0",
  description: `Concatenation: ${METHODS.cat}`,
  config: Schema.Struct({ weights: weightsField }),
  make: (c): Merger => ({ method: "cat", options: { weights: c.weights }, space: "delta" }),
});
