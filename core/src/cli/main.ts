/**
 * `bdc` - the command line. Exit codes: 0 success, 1 run failure, 2 usage or config error,
 * 130 interrupted.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { BdcError, BdcErrors, toBdcErrors } from "../errors.ts";
import { commandHelp, parseCommandArgs, type CommandSpec, type ParsedArgs } from "./args.ts";
import { describeCommand, pluginsCommand, runDescribe, runPlugins, runSchema, schemaCommand } from "./commands/plugins.ts";
import { reportCommand, runReport } from "./commands/report.ts";
import { runCommand, runRun } from "./commands/run.ts";
import { runValidate, validateCommand } from "./commands/validate.ts";
import { printErrors, type Io } from "./output.ts";
import { choicesHint } from "../util/suggest.ts";
import { PluginRegistry } from "../registry.ts";
import { pathToFileURL } from "node:url";

/** What a package's command module (listed under `bdc.commands` in its package.json) default-exports. */
export interface CliCommand {
  readonly spec: CommandSpec;
  run(io: Io, args: ParsedArgs): Promise<number>;
}

const builtins = new Map<string, CliCommand>([
  ["validate", { spec: validateCommand, run: runValidate }],
  ["run", { spec: runCommand, run: runRun }],
  ["plugins", { spec: pluginsCommand, run: runPlugins }],
  ["describe", { spec: describeCommand, run: runDescribe }],
  ["report", { spec: reportCommand, run: runReport }],
  ["schema", { spec: schemaCommand, run: runSchema }],
]);

const CONFIG_CODES = /^BDC_(USAGE|FILE_NOT_FOUND|YAML_SYNTAX|CONFIG_|SET_SYNTAX|UNKNOWN_|PLUGIN_|REF_|MISSING_INSTANCE|AMBIGUOUS_INSTANCE|STEP_CYCLE|NO_STEPS|PREFLIGHT|RESUME_MISMATCH|RUN_DIR)/;

function version(): string {
  const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "package.json");
  return (JSON.parse(fs.readFileSync(pkg, "utf8")) as { version: string }).version;
}

/** Built-in commands plus those packages contribute (e.g. `bdc ask`, `bdc models`). */
async function loadCommands(cwd: string): Promise<Map<string, CliCommand>> {
  const all = new Map(builtins);
  for (const entry of PluginRegistry.discover(cwd).commands) {
    if (all.has(entry.name)) continue;
    try {
      const mod = (await import(pathToFileURL(entry.module).href)) as { default?: CliCommand };
      if (mod.default?.spec !== undefined && typeof mod.default.run === "function") all.set(entry.name, mod.default);
    } catch (cause) {
      all.set(entry.name, brokenCommand(entry.name, entry.pkg, cause));
    }
  }
  return all;
}

function brokenCommand(name: string, pkg: string, cause: unknown): CliCommand {
  return {
    spec: { name, summary: `(failed to load from ${pkg})`, usage: `bdc ${name}`, flags: {}, maxPositionals: Infinity },
    run: async () => {
      throw new BdcError({ code: "BDC_PLUGIN_LOAD", message: `command "${name}" from ${pkg} failed to load: ${(cause as Error).message}`, cause });
    },
  };
}

function mainHelp(commands: ReadonlyMap<string, CliCommand>): string {
  const rows = [...commands.values()].map(({ spec }) => `  ${spec.name.padEnd(10)} ${spec.summary}`);
  return `bdc - Boost, Disentangle, and Customize: workflows of plugins for code generation\n\nUsage: bdc <command> [options]\n\nCommands:\n${rows.join("\n")}\n\nRun \`bdc <command> --help\` for a command's options. Exit codes: 0 ok, 1 run failed, 2 usage/config error, 130 interrupted.\n`;
}

export async function main(argv: ReadonlyArray<string>, io: Io): Promise<number> {
  const [name, ...rest] = argv;
  const commands = name !== undefined && builtins.has(name) ? builtins : await loadCommands(io.cwd);
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    const topic = name === "help" ? commands.get(rest[0] ?? "") : undefined;
    const text = topic === undefined ? mainHelp(commands) : commandHelp(topic.spec);
    // Bare `bdc` is a usage error: help goes to stderr and the exit code is 2.
    if (name === undefined) io.err(text);
    else io.out(text);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-v") {
    io.out(`${version()}\n`);
    return 0;
  }
  const command = commands.get(name);
  try {
    if (command === undefined) {
      throw new BdcError({ code: "BDC_USAGE", message: `unknown command "${name}"`, hint: choicesHint(name, [...commands.keys()], "commands") });
    }
    const args = parseCommandArgs(command.spec, rest);
    if (args.flags.help === true) {
      io.out(commandHelp(command.spec));
      return 0;
    }
    return await command.run(io, args);
  } catch (e) {
    const errors = toBdcErrors(e);
    printErrors(io, errors);
    if (errors.some((x) => x.code === "BDC_INTERNAL")) {
      const stack = errors.find((x) => x.code === "BDC_INTERNAL")?.cause;
      if (stack instanceof Error && stack.stack) io.err(`${stack.stack}\n`);
      return 1;
    }
    // Everything found while loading and validating a workflow (a BdcErrors) is a config
    // problem, including codes plugins define for their preflight checks.
    return e instanceof BdcErrors || errors.every((x) => CONFIG_CODES.test(x.code)) ? 2 : 1;
  }
}
