/**
 * select/uct: UCT (Kocsis and Szepesvari 2006): Q + c * sqrt(ln N_parent / N_child).
 * An unvisited child scores +Infinity (tried first; ties go to the first child); ln N_parent is
 * 0 for 0 or 1 parent visits.
 */
import { Schema } from "effect";
import { definePlugin, option } from "@bdc/core";
import { lnVisits } from "./select-pucb.ts";
import type { Selector, TreeNode } from "./types.ts";

export function uctScore(c: number, parent: TreeNode, child: TreeNode): number {
  if (child.visits === 0) return Number.POSITIVE_INFINITY;
  return child.value + c * Math.sqrt(lnVisits(parent.visits) / child.visits);
}

export default definePlugin({
  id: "select/uct",
  version: "0.1.0",
  description: "UCT selection: Q + c * sqrt(ln N_parent / N_child); unvisited children first",
  config: Schema.Struct({
    c: option(Schema.Number.pipe(Schema.nonNegative()), Math.SQRT2, "exploration constant (default sqrt 2)"),
  }),
  make: (config): Selector => ({ score: (parent, child) => uctScore(config.c, parent, child) }),
});
