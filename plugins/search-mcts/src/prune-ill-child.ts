/**
 * prune/ill-child: the paper's Prune rule. Valid thoughts keep the pass rate monotonically
 * non-decreasing (PR(S_t) <= PR(S_t+1)); a child that breaks it is ill: child.pr < parent.pr,
 * strictly. A child with the SAME pass rate as its parent is not ill (equality satisfies the
 * paper's principle). Unsimulated nodes (pr null) are never ill.
 */
import { Schema } from "effect";
import { definePlugin } from "@bdc/core";
import type { Pruner, TreeNode } from "./types.ts";

export const isIllChild = (parent: TreeNode, child: TreeNode): boolean => parent.pr !== null && child.pr !== null && child.pr < parent.pr;

export default definePlugin({
  id: "prune/ill-child",
  version: "0.1.0",
  description: "Prune: a child whose public pass rate is strictly below its parent's is ill",
  config: Schema.Struct({}),
  make: (): Pruner => ({ isIll: isIllChild }),
});
