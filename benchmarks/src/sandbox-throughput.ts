/**
 * Throughput of the sandboxed Python executor on real APPS problems.
 *
 * For each problem of the APPS sample (../shared/data/apps-train-sample.jsonl, override with
 * --data) the FIRST reference solution runs on ALL of its tests:
 *
 *   executor bwrap w=K   @bdc/reward-python's executor (bubblewrap, K workers; default K = CPUs):
 *                        one sandbox per program, all its tests forked inside it; every problem
 *                        submitted at once, the pool queues them
 *   bare serial          `/usr/bin/python3 solution.py < input`, one subprocess per test, one at a
 *                        time (call-based problems: a tiny driver script calls the function)
 *   bare 2 workers       the same with 2 subprocesses at a time
 *
 * tests/s = tests / wall time of the whole set; medians over --reps. Target: the executor above
 * 77 tests/s (the authors' unsandboxed harness on this set, 2 cores). The status counts (and how
 * many outputs match the bare run's byte for byte) show that the programs really ran.
 *
 *   pnpm exec tsx benchmarks/src/sandbox-throughput.ts [--data FILE] [--items N problems] [--reps 3] [--concurrency K1,K2 executor workers] [--json]
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { checkSandbox, createExecutor, DEFAULT_LIMITS, type ExecRequest, type ExecTest, type Limits } from "@bdc/reward-python";
import { FLAGS_HELP, fmt, parseFlags, stats, table, type Benchmark, type BenchFlags, type BenchOutcome, type Stats, printOutcome, runIfMain } from "./common.ts";

export const TARGET_TESTS_PER_S = 77;
export const DEFAULT_DATA = path.resolve(import.meta.dirname, "../..", "../shared/data/apps-train-sample.jsonl");
export const PYTHON = "/usr/bin/python3";
export const PREAMBLE = "from typing import *\nimport collections, math, heapq, bisect, itertools, functools, re, string, sys";
const LIMITS: Limits = DEFAULT_LIMITS;
const BARE_WALL_MS = 2 * LIMITS.timeMs + 500;
const OUTPUT_CAP = LIMITS.outputBytes;

export interface Problem {
  readonly id: string;
  readonly solution: string;
  /** Set for call-based problems. */
  readonly fnName?: string;
  readonly inputs: ReadonlyArray<unknown>;
}

/** Problems with a reference solution and tests, in file order. */
export function loadProblems(file: string, max?: number): Problem[] {
  const out: Problem[] = [];
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const row = JSON.parse(line) as { problem_id: number | string; solutions?: string; input_output?: string };
    if (!row.solutions || !row.input_output) continue;
    const solutions = JSON.parse(row.solutions) as string[];
    const io = JSON.parse(row.input_output) as { inputs?: unknown[]; fn_name?: string };
    if (solutions.length === 0 || !io.inputs || io.inputs.length === 0) continue;
    out.push({ id: String(row.problem_id), solution: solutions[0]!, ...(io.fn_name ? { fnName: io.fn_name } : {}), inputs: io.inputs });
    if (max !== undefined && out.length >= max) break;
  }
  return out;
}

const stdinText = (input: unknown): string => (typeof input === "string" ? input : Array.isArray(input) ? input.join("\n") : String(input));

function request(p: Problem): ExecRequest {
  const tests: ExecTest[] = p.inputs.map((input) =>
    p.fnName !== undefined ? { kind: "call", fnName: p.fnName, args: Array.isArray(input) ? input : [input] } : { kind: "stdio", input: stdinText(input) },
  );
  return { code: p.solution, tests, limits: LIMITS, ...(p.fnName !== undefined ? { preamble: PREAMBLE } : {}) };
}

/** What one test produced, for the counts: "ok" or a failure kind, and the output to compare. */
interface TestOutput {
  readonly status: string;
  readonly out: string;
}

interface Round {
  readonly ms: number;
  readonly outputs: TestOutput[][];
}

