import * as path from "node:path";
import { stringify } from "yaml";
import type { CommandSpec, ParsedArgs } from "../args.ts";
import type { Io } from "../output.ts";
import { invocationOf, resolveInvocation, workflowFlags } from "../workflow-args.ts";

export const validateCommand: CommandSpec = {
  name: "validate",
  summary: "Check a workflow (format, plugins, configs, references, step graph, plugin preflight checks) without running it.",
  usage: "bdc validate <workflow.yaml> [--overlay FILE]... [--set PATH=VALUE]... [--print] [--json]",
  minPositionals: 1,
  maxPositionals: 1,
  flags: {
    ...workflowFlags,
    print: { type: "boolean", short: "p", description: "print the fully resolved workflow as YAML" },
    json: { type: "boolean", description: "print the result as JSON" },
    "no-preflight": { type: "boolean", description: "skip the plugins' environment checks (API keys, files, devices)" },
  },
  details: "Exit codes: 0 valid, 2 invalid (every problem is listed with file:line:col, YAML path and code).",
};

export async function runValidate(io: Io, args: ParsedArgs): Promise<number> {
  const inv = invocationOf(io, args.positionals[0]!, args);
  const { workflow } = await resolveInvocation(io, inv, { preflight: args.flags["no-preflight"] !== true });
  if (args.flags.print === true) {
    io.out(stringify(workflow.document));
    return 0;
  }
  const instances = Object.values(workflow.document.plugins as Record<string, { enabled?: boolean }>);
  const disabled = instances.filter((i) => i.enabled === false).length;
  if (args.flags.json === true) {
    io.out(`${JSON.stringify({ valid: true, workflow: workflow.name, instances: instances.length, disabled, steps: workflow.steps.map((s) => s.name) })}\n`);
    return 0;
  }
  const rel = path.relative(io.cwd, inv.workflow) || inv.workflow;
  io.out(
    `${rel}: valid - ${instances.length} plugin instance${instances.length === 1 ? "" : "s"}${disabled > 0 ? ` (${disabled} disabled)` : ""}, ` +
      `${workflow.steps.length} step${workflow.steps.length === 1 ? "" : "s"}: ${workflow.steps.map((s) => s.name).join(", ")}\n`,
  );
  return 0;
}
