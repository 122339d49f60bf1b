/** Command-line parsing on node:util parseArgs, with BDC_USAGE errors that suggest the nearest flag. */
import { parseArgs } from "node:util";
import { BdcError } from "../errors.ts";
import { nearest } from "../util/suggest.ts";

export interface FlagSpec {
  readonly type: "boolean" | "string";
  readonly multiple?: boolean;
  readonly short?: string;
  readonly value?: string;
  readonly description: string;
}

export interface CommandSpec {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  readonly minPositionals?: number;
  readonly maxPositionals?: number;
  readonly details?: string;
}

export interface ParsedArgs {
  readonly positionals: string[];
  readonly flags: Record<string, string | boolean | string[] | undefined>;
}

/**
 * The number a string flag holds, undefined when the flag is absent; `usage` makes the error for a
 * value that is not a finite number passing `check` ("--lr abc is not a positive number").
 */
export function numberFlag(args: ParsedArgs, name: string, check: (n: number) => boolean, what: string, usage: (message: string) => BdcError): number | undefined {
  const raw = args.flags[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(n) || !check(n)) throw usage(`--${name} ${String(raw)} is not ${what}`);
  return n;
}

export function parseCommandArgs(spec: CommandSpec, argv: ReadonlyArray<string>): ParsedArgs {
  const options = Object.fromEntries(
    Object.entries({ ...spec.flags, help: { type: "boolean", short: "h", description: "" } as FlagSpec }).map(([k, f]) => [
      k,
      { type: f.type, ...(f.multiple ? { multiple: true } : {}), ...(f.short ? { short: f.short } : {}) },
    ]),
  );
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = (e as Error).message;
    const unknown = /^Unknown option '(-{1,2}[^' ]+)'/.exec(msg)?.[1];
    const near = unknown === undefined ? undefined : nearest(unknown.replace(/^-+/, ""), Object.keys(spec.flags));
    throw new BdcError({
      code: "BDC_USAGE",
      message: `bdc ${spec.name}: ${msg.split(". ")[0]!.replace(/^Unknown option/, "unknown option")}`,
      hint: `${near === undefined ? "" : `did you mean --${near}? `}see \`bdc ${spec.name} --help\``,
    });
  }
  const positionals = parsed.positionals;
  if (parsed.values.help !== true) {
    if (positionals.length < (spec.minPositionals ?? 0)) {
      throw new BdcError({ code: "BDC_USAGE", message: `bdc ${spec.name}: missing argument`, hint: `usage: ${spec.usage}` });
    }
    if (positionals.length > (spec.maxPositionals ?? 0)) {
      throw new BdcError({ code: "BDC_USAGE", message: `bdc ${spec.name}: unexpected argument "${positionals[spec.maxPositionals ?? 0]}"`, hint: `usage: ${spec.usage}` });
    }
  }
  return { positionals, flags: parsed.values as ParsedArgs["flags"] };
}

export function commandHelp(spec: CommandSpec): string {
  const rows = Object.entries(spec.flags).map(([name, f]) => {
    const left = `${f.short ? `-${f.short}, ` : "    "}--${name}${f.type === "string" ? ` ${f.value ?? "VALUE"}` : ""}`;
    return `  ${left.padEnd(30)} ${f.description}${f.multiple ? " (repeatable)" : ""}`;
  });
  rows.push(`  ${"-h, --help".padEnd(30)} show this help`);
  return `${spec.summary}\n\nUsage: ${spec.usage}\n${spec.details ? `\n${spec.details}\n` : ""}\nOptions:\n${rows.join("\n")}\n`;
}
