// Benchmark plugin: n items with stable ids, generated in memory (no I/O).
import { Schema } from "effect";
import { definePlugin, required, type DatasetImpl, type Item } from "@bdc/core";

export const itemId = (i: number): string => `item-${String(i).padStart(6, "0")}`;

export default definePlugin({
  id: "dataset/bench-range",
  version: "1.0.0",
  description: "Benchmark: items item-000000 .. item-(n-1) with data {n}",
  config: Schema.Struct({ n: required(Schema.Int.pipe(Schema.nonNegative()), "number of items") }),
  make: (config): DatasetImpl<{ n: number }> => ({
    items: (): Array<Item<{ n: number }>> => Array.from({ length: config.n }, (_, i) => ({ id: itemId(i), data: { n: i } })),
  }),
});
