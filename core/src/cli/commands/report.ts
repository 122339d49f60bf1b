import * as path from "node:path";
import { writeReport } from "../../report/html.ts";
import type { CommandSpec, ParsedArgs } from "../args.ts";
import type { Io } from "../output.ts";

export const reportCommand: CommandSpec = {
  name: "report",
  summary: "Regenerate a run's report.html from its summary.json and artifacts.",
  usage: "bdc report <run-dir>",
  minPositionals: 1,
  maxPositionals: 1,
  flags: {},
};

export async function runReport(io: Io, args: ParsedArgs): Promise<number> {
  const file = writeReport(path.resolve(io.cwd, args.positionals[0]!));
  io.out(`${path.relative(io.cwd, file) || file}\n`);
  return 0;
}
