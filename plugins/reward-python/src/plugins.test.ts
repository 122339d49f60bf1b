import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after } from "node:test";
import { testPlugin } from "@bdc/core/testing";
import referencesStep from "./references-step.ts";
import rewardPlugin from "./reward-plugin.ts";
import scoreStep from "./score-step.ts";
import solutionsDataset from "./solutions-dataset.ts";

testPlugin(rewardPlugin, {
  valid: [{}, { sandbox: "none", compare: "strict", workers: 2, time_limit_ms: 1000 }],
  invalid: [
    { config: { sandbox: "docker" }, code: "BDC_CONFIG_VALUE", path: "sandbox" },
    { config: { compare: "exact" }, code: "BDC_CONFIG_VALUE", path: "compare" },
    { config: { workers: 0 }, code: "BDC_CONFIG_VALUE", path: "workers" },
  ],
});

testPlugin(scoreStep, {
  valid: [{}, { tests: "all", label: "mcts" }],
  invalid: [{ config: { tests: "private" }, code: "BDC_CONFIG_VALUE", path: "tests" }],
});

testPlugin(referencesStep, { valid: [{}, { which: 1 }], invalid: [{ config: { which: -1 }, code: "BDC_CONFIG_VALUE", path: "which" }] });

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-solutions-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
fs.writeFileSync(path.join(dir, "solutions.jsonl"), '{"problem_id": 7, "code": "print(1)"}\n{"problem_id": "b", "code": "print(2)"}\n');
testPlugin(solutionsDataset, {
  valid: [{ path: "solutions.jsonl" }],
  invalid: [{ config: {}, code: "BDC_CONFIG_MISSING_KEY", path: "path" }],
  contract: { config: { path: "solutions.jsonl" }, baseDir: dir },
});