async function executorRound(problems: ReadonlyArray<Problem>, workers: number): Promise<Round> {
  const ex = createExecutor({ sandbox: "bwrap", workers });
  try {
    const t0 = performance.now();
    const results = await Promise.all(problems.map((p) => ex.run(request(p))));
    const ms = performance.now() - t0;
    const outputs = results.map((rs) => rs.map((r) => ({ status: r.status, out: r.returnedRepr ?? r.stdout })));
    return { ms, outputs };
  } finally {
    await ex.close();
  }
}

const DRIVER = `import sys, json
ns = {"__name__": "solution"}
exec(${JSON.stringify(PREAMBLE)}, ns)
exec(compile(open(sys.argv[1]).read(), sys.argv[1], "exec"), ns)
name = sys.argv[2]
f = ns.get(name)
if f is None or isinstance(f, type):
    f = getattr(ns["Solution"](), name)
print(repr(f(*json.loads(sys.stdin.read()))), end="")
`;

/** One subprocess: stdin -> stdout (capped), killed at the wall limit. */
function bareTest(args: string[], stdin: string, cwd: string): Promise<TestOutput> {
  return new Promise((resolve) => {
    const child = spawn(PYTHON, args, { cwd, stdio: ["pipe", "pipe", "ignore"], env: { PATH: "/usr/bin:/bin", HOME: cwd, LANG: "C.UTF-8" } });
    const chunks: Buffer[] = [];
    let size = 0;
    let status = "ok";
    const timer = setTimeout(() => {
      status = "time_limit";
      child.kill("SIGKILL");
    }, BARE_WALL_MS);
    child.stdout.on("data", (c: Buffer) => {
      size += c.length;
      if (size > OUTPUT_CAP) {
        status = "output_limit";
        child.kill("SIGKILL");
      } else chunks.push(c);
    });
    child.stdin.on("error", () => {});
    child.stdin.end(stdin);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (status === "ok" && code !== 0) status = "runtime_error";
      resolve({ status, out: Buffer.concat(chunks).toString("utf8") });
    });
  });
}

async function bareRound(problems: ReadonlyArray<Problem>, work: string, parallel: number): Promise<Round> {
  const jobs: Array<{ p: number; t: number; args: string[]; stdin: string }> = [];
  problems.forEach((p, pi) => {
    const file = path.join(work, `sol_${pi}.py`);
    fs.writeFileSync(file, p.solution);
    p.inputs.forEach((input, ti) => {
      if (p.fnName !== undefined) {
        jobs.push({ p: pi, t: ti, args: [path.join(work, "driver.py"), file, p.fnName], stdin: JSON.stringify(Array.isArray(input) ? input : [input]) });
      } else jobs.push({ p: pi, t: ti, args: [file], stdin: stdinText(input) });
    });
  });
  fs.writeFileSync(path.join(work, "driver.py"), DRIVER);
  const outputs: TestOutput[][] = problems.map((p) => new Array<TestOutput>(p.inputs.length));
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < jobs.length) {
        const job = jobs[next++]!;
        outputs[job.p]![job.t] = await bareTest(job.args, job.stdin, work);
      }
    }),
  );
  return { ms: performance.now() - t0, outputs };
}

export interface ModeResult {
  readonly mode: string;
  readonly ms: Stats;
  readonly testsPerS: number;
  /** Status counts of the last repetition. */
  readonly statuses: Readonly<Record<string, number>>;
}

export interface SandboxThroughputResult {
  readonly benchmark: "sandbox-throughput";
  readonly data: string;
  readonly skipped?: string;
  readonly problems: number;
  readonly callProblems: number;
  readonly tests: number;
  readonly reps: number;
  readonly env: { readonly node: string; readonly cpus: number; readonly cpu: string; readonly python: string };
  readonly executor: ReadonlyArray<ModeResult>;
  readonly bare: ReadonlyArray<ModeResult>;
  /** Outputs of the best executor mode equal to the bare serial run's (stdout or repr), of all tests. */
  readonly sameOutput: number;
  /** Best executor tests/s over bare tests/s (serial, 2 workers). */
  readonly ratio: { readonly serial: number; readonly parallel2: number };
  readonly targetTestsPerS: number;
  readonly pass: boolean;
}

