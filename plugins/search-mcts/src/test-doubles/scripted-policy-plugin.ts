// Test double: a policy answering with the "chain" script; every prompt is appended to log_file.
import * as fs from "node:fs";
import { Schema } from "effect";
import { definePlugin, optional } from "@bdc/core";
import type { Policy } from "@bdc/policy";
import { chainScript, ScriptedPolicy } from "./scripted.ts";

export default definePlugin({
  id: "policy/scripted-chain",
  version: "1.0.0",
  description: "Test double: a scripted policy (chain script), logging prompts",
  config: Schema.Struct({ log_file: optional(Schema.String, "JSONL file receiving every prompt") }),
  make(config, _deps, kernel): Policy {
    const log = config.log_file;
    return new ScriptedPolicy(kernel.instance, (prompt, agent, sampling) => {
      if (log !== undefined) fs.appendFileSync(log, `${JSON.stringify({ agent, prompt, sampling })}\n`);
      return chainScript(prompt, agent, sampling);
    });
  },
});
