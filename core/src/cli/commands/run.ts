import * as fs from "node:fs";
import * as path from "node:path";
import { stringify } from "yaml";
import { formatDuration } from "../../engine/progress.ts";
import { runWorkflow } from "../../engine/run.ts";
import { RUN_FILES, RunStore } from "../../engine/store.ts";
import { BdcError, formatPath, type PathSegment } from "../../errors.ts";
import { isPlainObject } from "../../workflow/layers.ts";
import { displayPath } from "../../workflow/source.ts";
import { parse } from "yaml";
import type { CommandSpec, ParsedArgs } from "../args.ts";
import { progressFor, type Io } from "../output.ts";
import { invocationOf, resolveInvocation, workflowFlags, type Invocation } from "../workflow-args.ts";

export const runCommand: CommandSpec = {
  name: "run",
  summary: "Run a workflow; every finished item is saved at once, so a stopped or killed run resumes where it was.",
  usage: "bdc run <workflow.yaml> [--overlay FILE]... [--set PATH=VALUE]... [--out DIR] [--yes] | bdc run [<workflow.yaml>] --resume DIR [--yes]",
  minPositionals: 0,
  maxPositionals: 1,
  flags: {
    ...workflowFlags,
    out: { type: "string", value: "DIR", description: "run directory (default runs/<workflow>-<date>-<time>)" },
    resume: { type: "string", short: "r", value: "DIR", description: "continue the run in DIR, skipping finished items" },
    quiet: { type: "boolean", short: "q", description: "no progress output" },
    yes: { type: "boolean", short: "y", description: "answer yes to what plugins offer to do before the run (e.g. download a model)" },
  },
  details:
    "Writes resolved.yaml, plugins.json, events.jsonl, steps/<step>/outputs.jsonl, summary.json and report.html.\n" +
    "--yes: without it, a plugin that needs something done first (policy/auto with no model access: pulling a local model) stops the run\n" +
    "in its preflight check and says what it would do; with it, that is done before the run starts (progress on stderr; an interrupted\n" +
    "download resumes next time). `bdc validate` never does such work.\n" +
    "Ctrl-C stops cleanly (a second Ctrl-C forces). Exit codes: 0 succeeded, 1 some work failed, 2 invalid workflow or usage, 130 interrupted.",
};

