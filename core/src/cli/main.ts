/**
 * `bdc` - the command line. Exit codes: 0 success, 1 run failure, 2 usage or config error,
 * 130 interrupted.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { BdcError, toBdcErrors } from "../errors.ts";
import { commandHelp, parseCommandArgs, type CommandSpec, type ParsedArgs } from "./args.ts";
import { describeCommand, pluginsCommand, runDescribe, runPlugins, runSchema, schemaCommand } from "./commands/plugins.ts";
import { reportCommand, runReport } from "./commands/report.ts";
import { runCommand, runRun } from "./commands/run.ts";
import { runValidate, validateCommand } from "./commands/validate.ts";
import { printErrors, type Io } from "./output.ts";
import { choicesHint } from "../util/suggest.ts";

type Handler = (io: Io, args: ParsedArgs) => Promise<number>;

/** Other packages add commands (e.g. `bdc ask`, `bdc models`) through this table. */
export const commands = new Map<string, { spec: CommandSpec; run: Handler }>([
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

function mainHelp(): string {
  const rows = [...commands.values()].map(({ spec }) => `  ${spec.name.padEnd(10)} ${spec.summary}`);
  return `bdc - Boost, Disentangle, and Customize: workflows of plugins for code generation\n\nUsage: bdc <command> [options]\n\nCommands:\n${rows.join("\n")}\n\nRun \`bdc <command> --help\` for a command's options. Exit codes: 0 ok, 1 run failed, 2 usage/config error, 130 interrupted.\n`;
}

export async function main(argv: ReadonlyArray<string>, io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    const topic = name === "help" ? commands.get(rest[0] ?? "") : undefined;
    io.out(topic === undefined ? mainHelp() : commandHelp(topic.spec));
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
    return errors.every((x) => CONFIG_CODES.test(x.code)) ? 2 : 1;
  }
}
