/**
 * `bdc ask <workflow.yaml> <instance> "<prompt>"`: one prompt through a configured policy
 * instance, with every overlay and --set applied. Users check keys and endpoints with it.
 */
import * as path from "node:path";
import { BdcError, choicesHint, instantiate, loadWorkflow, PluginRegistry, resolveWorkflow, slotOf, type CliCommand } from "@bdc/core";
import type { Policy } from "./types.ts";

const command: CliCommand = {
  spec: {
    name: "ask",
    summary: "Send one prompt through a policy instance of a workflow and print the reply.",
    usage: 'bdc ask <workflow.yaml> <instance> "<prompt>" [--overlay FILE]... [--set PATH=VALUE]... [--json]',
    minPositionals: 3,
    maxPositionals: 3,
    flags: {
      overlay: { type: "string", multiple: true, short: "o", value: "FILE", description: "merge an overlay file onto the workflow" },
      set: { type: "string", multiple: true, short: "s", value: "PATH=VALUE", description: "override one value (VALUE is YAML)" },
      json: { type: "boolean", description: 'last line: {"text", "input_tokens", "output_tokens", "cached", "latency_ms"}' },
    },
    details: "The response cache applies: asking the same thing twice calls the provider once.",
  },
  async run(io, args) {
    const [file, name, prompt] = args.positionals as [string, string, string];
    const loaded = loadWorkflow({
      file: path.resolve(io.cwd, file),
      overlays: ((args.flags.overlay as string[] | undefined) ?? []).map((o) => path.resolve(io.cwd, o)),
      sets: (args.flags.set as string[] | undefined) ?? [],
      cwd: io.cwd,
    });
    // Only this instance has to be usable: the workflow's steps need not be runnable here.
    const workflow = await resolveWorkflow(loaded, { registry: PluginRegistry.discover(path.dirname(path.resolve(io.cwd, file))), env: io.env, for: [name] });
    const inst = workflow.instances.get(name);
    const policies = [...workflow.instances.values()].filter((i) => slotOf(i.plugin.id) === "policy").map((i) => i.name);
    if (inst === undefined || slotOf(inst.plugin.id) !== "policy") {
      throw new BdcError({
        code: "BDC_UNKNOWN_INSTANCE",
        message: `${inst === undefined ? "no enabled instance" : "no policy instance"} named "${name}" in ${file}`,
        hint: choicesHint(name, policies, "enabled policy instances"),
      });
    }
    const controller = new AbortController();
    const instances = await instantiate(workflow, [name], {
      runDir: undefined,
      signal: controller.signal,
      emit: () => {},
      log: (i, m) => io.err(`[${i}] ${m}\n`),
      warn: (i, m) => io.err(`warning: [${i}] ${m}\n`),
    });
    try {
      const reply = await instances.get<Policy>(name).complete([{ role: "user", content: prompt }]);
      io.out(`${reply.text}\n`);
      io.err(`${name}: ${reply.model}, ${reply.inputTokens} input + ${reply.outputTokens} output tokens, ${reply.cached ? "cached" : `${reply.latencyMs} ms`}${reply.costUsd > 0 ? `, $${reply.costUsd.toFixed(6)}` : ""}\n`);
      if (args.flags.json === true) {
        io.out(`${JSON.stringify({ text: reply.text, input_tokens: reply.inputTokens, output_tokens: reply.outputTokens, cached: reply.cached, latency_ms: reply.latencyMs })}\n`);
      }
      return 0;
    } finally {
      await instances.close();
    }
  },
};

export default command;
