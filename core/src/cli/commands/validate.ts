import * as path from "node:path";
import { stringify } from "yaml";
import type { CommandSpec, ParsedArgs } from "../args.ts";
import { BdcError, formatPath, toBdcErrors } from "../../errors.ts";
import { printErrors, type Io } from "../output.ts";
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

/** An error as JSON (`validate --json`): code, message, hint, plugin, the YAML path and file:line:col. */
function errorJson(e: BdcError): Record<string, unknown> {
  const origin = e.origin === undefined ? {} : e.origin.kind === "file" ? { file: e.origin.file, line: e.origin.line, col: e.origin.col } : { arg: e.origin.arg };
  return { code: e.code, message: e.message, ...(e.hint === undefined ? {} : { hint: e.hint }), ...(e.plugin === undefined ? {} : { plugin: e.plugin }), ...(e.path === undefined ? {} : { path: formatPath(e.path) }), ...origin };
}

export async function runValidate(io: Io, args: ParsedArgs): Promise<number> {
  const inv = invocationOf(io, args.positionals[0]!, args);
  const preflight = args.flags["no-preflight"] !== true;
  let workflow;
  try {
    ({ workflow } = await resolveInvocation(io, inv, { preflight }));
  } catch (e) {
    const errors = toBdcErrors(e);
    if (args.flags.json === true) {
      io.out(`${JSON.stringify({ valid: false, errors: errors.map(errorJson) })}\n`);
      return 2;
    }
    if (args.flags.print === true && preflight) {
      // The document does not depend on the environment: print it, and say what the environment lacks.
      const unchecked = await resolveInvocation(io, inv, { preflight: false }).catch(() => undefined);
      if (unchecked !== undefined) {
        io.out(stringify(unchecked.workflow.document));
        printErrors(io, errors);
        io.err("(the workflow above resolves; the environment checks listed failed - fix them before `bdc run`, or add --no-preflight to print without them)\n");
        return 2;
      }
    }
    throw e;
  }
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
