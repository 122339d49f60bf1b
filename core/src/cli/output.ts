/** Terminal output: errors in the house format, colour only on a TTY without NO_COLOR. */
import { LineProgress, SilentProgress, TtyProgress, type ProgressReporter } from "../engine/progress.ts";
import { formatError, formatOrigin, formatPath, type BdcError } from "../errors.ts";

export interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly isTTY: boolean;
}

export const processIo = (): Io => ({
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  // `pnpm bdc ...` runs in the workspace root; INIT_CWD is where the user typed the command.
  cwd: process.env.npm_lifecycle_event !== undefined && process.env.INIT_CWD !== undefined ? process.env.INIT_CWD : process.cwd(),
  env: process.env,
  isTTY: process.stderr.isTTY === true,
});

const useColor = (io: Io) => io.isTTY && io.env.NO_COLOR === undefined;

export function printErrors(io: Io, errors: ReadonlyArray<BdcError>): void {
  // The first line starts with file:line:col, as compilers print it, so that editors and
  // terminals turn it into a link.
  // The same environment problem at several places (two agents without model access, four
  // plugins asking for a GPU that is not there) is printed once, with the other places (and their
  // plugins) listed under it; config errors each name their own place to edit.
  const color = useColor(io);
  const groups = new Map<string, BdcError[]>();
  for (const [i, e] of errors.entries()) {
    const key = /^BDC_CONFIG_/.test(e.code) ? `#${i}` : JSON.stringify([e.code, e.message, e.hint]);
    groups.set(key, [...(groups.get(key) ?? []), e]);
  }
  for (const [first, ...others] of groups.values()) {
    const [head, ...rest] = formatError(first!).split("\n");
    const shown = color ? head!.replace(/\[(BDC_[A-Z_]+)\]$/, "\x1b[31m[$1]\x1b[0m") : head!;
    const also = others.map((o) => {
      const where = [o.origin === undefined ? undefined : formatOrigin(o.origin), o.path === undefined ? undefined : formatPath(o.path)].filter((x) => x !== undefined).join(" ");
      return `  also at: ${where}${o.plugin !== undefined && o.plugin !== first!.plugin ? ` (${o.plugin})` : ""}\n`;
    });
    io.err(`${shown}\n${also.join("")}${rest.map((l) => `${l}\n`).join("")}`);
  }
  if (groups.size > 1) io.err(`${groups.size} problems\n`);
}

/** Bars on a TTY, plain lines otherwise, only warnings with --quiet; all on stderr. */
export function progressFor(io: Io, quiet: boolean): ProgressReporter {
  const line = (l: string) => io.err(`${l}\n`);
  return quiet ? new SilentProgress(line) : io.isTTY ? new TtyProgress() : new LineProgress(line);
}