export interface SandboxThroughputOptions {
  readonly data?: string;
  readonly items?: number;
  readonly reps?: number;
  readonly workers?: ReadonlyArray<number>;
  readonly log?: (line: string) => void;
}

const countStatuses = (outputs: TestOutput[][]): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const o of outputs.flat()) counts[o.status] = (counts[o.status] ?? 0) + 1;
  return counts;
};

export async function benchSandboxThroughput(options: SandboxThroughputOptions = {}): Promise<SandboxThroughputResult> {
  const data = options.data ?? DEFAULT_DATA;
  const reps = options.reps ?? 3;
  const workers = [...(options.workers ?? [os.availableParallelism()])];
  const log = options.log ?? (() => {});
  const cpus = os.cpus();
  const base = {
    benchmark: "sandbox-throughput" as const,
    data,
    reps,
    env: { node: process.version, cpus: cpus.length, cpu: cpus[0]?.model.trim() ?? "unknown", python: PYTHON },
    targetTestsPerS: TARGET_TESTS_PER_S,
  };
  const skip = (why: string): SandboxThroughputResult => ({
    ...base,
    skipped: why,
    problems: 0,
    callProblems: 0,
    tests: 0,
    executor: [],
    bare: [],
    sameOutput: 0,
    ratio: { serial: Number.NaN, parallel2: Number.NaN },
    pass: true,
  });
  if (!fs.existsSync(data)) return skip(`data file not found: ${data} (pass --data FILE)`);
  const check = checkSandbox();
  if (!check.ok) return skip(`bubblewrap unavailable: ${check.message}`);
  const problems = loadProblems(data, options.items);
  const tests = problems.reduce((n, p) => n + p.inputs.length, 0);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-bench-sandbox-"));
  try {
    log(`${problems.length} problems, ${tests} tests; warm-up`);
    await executorRound(problems.slice(0, 10), workers[0]!);
    await bareRound(problems.slice(0, 10), work, 2);
    const exMs = workers.map(() => [] as number[]);
    const exLast: Round[] = [];
    const bareModes = [1, 2];
    const bareMs = bareModes.map(() => [] as number[]);
    const bareLast: Round[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const parts: string[] = [];
      for (const [i, w] of workers.entries()) {
        const r = await executorRound(problems, w);
        exMs[i]!.push(r.ms);
        exLast[i] = r;
        parts.push(`executor w=${w} ${fmt(r.ms, 0)} ms`);
      }
      for (const [i, k] of bareModes.entries()) {
        const r = await bareRound(problems, work, k);
        bareMs[i]!.push(r.ms);
        bareLast[i] = r;
        parts.push(`bare x${k} ${fmt(r.ms, 0)} ms`);
      }
      log(`rep ${rep + 1}/${reps}: ${parts.join(", ")}`);
    }
    const mode = (name: string, ms: number[], last: Round): ModeResult => {
      const s = stats(ms);
      return { mode: name, ms: s, testsPerS: (tests / s.median) * 1000, statuses: countStatuses(last.outputs) };
    };
    const executor = workers.map((w, i) => mode(`executor bwrap w=${w}`, exMs[i]!, exLast[i]!));
    const bare = bareModes.map((k, i) => mode(k === 1 ? "bare serial" : `bare ${k} workers`, bareMs[i]!, bareLast[i]!));
    const bestIdx = executor.reduce((b, m, i) => (m.testsPerS > executor[b]!.testsPerS ? i : b), 0);
    const best = executor[bestIdx]!;
    const exOut = exLast[bestIdx]!.outputs.flat();
    const bareOut = bareLast[0]!.outputs.flat();
    const sameOutput = exOut.filter((o, i) => o.out === bareOut[i]!.out).length;
    return {
      ...base,
      problems: problems.length,
      callProblems: problems.filter((p) => p.fnName !== undefined).length,
      tests,
      executor,
      bare,
      sameOutput,
      ratio: { serial: best.testsPerS / bare[0]!.testsPerS, parallel2: best.testsPerS / bare[1]!.testsPerS },
      pass: best.testsPerS > TARGET_TESTS_PER_S,
    };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export function formatSandboxThroughput(r: SandboxThroughputResult): string {
  if (r.skipped !== undefined) return `sandbox-throughput: SKIPPED: ${r.skipped}`;
  const counts = (c: Readonly<Record<string, number>>) =>
    Object.entries(c)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
  const row = (m: ModeResult) => [m.mode, fmt(m.testsPerS, 1), fmt(m.ms.median / 1000), `${fmt(m.ms.min / 1000)}-${fmt(m.ms.max / 1000)}`, counts(m.statuses)];
  const best = Math.max(...r.executor.map((m) => m.testsPerS));
  return [
    `sandbox-throughput: ${r.problems} APPS problems (${r.callProblems} call-based), ${r.tests} tests, first reference solution each, ${r.reps} reps, medians (node ${r.env.node}, ${r.env.cpus} CPUs: ${r.env.cpu})`,
    "",
    table(["mode", "tests/s", "median s", "min-max s", "statuses (last rep)"], [...r.executor.map(row), ...r.bare.map(row)]),
    "",
    `executor / bare serial: ${fmt(r.ratio.serial)}x, executor / bare 2 workers: ${fmt(r.ratio.parallel2)}x; outputs identical to the bare run: ${r.sameOutput}/${r.tests}`,
    `${r.pass ? "PASS" : "FAIL"}: executor ${fmt(best, 1)} tests/s ${r.pass ? ">" : "<="} ${r.targetTestsPerS} tests/s target`,
  ].join("\n");
}

/** Runs as part of `pnpm bench` with the default data path; --items limits the problems, --concurrency sets the executor's worker counts. */
export const sandboxThroughput: Benchmark = {
  name: "sandbox-throughput",
  description: "tests/s of the bubblewrap Python executor on the APPS sample vs one bare python3 per test",
  async run(flags: BenchFlags, log): Promise<BenchOutcome> {
    return runWith(flags, undefined, log);
  },
};

async function runWith(flags: BenchFlags, data: string | undefined, log: (line: string) => void): Promise<BenchOutcome> {
  const result = await benchSandboxThroughput({
    ...(data === undefined ? {} : { data }),
    ...(flags.items === undefined ? {} : { items: flags.items }),
    ...(flags.reps === undefined ? {} : { reps: flags.reps }),
    ...(flags.concurrency === undefined ? {} : { workers: flags.concurrency }),
    log,
  });
  return { pass: result.pass, text: formatSandboxThroughput(result), json: result };
}

async function main(argv: ReadonlyArray<string>): Promise<number> {
  // --data is this benchmark's own flag; the rest are the common ones.
  const rest = [...argv];
  let data: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === "--data" || a.startsWith("--data=")) {
      data = a === "--data" ? rest[i + 1] : a.slice("--data=".length);
      if (data === undefined || data === "") throw new Error("--data needs a file");
      rest.splice(i, a === "--data" ? 2 : 1);
      i--;
    }
  }
  const flags = parseFlags(rest);
  if (flags.help) {
    process.stdout.write(
      `usage: pnpm exec tsx benchmarks/src/sandbox-throughput.ts [--data FILE] [flags]\n${sandboxThroughput.description}\n\n  --data FILE         the APPS jsonl (default ${DEFAULT_DATA})\n${FLAGS_HELP}\n  (--items: number of problems; --concurrency: executor worker counts, default the CPU count)\n`,
    );
    return 0;
  }
  const outcome = await runWith(flags, data === undefined ? undefined : path.resolve(data), (line) => process.stderr.write(`${line}\n`));
  return printOutcome(flags, outcome);
}

runIfMain(import.meta.url, "sandbox-throughput", main);
