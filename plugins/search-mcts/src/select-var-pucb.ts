/**
 * select/var-pucb: the variable-weight PUCB of the authors' released code:
 *
 *   value(child) + (ln((N_parent + base + 1) / base) + c) * prior(child) * sqrt(ln N_parent) / (1 + n_child)
 *
 * with c = 4, base = 10; value(child) = the max of the child's backed-up returns (0 before
 * any), whatever value function the backup keeps in `child.value`. ln N_parent is 0 for 0 or 1
 * parent visits (see select/pucb).
 */
import { Schema } from "effect";
import { definePlugin, option } from "@bdc/core";
import { lnVisits } from "./select-pucb.ts";
import type { Selector, TreeNode } from "./types.ts";

export function varPucbScore(c: number, base: number, parent: TreeNode, child: TreeNode): number {
  let value = child.returns.length === 0 ? 0 : Number.NEGATIVE_INFINITY;
  for (const r of child.returns) if (r > value) value = r;
  const weight = Math.log((parent.visits + base + 1) / base) + c;
  return value + (weight * child.prior * Math.sqrt(lnVisits(parent.visits))) / (1 + child.visits);
}

export default definePlugin({
  id: "select/var-pucb",
  version: "0.1.0",
  description: "Variable-weight PUCB of the authors' code: max return + (ln((N+base+1)/base) + c) * P * sqrt(ln N) / (1 + n)",
  config: Schema.Struct({
    c: option(Schema.Number.pipe(Schema.nonNegative()), 4, "exploration constant c (authors' code: 4)"),
    base: option(Schema.Number.pipe(Schema.positive()), 10, "visit base of the growing weight (authors' code: 10)"),
  }),
  make: (config): Selector => ({ score: (parent, child) => varPucbScore(config.c, config.base, parent, child) }),
});
