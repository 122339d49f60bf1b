/**
 * `bdc ask <workflow.yaml> <instance> "<prompt>"`: one prompt through a configured policy
 * instance, with every overlay and --set applied. Users check keys and endpoints with it.
 */
import { instanceFromWorkflow, slotOf, workflowFlags, type CliCommand } from "@bdc/core";
import type { Policy } from "./types.ts";

const command: CliCommand = {
  spec: {
    name: "ask",
    summary: "Send one prompt through a policy instance of a workflow and print the reply.",
    usage: 'bdc ask <workflow.yaml> <instance> "<prompt>" [--overlay FILE]... [--set PATH=VALUE]... [--json]',
    minPositionals: 3,
    maxPositionals: 3,
    flags: {
      ...workflowFlags,
      json: { type: "boolean", description: 'last line: {"text", "input_tokens", "output_tokens", "cached", "latency_ms"}' },
    },
    details: "The response cache applies: asking the same thing twice calls the provider once.",
  },
  async run(io, args) {
    const [file, name, prompt] = args.positionals as [string, string, string];
    const { impl: policy, close } = await instanceFromWorkflow<Policy>(io, file, args, name, { accept: (id) => slotOf(id) === "policy", what: "policy instances" });
    try {
      const reply = await policy.complete([{ role: "user", content: prompt }]);
      io.out(`${reply.text}\n`);
      io.err(`${name}: ${reply.model}, ${reply.inputTokens} input + ${reply.outputTokens} output tokens, ${reply.cached ? "cached" : `${reply.latencyMs} ms`}${reply.costUsd > 0 ? `, $${reply.costUsd.toFixed(6)}` : ""}\n`);
      if (args.flags.json === true) {
        io.out(`${JSON.stringify({ text: reply.text, input_tokens: reply.inputTokens, output_tokens: reply.outputTokens, cached: reply.cached, latency_ms: reply.latencyMs })}\n`);
      }
      return 0;
    } finally {
      await close();
    }
  },
};

export default command;
