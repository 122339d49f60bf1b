/**
 * The MC-Tree-Of-Agents operator slots' contracts, for plugin authors' tests: what runSearch
 * relies on from a select/expand/simulate/backup/prune/refine plugin.
 *
 *   import { expandContract } from "@bdc/search-mcts/testing";
 *   testPlugin(myExpander, { contract: { config: {}, deps: { agents: [agent], prompts: promptLibrary() }, slot: expandContract } });
 *
 * Expanders, simulators and refiners are called with a SearchContext over a small stdio problem
 * whose public test any program printing "3" passes (a reward stand-in judges that, no sandbox);
 * they use the agents of their own deps.
 */
import * as assert from "node:assert/strict";
import { defineContract } from "@bdc/core/testing";
import { promptLibrary } from "@bdc/policy";
import type { PublicProblem, Reward } from "@bdc/reward-python";
import { newNode } from "../search.ts";
import type { Backup, Expander, Pruner, Refiner, SearchContext, Selector, Simulator, TreeNode } from "../types.ts";

export const CONTRACT_PROBLEM: PublicProblem = {
  id: "contract-sum",
  source: "apps",
  difficulty: "introductory",
  statement: "Read two integers a and b on one line and print a + b.",
  style: "stdio",
  publicTests: [{ kind: "stdio", input: "1 2\n", output: "3\n" }],
  split: "first-half",
};

const reward: Reward = {
  sandboxed: false,
  evaluate: async (_p, code) => ({ passFraction: /print\(\s*3\s*\)|a \+ b|sum\(/.test(code) ? 1 : 0, verdicts: [], tests: [] }),
  evaluateOn: async (_p, code) => ({ passFraction: /print\(\s*3\s*\)|a \+ b|sum\(/.test(code) ? 1 : 0, verdicts: [], tests: [] }),
  feedback: async () => {
    throw new Error("not used by the contract");
  },
};

/** A small tree: root -> child (pass rate 0.5) -> grandchild (unsimulated). */
export function contractTree(): { root: TreeNode; child: TreeNode; grandchild: TreeNode; ctx: SearchContext } {
  const root = newNode("0", null, "", null, 1);
  const child = newNode("0.0", root, "read both numbers from one line", "agent", 1);
  root.children.push(child.id);
  child.pr = 0.5;
  root.pr = 0;
  const grandchild = newNode("0.0.0", child, "print their sum", "agent", 1);
  child.children.push(grandchild.id);
  const byId = new Map([root, child, grandchild].map((n) => [n.id, n]));
  const ctx: SearchContext = {
    problem: CONTRACT_PROBLEM,
    agents: [],
    prompts: promptLibrary(),
    reward,
    signal: new AbortController().signal,
    thoughtsTo: (node) => {
      const out: string[] = [];
      for (let n: TreeNode | undefined = node; n !== undefined && n.parent !== null; n = byId.get(n.parent)) out.unshift(n.thought);
      return out;
    },
    emit: () => {},
  };
  return { root, child, grandchild, ctx };
}

export const selectContract = defineContract<Selector>({
  slot: "select",
  cases: [
    {
      name: "scores are numbers (+Infinity allowed for an unvisited child: tried first), deterministic, finite once visited",
      check(select) {
        const { root, child } = contractTree();
        root.visits = 3;
        const fresh = select.score(root, child);
        assert.ok(!Number.isNaN(fresh) && fresh !== Number.NEGATIVE_INFINITY, `score ${fresh}`);
        assert.equal(select.score(root, child), fresh, "same tree, same score");
        child.visits = 2;
        child.returns.push(0.5, 0.4);
        child.value = 0.45;
        assert.ok(Number.isFinite(select.score(root, child)));
      },
    },
  ],
});

export const backupContract = defineContract<Backup>({
  slot: "backup",
  cases: [
    {
      name: "rewardOf is finite; backup visits every node of the path once and records the return",
      check(backup) {
        const { root, child } = contractTree();
        const r = backup.rewardOf(child);
        assert.ok(Number.isFinite(r) && r >= 0 && r <= 1, `reward ${r} in [0, 1]`);
        backup.backup([root, child], r);
        assert.deepEqual([root.visits, child.visits], [1, 1]);
        assert.ok(root.returns.length === 1 && child.returns.length === 1, "one return each");
        assert.ok(Number.isFinite(root.value) && Number.isFinite(child.value));
      },
    },
  ],
});

export const pruneContract = defineContract<Pruner>({
  slot: "prune",
  cases: [
    {
      name: "isIll answers a boolean, and an unsimulated child is never ill",
      check(prune) {
        const { child, grandchild } = contractTree();
        assert.equal(typeof prune.isIll(child, grandchild), "boolean");
        assert.equal(prune.isIll(child, grandchild), false, "pr null: not ill");
      },
    },
  ],
});

export const expandContract = defineContract<Expander>({
  slot: "expand",
  cases: [
    {
      name: "proposes thoughts: non-empty strings, each with the agent that proposed it, priors >= 0 when given",
      async check(expand) {
        const { child, ctx } = contractTree();
        const proposals = await expand.expand(child, ctx);
        assert.ok(Array.isArray(proposals) && proposals.length > 0, "at least one proposal");
        for (const p of proposals) {
          assert.ok(typeof p.thought === "string" && p.thought.length > 0, "a thought");
          assert.ok(typeof p.agent === "string" && p.agent.length > 0, "its agent");
          if (p.prior !== undefined) assert.ok(p.prior >= 0, `prior ${p.prior}`);
        }
      },
    },
  ],
});

export const simulateContract = defineContract<Simulator>({
  slot: "simulate",
  cases: [
    {
      name: "writes programs judged on the public tests: code, a pass rate in [0, 1], the agent",
      async check(simulate) {
        const { child, ctx } = contractTree();
        const programs = await simulate.simulate(child, ctx);
        assert.ok(programs.length > 0, "at least one program");
        for (const p of programs) {
          assert.equal(typeof p.code, "string");
          assert.ok(p.passRate >= 0 && p.passRate <= 1, `pass rate ${p.passRate}`);
          assert.ok(typeof p.agent === "string" && p.agent.length > 0);
          if (p.reward !== undefined) assert.ok(Number.isFinite(p.reward));
        }
      },
    },
  ],
});

export const refineContract = defineContract<Refiner>({
  slot: "refine",
  cases: [
    {
      name: "canRefine is a boolean; a refinement is a new thought with its summary and who summarised",
      async check(refine) {
        const { root, child, ctx } = contractTree();
        assert.equal(typeof refine.canRefine(child, 0), "boolean");
        if (!refine.canRefine(child, 0)) return;
        const r = await refine.refine(child, root, ctx);
        if (r === undefined) return;
        assert.ok(typeof r.thought === "string" && r.thought.length > 0);
        assert.equal(typeof r.summary, "string");
        assert.equal(typeof r.summarizedBy, "string");
      },
    },
  ],
});
