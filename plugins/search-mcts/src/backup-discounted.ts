/**
 * backup/discounted: the paper's Backup (eq. 5-6) with the node value of eq. 11.
 *
 * The return of a freshly simulated node S_t is r_t + gamma * PR(S_t) (eq. 5) with r_t = 0 for
 * a non-terminal node; a terminal node is its own solution and its return is its reward
 * r_T = PR(S_T) (eq. 11: Q(S) = r_T if terminal, gamma * PR(S_t) otherwise). The return is
 * folded into every node of the path (root .. node): its `returns` gets the return, `visits`
 * grows by one (eq. 6), and `value` = f(returns), f = max or mean (the value function of eq. 5).
 * A node never simulated (pr null) returns 0.
 */
import { Schema } from "effect";
import { definePlugin, option } from "@bdc/core";
import type { Backup, TreeNode } from "./types.ts";

export function discountedBackup(gamma: number, value: "max" | "mean"): Backup {
  return {
    rewardOf: (node: TreeNode) => (node.pr === null ? 0 : node.terminal ? node.pr : gamma * node.pr),
    backup(path, reward) {
      for (const node of path) {
        node.returns.push(reward);
        node.visits += 1;
        // Incremental (returns only grow): O(1) per node, exact for max, running mean for mean.
        const n = node.returns.length;
        node.value = n === 1 ? reward : value === "max" ? Math.max(node.value, reward) : node.value + (reward - node.value) / n;
      }
    },
  };
}

export default definePlugin({
  id: "backup/discounted",
  version: "0.1.0",
  description: "Discounted backup (paper eq. 5-6, 11): return gamma*PR (PR when terminal) added along the path; value = max or mean of returns",
  config: Schema.Struct({
    gamma: option(Schema.Number.pipe(Schema.between(0, 1)), 0.9, "discount of a non-terminal node's pass rate (paper: 0.9)"),
    value: option(Schema.Literal("max", "mean"), "max", "value function f: max (authors' code) or mean of the returns"),
  }),
  make: (config): Backup => discountedBackup(config.gamma, config.value),
});