export async function runRun(io: Io, args: ParsedArgs): Promise<number> {
  const resumeDir = args.flags.resume === undefined ? undefined : path.resolve(io.cwd, args.flags.resume as string);
  if (resumeDir !== undefined && args.flags.out !== undefined) {
    throw new BdcError({ code: "BDC_USAGE", message: "bdc run: --out and --resume exclude each other", hint: "--resume continues in its own directory" });
  }
  let inv: Invocation;
  if (args.positionals[0] !== undefined) inv = invocationOf(io, args.positionals[0], args);
  else if (resumeDir !== undefined) {
    // The recorded invocation, plus any --overlay / --set given now: never ignored silently (a
    // change is refused below, naming the keys, unless it resolves to the same workflow).
    const recorded = readInvocation(resumeDir);
    const now = invocationOf(io, recorded.workflow, args);
    inv = { ...recorded, overlays: [...recorded.overlays, ...now.overlays], sets: [...recorded.sets, ...now.sets] };
  }
  else throw new BdcError({ code: "BDC_USAGE", message: "bdc run: missing argument <workflow.yaml>", hint: `usage: ${runCommand.usage}` });

  const { workflow } = await resolveInvocation(io, inv, { assumeYes: args.flags.yes === true, forRun: true, quiet: args.flags.quiet === true });
  if (resumeDir !== undefined) checkResumable(resumeDir, workflow.document);
  const dir = resumeDir ?? path.resolve(io.cwd, (args.flags.out as string | undefined) ?? path.join("runs", `${workflow.name}-${timestamp()}`));
  const rel = displayPath(dir, io.cwd);

  const controller = new AbortController();
  let stops = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++stops > 1) process.exit(130);
    io.err(`\n${sig === "SIGINT" ? "Ctrl-C" : sig}: stopping; finished work is saved (press Ctrl-C again to force)\n`);
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const progress = progressFor(io, args.flags.quiet === true);
  io.err(`${resumeDir === undefined ? "run" : "resuming"} ${workflow.name} in ${rel}\n`);
  try {
    const outcome = await runWorkflow({ workflow, dir, resume: resumeDir !== undefined, progress, signal: controller.signal, invocation: inv });
    const steps = Object.values(outcome.summary.steps);
    const done = steps.reduce((n, s) => n + s.done, 0);
    const failed = steps.reduce((n, s) => n + s.failed, 0);
    io.err(`${outcome.status}: ${done} item${done === 1 ? "" : "s"} done, ${failed} failed in ${formatDuration(outcome.summary.duration_s ?? 0)}; report: ${path.join(rel, "report.html")}\n`);
    const spent = spending(outcome.summary.instances);
    if (spent !== undefined) io.err(`${spent}\n`);
    // A step's results table (step/score writes the paper's PR/AC table as table.md), as `bdc evaluate` prints it.
    for (const name of Object.keys(outcome.summary.steps)) {
      const table = path.join(dir, "steps", name, RESULT_TABLE);
      if (fs.existsSync(table)) io.err(`\n${name}:\n${fs.readFileSync(table, "utf8")}`);
    }
    if (outcome.status === "interrupted") io.err(`resume with: pnpm bdc run --resume ${rel}\n`);
    if (outcome.status === "failed") {
      // The first failures of each step, so that the common case (one cause) needs no file to open.
      for (const s of steps) {
        for (const f of s.failures.slice(0, FAILURES_SHOWN)) io.err(`  [${s.instance}] ${f.id}: ${f.message}  [${f.code}]\n`);
        if (s.failed > FAILURES_SHOWN) io.err(`  [${s.instance}] ... and ${s.failed - FAILURES_SHOWN} more\n`);
      }
    }
    if (outcome.status === "failed") io.err(`failures are listed in ${path.join(rel, "summary.json")}; fix the cause and rerun the failed items with: pnpm bdc run --resume ${rel}\n`);
    io.out(`${rel}\n`);
    return outcome.exitCode;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** A step that leaves this file in its directory has it printed at the end of `bdc run` (step/score: the PR/AC table). */
export const RESULT_TABLE = "table.md";

/** Failures printed per step when a run fails (all of them are in summary.json). */
const FAILURES_SHOWN = 3;

function readInvocation(dir: string): Invocation {
  const file = path.join(dir, RUN_FILES.invocation);
  if (!fs.existsSync(file)) {
    RunStore.open(dir).close(); // reports "not a run directory" precisely
    throw new BdcError({
      code: "BDC_RUN_DIR",
      message: `${dir} does not record how it was started (${RUN_FILES.invocation})`,
      hint: "pass the workflow and flags again: bdc run <workflow.yaml> [--overlay ...] --resume DIR",
    });
  }
  return JSON.parse(fs.readFileSync(file, "utf8")) as Invocation;
}

/** A run resumes only under the same resolved workflow: otherwise finished items would mix configs. */
function checkResumable(dir: string, document: Record<string, unknown>): void {
  let before: unknown;
  try {
    before = parse(RunStore.resolvedYaml(dir));
  } catch {
    RunStore.open(dir).close();
    return;
  }
  const now = parse(stringify(document));
  const diffs = diffPaths(before, now, []);
  if (diffs.length > 0) {
    const valueAt = (doc: unknown, at: PathSegment[]) => at.reduce<unknown>((v, k) => (isPlainObject(v) ? v[String(k)] : undefined), doc);
    const show = (v: unknown) => {
      const text = v === undefined ? "(unset)" : JSON.stringify(v);
      return text.length > 60 ? `${text.slice(0, 57)}...` : text;
    };
    const described = diffs.slice(0, 5).map((d) => `${formatPath(d) || "(root)"} was ${show(valueAt(before, d))}, now ${show(valueAt(now, d))}`);
    throw new BdcError({
      code: "BDC_RESUME_MISMATCH",
      message: `the workflow resolves differently from the run in ${dir}: ${described.join("; ")}${diffs.length > 5 ? ` and ${diffs.length - 5} more` : ""}`,
      hint: "resume with the same workflow, overlays and --set values (or none: `bdc run --resume DIR` replays them), or start a new run",
    });
  }
}

function diffPaths(a: unknown, b: unknown, at: PathSegment[]): PathSegment[][] {
  if (isPlainObject(a) && isPlainObject(b)) {
    return [...new Set([...Object.keys(a), ...Object.keys(b)])].flatMap((k) => diffPaths(a[k], b[k], [...at, k]));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [at];
}

function timestamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** "spent: 1200 input + 300 output tokens, $0.0123 (gpt $0.01, claude $0.0023)" from instances whose stats count tokens. */
function spending(instances: Record<string, Record<string, unknown>> | undefined): string | undefined {
  const rows = Object.entries(instances ?? {}).filter(([, s]) => typeof s.input_tokens === "number" && typeof s.output_tokens === "number");
  if (rows.length === 0) return undefined;
  const num = (s: Record<string, unknown>, k: string) => (typeof s[k] === "number" ? (s[k] as number) : 0);
  const input = rows.reduce((n, [, s]) => n + num(s, "input_tokens"), 0);
  const output = rows.reduce((n, [, s]) => n + num(s, "output_tokens"), 0);
  const cost = rows.reduce((n, [, s]) => n + num(s, "cost_usd"), 0);
  const per = rows.map(([name, s]) => `${name} $${num(s, "cost_usd").toFixed(4)}`).join(", ");
  return `spent: ${input} input + ${output} output tokens, $${cost.toFixed(4)} (${per})`;
}
