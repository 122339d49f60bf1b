/** Every built-in operator plugin against its slot's exported contract (@bdc/search-mcts/testing). */
import { testPlugin } from "@bdc/core/testing";
import { promptLibrary } from "@bdc/policy";
import backupDiscounted from "./backup-discounted.ts";
import expandAgents from "./expand-agents.ts";
import expandWorldModel from "./expand-world-model.ts";
import pruneIllChild from "./prune-ill-child.ts";
import refineSummary from "./refine-summary.ts";
import selectPucb from "./select-pucb.ts";
import selectUct from "./select-uct.ts";
import selectVarPucb from "./select-var-pucb.ts";
import simulateCodeFromThoughts from "./simulate-code-from-thoughts.ts";
import { chainPassRate, chainScript, ScriptedPolicy, ScriptedReward } from "./test-doubles/scripted.ts";
import { backupContract, expandContract, pruneContract, refineContract, selectContract, simulateContract } from "./testing/index.ts";

const agents = [new ScriptedPolicy("a", chainScript), new ScriptedPolicy("b", chainScript)];
const prompts = promptLibrary();
const reward = new ScriptedReward(chainPassRate);

for (const plugin of [selectPucb, selectUct, selectVarPucb]) testPlugin(plugin, { contract: { config: {}, slot: selectContract } });
testPlugin(backupDiscounted, { contract: { config: {}, slot: backupContract } });
testPlugin(pruneIllChild, { contract: { config: {}, slot: pruneContract } });
testPlugin(expandAgents, { contract: { config: {}, deps: { agents, prompts }, slot: expandContract } });
// RAP's expander asks sub-questions.
const asker = new ScriptedPolicy("rap", () => "Sub-question: which two numbers are read?\nSub-question: how are they printed?");
testPlugin(expandWorldModel, { contract: { config: {}, deps: { agents: [asker], prompts }, slot: expandContract } });
testPlugin(simulateCodeFromThoughts, { contract: { config: {}, deps: { agents, prompts, reward }, slot: simulateContract } });
testPlugin(refineSummary, { contract: { config: {}, deps: { agents, prompts }, slot: refineContract } });
