// Test double: a reward whose pass rates follow the chain script; every call (with its tests) is appended to log_file.
import * as fs from "node:fs";
import { Schema } from "effect";
import { definePlugin, optional } from "@bdc/core";
import type { Reward } from "@bdc/reward-python";
import { chainPassRate, ScriptedReward } from "./scripted.ts";

export default definePlugin({
  id: "reward/scripted-chain",
  version: "1.0.0",
  description: "Test double: a scripted reward (chain pass rates), logging every test it runs",
  config: Schema.Struct({ log_file: optional(Schema.String, "JSONL file receiving every call") }),
  make(config): Reward {
    const log = config.log_file;
    return new ScriptedReward(chainPassRate, "trace: n = 3 at line 1", log === undefined ? undefined : (call) => fs.appendFileSync(log, `${JSON.stringify(call)}\n`));
  },
});
