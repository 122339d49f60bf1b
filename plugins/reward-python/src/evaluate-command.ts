/**
 * `bdc evaluate`: score a solutions file (or the dataset's reference solutions) on a dataset's
 * tests with the paper's PR and AC. It is a workflow under the hood (dataset -> score), so it
 * shows progress, stops cleanly on Ctrl-C and resumes with --resume.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { stringify } from "yaml";
import {
  BdcError,
  loadWorkflow,
  PluginRegistry,
  progressFor,
  resolveWorkflow,
  runWorkflow,
  type CliCommand,
  type Io,
  type ParsedArgs,
} from "@bdc/core";
import type { ProblemResult } from "./score-step.ts";
import { metricsMarkdown, type Metrics } from "./scoring/metrics.ts";

const KINDS = ["apps", "codecontests", "humaneval", "mbpp"] as const;

function usage(message: string, hint?: string): BdcError {
  return new BdcError({ code: "BDC_USAGE", message: `bdc evaluate: ${message}`, hint: hint ?? "see `bdc evaluate --help`" });
}

export function evaluationWorkflow(args: {
  kind: string;
  dataset: string;
  solutions?: string;
  tests: string;
  sandbox: string;
  compare: string;
  workers?: number;
  timeLimitMs?: number;
  datasetFilters?: Record<string, unknown>;
}): Record<string, unknown> {
  const workers = args.workers ?? os.availableParallelism();
  const source = args.solutions === undefined ? "references" : "solutions";
  return {
    name: "evaluate",
    description: `Score ${args.solutions === undefined ? "the dataset's reference solutions" : args.solutions} on the ${args.tests} tests of ${args.dataset}`,
    // More items in flight than sandboxes, so that judging never leaves a worker idle.
    run: { concurrency: workers * 2 },
    plugins: {
      problems: { use: `dataset/${args.kind}`, with: { path: args.dataset, ...args.datasetFilters } },
      ...(args.solutions === undefined
        ? { references: { use: "step/references", with: { problems: "problems" } } }
        : { solutions: { use: "dataset/solutions", with: { path: args.solutions } } }),
      reward: {
        use: "reward/python",
        with: { sandbox: args.sandbox, compare: args.compare, workers, ...(args.timeLimitMs === undefined ? {} : { time_limit_ms: args.timeLimitMs }) },
      },
      score: { use: "step/score", with: { tests: args.tests, label: source, problems: "problems" } },
    },
    steps: {
      ...(args.solutions === undefined ? { references: { for_each: "problems" } } : {}),
      score: { for_each: source },
    },
  };
}

const command: CliCommand = {
  spec: {
    name: "evaluate",
    summary: "Score solutions (or the dataset's reference solutions) on a dataset's tests: PR and AC per difficulty.",
    usage: "bdc evaluate --dataset KIND:FILE (--solutions FILE.jsonl | --reference) [--tests hidden|public|all] [--json] [--out DIR]",
    maxPositionals: 0,
    flags: {
      dataset: { type: "string", value: "KIND:FILE", description: `the problems: ${KINDS.join("|")}:<file> (JSONL, parquet, .jsonl.gz)` },
      solutions: { type: "string", value: "FILE", description: 'programs, one {"problem_id": ..., "code": "..."} per line' },
      reference: { type: "boolean", description: "score the dataset's first reference solution of each problem" },
      tests: { type: "string", value: "WHICH", description: "hidden (default, the paper's score) | public | all" },
      ids: { type: "string", value: "RANGE", description: 'only these problem ids, e.g. "4000-4099"' },
      difficulty: { type: "string", multiple: true, value: "D", description: "only this difficulty (repeatable)" },
      compare: { type: "string", value: "MODE", description: "apps (default: the APPS reference cascade) | strict" },
      sandbox: { type: "string", value: "KIND", description: "bwrap (default) | none (unisolated; warns)" },
      workers: { type: "string", value: "N", description: "programs run at once (default: CPUs)" },
      "time-limit": { type: "string", value: "MS", description: "per-test time limit, overriding the dataset's" },
      out: { type: "string", value: "DIR", description: "keep DIR/evaluate.yaml, the run (DIR/run) and DIR/results.jsonl (one line per problem)" },
      resume: { type: "boolean", description: "continue the evaluation in --out DIR" },
      json: { type: "boolean", description: "make the last line of stdout one JSON object with the metrics" },
      quiet: { type: "boolean", short: "q", description: "no progress output" },
    },
    details:
      "PR = 100 x mean over ALL selected problems of the fraction of tests passed; AC = 100 x share of problems passing every test;\n" +
      "a problem without a program counts 0. Exit codes: 0 done (whatever the score), 1 the evaluation itself failed, 2 usage.",
  },

  async run(io: Io, args: ParsedArgs): Promise<number> {
    const f = args.flags;
    const spec = f.dataset as string | undefined;
    if (spec === undefined) throw usage("--dataset KIND:FILE is required", `e.g. --dataset apps:data/apps/test.jsonl (kinds: ${KINDS.join(", ")})`);
    const colon = spec.indexOf(":");
    const kind = colon < 0 ? "" : spec.slice(0, colon);
    if (!(KINDS as ReadonlyArray<string>).includes(kind)) throw usage(`--dataset must be KIND:FILE with KIND one of ${KINDS.join(", ")}, got "${spec}"`);
    if ((f.solutions === undefined) === (f.reference !== true)) throw usage("give exactly one of --solutions FILE and --reference");
    const tests = (f.tests as string | undefined) ?? "hidden";
    if (!["hidden", "public", "all"].includes(tests)) throw usage(`--tests must be hidden, public or all, got "${tests}"`);
    const int = (name: string) => {
      const v = f[name] as string | undefined;
      if (v === undefined) return undefined;
      if (!/^\d+$/.test(v) || Number(v) === 0) throw usage(`--${name} must be a positive integer, got "${v}"`);
      return Number(v);
    };
    const out = f.out === undefined ? undefined : path.resolve(io.cwd, f.out as string);
    if (f.resume === true && out === undefined) throw usage("--resume needs --out DIR (the evaluation to continue)");
    const dir = out ?? fs.mkdtempSync(path.join(os.tmpdir(), "bdc-evaluate-"));
    const filters: Record<string, unknown> = {};
    if (f.ids !== undefined) filters.ids = f.ids;
    if (f.difficulty !== undefined) filters.difficulties = f.difficulty;

    const doc = evaluationWorkflow({
      kind,
      dataset: path.resolve(io.cwd, spec.slice(colon + 1)),
      ...(f.solutions === undefined ? {} : { solutions: path.resolve(io.cwd, f.solutions as string) }),
      tests,
      sandbox: (f.sandbox as string | undefined) ?? "bwrap",
      compare: (f.compare as string | undefined) ?? "apps",
      ...(int("workers") === undefined ? {} : { workers: int("workers")! }),
      ...(int("time-limit") === undefined ? {} : { timeLimitMs: int("time-limit")! }),
      datasetFilters: filters,
    });
    // DIR/evaluate.yaml (the workflow: `bdc run` can replay it), DIR/run (the run), DIR/results.jsonl.
    fs.mkdirSync(dir, { recursive: true });
    const workflowFile = path.join(dir, "evaluate.yaml");
    if (f.resume !== true || !fs.existsSync(workflowFile)) fs.writeFileSync(workflowFile, stringify(doc));
    const workflow = await resolveWorkflow(loadWorkflow({ file: workflowFile, cwd: io.cwd }), { registry: PluginRegistry.discover(io.cwd), env: io.env });
    const runDir = path.join(dir, "run");

    const progress = progressFor(io, f.quiet === true);
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once("SIGINT", stop);
    const t0 = performance.now();
    let outcome;
    try {
      outcome = await runWorkflow({ workflow, dir: runDir, resume: f.resume === true, progress, signal: controller.signal, invocation: { workflow: workflowFile, overlays: [], sets: [] } });
    } finally {
      process.off("SIGINT", stop);
    }
    const seconds = (performance.now() - t0) / 1000;
    const scoreStep = outcome.summary.steps.score;
    const metrics = scoreStep?.summary as (Metrics & { sandboxed: boolean }) | undefined;
    const results = readResults(path.join(runDir, "steps", "score", "outputs.jsonl"));
    if (out !== undefined) fs.writeFileSync(path.join(out, "results.jsonl"), results.map((r) => JSON.stringify(r)).join("\n") + (results.length > 0 ? "\n" : ""));
    else fs.rmSync(dir, { recursive: true, force: true });
    if (outcome.status === "interrupted") {
      io.err(out === undefined ? "interrupted\n" : `interrupted: continue with the same command and --resume\n`);
      return 130;
    }
    if (metrics === undefined) {
      io.err(`the evaluation failed: ${scoreStep?.error?.message ?? "see the run's summary.json"}\n`);
      return 1;
    }
    const testsRun = results.reduce((n, r) => n + r.tests.length, 0);
    const testsPerSecond = Math.round((testsRun / Math.max(seconds, 1e-9)) * 10) / 10;
    io.out(metricsMarkdown(f.reference === true ? "reference" : "solutions", metrics));
    io.out(`${metrics.problems} problems, ${metrics.tests} ${tests} tests: PR ${metrics.pass_rate.toFixed(2)}  AC ${metrics.accuracy.toFixed(2)}` +
      `${metrics.missing > 0 ? ` (${metrics.missing} without a program count 0)` : ""}; ${testsPerSecond} tests/s${metrics.sandboxed ? "" : " (UNSANDBOXED)"}\n`);
    if (out !== undefined) io.out(`results: ${path.join(out, "results.jsonl")}\n`);
    if (f.json === true) {
      io.out(`${JSON.stringify({ problems: metrics.problems, tests: metrics.tests, pass_rate: metrics.pass_rate, accuracy: metrics.accuracy, by_difficulty: metrics.by_difficulty, tests_per_second: testsPerSecond })}\n`);
    }
    return 0;
  },
};

function readResults(file: string): ProblemResult[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => (JSON.parse(l) as { output: ProblemResult }).output)
    .map((r) => ({ problem_id: r.problem_id, difficulty: r.difficulty, pass_fraction: r.pass_fraction, verdicts: r.verdicts, tests: r.tests }));
}

export default command;
