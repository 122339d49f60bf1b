/**
 * select/pucb: the paper's PUCB (eq. 3):
 *
 *   PUCB(S_c) = Q(S_c) + c * P(a|S) * sqrt(ln N(S)) / (1 + N(S_c))
 *
 * Q is read from the child (the paper's text attaches Q to the parent, which is the same for
 * every child and cannot rank them; the authors' code uses the child's value, as here). Edge
 * cases: ln N(S) is taken as 0 when the parent has 0 or 1 visits (ln 1 = 0; ln 0 is undefined),
 * so early on children are ranked by value alone; an unvisited child has Q = its value (0
 * before any backup) and the full 1/(1+0) exploration weight.
 */
import { Schema } from "effect";
import { definePlugin, option } from "@bdc/core";
import type { Selector, TreeNode } from "./types.ts";

/** ln N, with ln of 0 or 1 visits = 0. */
export const lnVisits = (n: number): number => (n > 1 ? Math.log(n) : 0);

export function pucbScore(c: number, parent: TreeNode, child: TreeNode): number {
  return child.value + (c * child.prior * Math.sqrt(lnVisits(parent.visits))) / (1 + child.visits);
}

export default definePlugin({
  id: "select/pucb",
  version: "0.1.0",
  description: "PUCB selection (paper eq. 3): Q + c * P * sqrt(ln N_parent) / (1 + N_child)",
  config: Schema.Struct({
    c: option(Schema.Number.pipe(Schema.nonNegative()), 1, "exploration constant c (the paper gives no value)"),
  }),
  make: (config): Selector => ({ score: (parent, child) => pucbScore(config.c, parent, child) }),
});
