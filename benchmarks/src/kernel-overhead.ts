/**
 * Kernel overhead per executed plugin call.
 *
 * A tree search calls plugins many times; the kernel's share of each call (scheduling, the
 * item.done event in events.jsonl, the output line in outputs.jsonl) must stay far below the
 * cost of models and code execution. Target: well under 1 ms per call.
 *
 *   reference       the noop step's run(item, ctx) called directly in a loop over the dataset's
 *                   items, outputs collected in memory: the work itself, without the kernel
 *   kernel c=K      the same plugins through the real kernel (loadWorkflow, PluginRegistry,
 *                   resolveWorkflow, runWorkflow) into a fresh run directory, run.concurrency K
 *   resume          runWorkflow({resume: true}) on the finished run directory: every item skipped
 *
 * overhead per call = (median kernel time - median reference time) / items. Setup (load,
 * discover, resolve) happens once per run, not per call, and is reported on its own line.
 *
 *   pnpm exec tsx benchmarks/src/kernel-overhead.ts [--items 20000] [--reps 5] [--concurrency 1,8] [--json]
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  loadWorkflow,
  PluginRegistry,
  resolveWorkflow,
  runWorkflow,
  RUN_FILES,
  type DatasetImpl,
  type KernelServices,
  type StepContext,
  type StepImpl,
} from "@bdc/core";
import { FLAGS_HELP, fmt, parseFlags, stats, table, type Benchmark, type BenchOutcome, type Stats, printOutcome, runIfMain } from "./common.ts";
import noopPlugin from "./plugins/noop-step.ts";
import rangePlugin from "./plugins/range-dataset.ts";

export const TARGET_US_PER_CALL = 1000;
export const DEFAULTS = { items: 20_000, reps: 5, concurrency: [1, 8] } as const;

const PLUGIN_DIR = path.join(import.meta.dirname, "plugins");
const STEP = "noop";

export interface KernelOverheadOptions {
  readonly items?: number;
  readonly reps?: number;
  /** run.concurrency of the kernel runs; the resume run reuses the first one's run directory. */
  readonly concurrency?: ReadonlyArray<number>;
  /** One untimed round with min(items, 1000) items first (module loading, JIT). Default true. */
  readonly warmup?: boolean;
  /** Where the temporary workflow files and run directories go (default: the OS temp dir). */
  readonly tmpDir?: string;
  /** Called after each timed kernel or resume run, before its run directory is deleted. */
  readonly onRunDir?: (run: { readonly mode: string; readonly rep: number; readonly dir: string }) => void;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

export interface KernelModeResult {
  readonly mode: string;
  readonly concurrency: number;
  /** Time of runWorkflow, ms. */
  readonly ms: Stats;
  readonly usPerItem: number;
  /** (median kernel ms - median reference ms) / items, in µs. */
  readonly overheadUsPerCall: number;
  /** median kernel ms / median reference ms. */
  readonly ratio: number;
  /** Lines of outputs.jsonl after each repetition. */
  readonly persisted: ReadonlyArray<number>;
}

export interface KernelOverheadResult {
  readonly benchmark: "kernel-overhead";
  readonly items: number;
  readonly reps: number;
  readonly env: { readonly node: string; readonly platform: string; readonly arch: string; readonly cpus: number; readonly cpu: string };
  /** loadWorkflow + PluginRegistry.discover + resolveWorkflow, once per kernel run, ms. */
  readonly setupMs: Stats;
  readonly reference: { readonly ms: Stats; readonly usPerItem: number };
  readonly kernel: ReadonlyArray<KernelModeResult>;
  readonly resume: {
    readonly concurrency: number;
    readonly ms: Stats;
    /** median resume ms / items, in µs: the cost of skipping one finished item. */
    readonly usPerItem: number;
    /** `resumed` of the step summary after each repetition (must equal items). */
    readonly resumed: ReadonlyArray<number>;
  };
  readonly targetUsPerCall: number;
  /** The largest overheadUsPerCall of the kernel modes. */
  readonly worstOverheadUsPerCall: number;
  readonly pass: boolean;
}

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

/** The work itself: the dataset's items through run(item, ctx), outputs kept in memory. */
async function referenceRun(items: number): Promise<{ ms: number; outputs: number }> {
  const controller = new AbortController();
  const kernel: KernelServices = {
    instance: "bench",
    baseDir: PLUGIN_DIR,
    runDir: undefined,
    emit: () => {},
    log: () => {},
    warn: () => {},
    signal: controller.signal,
  };
  const ctx: StepContext = {
    step: STEP,
    signal: controller.signal,
    dir: os.tmpdir(),
    emit: () => {},
    log: () => {},
    outputs: () => [],
  };
  gc();
  const t0 = performance.now();
  const dataset = (await rangePlugin.make({ n: items }, {}, kernel)) as DatasetImpl;
  const step = (await noopPlugin.make({}, {}, kernel)) as StepImpl;
  const outputs: unknown[] = [];
  for await (const item of await dataset.items(controller.signal)) outputs.push(await step.run(item, ctx));
  const ms = performance.now() - t0;
  return { ms, outputs: outputs.length };
}

function workflowYaml(items: number, concurrency: number): string {
  // Absolute `use:` paths: relative ones resolve from the YAML file's directory (a temp dir).
  const q = (s: string) => JSON.stringify(s);
  return [
    "name: kernel-overhead",
    `run: { concurrency: ${concurrency}, on_error: continue }`,
    "plugins:",
    `  items: { use: ${q(path.join(PLUGIN_DIR, "range-dataset.ts"))}, with: { n: ${items} } }`,
    `  ${STEP}: { use: ${q(path.join(PLUGIN_DIR, "noop-step.ts"))} }`,
    "steps:",
    `  ${STEP}: { for_each: items }`,
    "",
  ].join("\n");
}

const countLines = (file: string): number => {
  if (!fs.existsSync(file)) return 0;
  const buf = fs.readFileSync(file);
  let n = 0;
  for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, i + 1)) n++;
  return n;
};

interface KernelSample {
  readonly setupMs: number;
  readonly runMs: number;
  readonly persisted: number;
}

async function kernelRun(work: string, items: number, concurrency: number, dir: string): Promise<KernelSample> {
  const file = path.join(work, `workflow-c${concurrency}.yaml`);
  fs.writeFileSync(file, workflowYaml(items, concurrency));
  const t0 = performance.now();
  const loaded = loadWorkflow({ file, cwd: work });
  const registry = PluginRegistry.discover(import.meta.dirname);
  const workflow = await resolveWorkflow(loaded, { registry, preflight: true });
  const setupMs = performance.now() - t0;
  gc();
  const t1 = performance.now();
  const outcome = await runWorkflow({ workflow, dir });
  const runMs = performance.now() - t1;
  const step = outcome.summary.steps[STEP];
  if (outcome.status !== "succeeded" || step?.done !== items) {
    throw new Error(`kernel run (c=${concurrency}) in ${dir}: status ${outcome.status}, ${step?.done ?? 0}/${items} done`);
  }
  return { setupMs, runMs, persisted: countLines(path.join(dir, "steps", STEP, RUN_FILES.outputs)) };
}

async function resumeRun(work: string, items: number, concurrency: number, dir: string): Promise<{ ms: number; resumed: number }> {
  const loaded = loadWorkflow({ file: path.join(work, `workflow-c${concurrency}.yaml`), cwd: work });
  const workflow = await resolveWorkflow(loaded, { registry: PluginRegistry.discover(import.meta.dirname) });
  const before = countLines(path.join(dir, "steps", STEP, RUN_FILES.outputs));
  gc();
  const t0 = performance.now();
  const outcome = await runWorkflow({ workflow, dir, resume: true });
  const ms = performance.now() - t0;
  const step = outcome.summary.steps[STEP];
  const after = countLines(path.join(dir, "steps", STEP, RUN_FILES.outputs));
  if (outcome.status !== "succeeded" || step?.resumed !== items || after !== before) {
    throw new Error(`resume run in ${dir}: status ${outcome.status}, ${step?.resumed ?? 0}/${items} resumed, outputs ${before} -> ${after} lines`);
  }
  return { ms, resumed: step.resumed };
}

/** One round: reference, then each concurrency, the resume run after the first one. */
async function round(
  work: string,
  items: number,
  concurrency: ReadonlyArray<number>,
  rep: number,
  onRunDir: KernelOverheadOptions["onRunDir"],
): Promise<{ refMs: number; kernel: KernelSample[]; resume: { ms: number; resumed: number } }> {
  const ref = await referenceRun(items);
  if (ref.outputs !== items) throw new Error(`reference run produced ${ref.outputs}/${items} outputs`);
  const kernel: KernelSample[] = [];
  let resume: { ms: number; resumed: number } | undefined;
  for (const [i, c] of concurrency.entries()) {
    const dir = path.join(work, `run-${rep}-c${c}`);
    try {
      kernel.push(await kernelRun(work, items, c, dir));
      onRunDir?.({ mode: `kernel c=${c}`, rep, dir });
      if (i === 0) {
        resume = await resumeRun(work, items, c, dir);
        onRunDir?.({ mode: "resume", rep, dir });
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return { refMs: ref.ms, kernel, resume: resume! };
}

export async function benchKernelOverhead(options: KernelOverheadOptions = {}): Promise<KernelOverheadResult> {
  const items = options.items ?? DEFAULTS.items;
  const reps = options.reps ?? DEFAULTS.reps;
  const concurrency = [...(options.concurrency ?? DEFAULTS.concurrency)];
  if (concurrency.length === 0) throw new Error("at least one concurrency value is needed");
  const log = options.log ?? (() => {});
  const parent = options.tmpDir ?? os.tmpdir();
  fs.mkdirSync(parent, { recursive: true });
  const work = fs.mkdtempSync(path.join(parent, "bdc-bench-kernel-"));
  try {
    if (options.warmup !== false) {
      const n = Math.min(items, 1000);
      log(`warm-up: ${n} items`);
      await round(work, n, concurrency, -1, undefined);
    }
    const refMs: number[] = [];
    const setupMs: number[] = [];
    const kernelMs = concurrency.map(() => [] as number[]);
    const persisted = concurrency.map(() => [] as number[]);
    const resumeMs: number[] = [];
    const resumed: number[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const r = await round(work, items, concurrency, rep, options.onRunDir);
      refMs.push(r.refMs);
      r.kernel.forEach((k, i) => {
        setupMs.push(k.setupMs);
        kernelMs[i]!.push(k.runMs);
        persisted[i]!.push(k.persisted);
      });
      resumeMs.push(r.resume.ms);
      resumed.push(r.resume.resumed);
      log(
        `rep ${rep + 1}/${reps}: reference ${fmt(r.refMs)} ms, ` +
          r.kernel.map((k, i) => `c=${concurrency[i]} ${fmt(k.runMs)} ms`).join(", ") +
          `, resume ${fmt(r.resume.ms)} ms`,
      );
    }
    const ref = stats(refMs);
    const kernel: KernelModeResult[] = concurrency.map((c, i) => {
      const ms = stats(kernelMs[i]!);
      return {
        mode: `kernel c=${c}`,
        concurrency: c,
        ms,
        usPerItem: (ms.median / items) * 1000,
        overheadUsPerCall: ((ms.median - ref.median) / items) * 1000,
        ratio: ms.median / ref.median,
        persisted: persisted[i]!,
      };
    });
    const resume = stats(resumeMs);
    const worst = Math.max(...kernel.map((k) => k.overheadUsPerCall));
    const cpus = os.cpus();
    return {
      benchmark: "kernel-overhead",
      items,
      reps,
      env: { node: process.version, platform: process.platform, arch: process.arch, cpus: cpus.length, cpu: cpus[0]?.model.trim() ?? "unknown" },
      setupMs: stats(setupMs),
      reference: { ms: ref, usPerItem: (ref.median / items) * 1000 },
      kernel,
      resume: { concurrency: concurrency[0]!, ms: resume, usPerItem: (resume.median / items) * 1000, resumed },
      targetUsPerCall: TARGET_US_PER_CALL,
      worstOverheadUsPerCall: worst,
      pass: Number.isFinite(worst) && worst < TARGET_US_PER_CALL,
    };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export function formatKernelOverhead(r: KernelOverheadResult): string {
  const range = (s: Stats) => `${fmt(s.min)}-${fmt(s.max)}`;
  const rows = [
    ["reference (direct run)", fmt(r.reference.ms.median), range(r.reference.ms), fmt(r.reference.usPerItem, 3), "-", "1.0"],
    ...r.kernel.map((k) => [k.mode, fmt(k.ms.median), range(k.ms), fmt(k.usPerItem, 3), fmt(k.overheadUsPerCall, 3), fmt(k.ratio, 1)]),
    [`resume c=${r.resume.concurrency} (all skipped)`, fmt(r.resume.ms.median), range(r.resume.ms), fmt(r.resume.usPerItem, 3), "-", "-"],
  ];
  const worstMode = r.kernel.reduce((a, b) => (b.overheadUsPerCall > a.overheadUsPerCall ? b : a));
  return [
    `kernel-overhead: ${r.items} items x ${r.reps} reps, medians (node ${r.env.node}, ${r.env.platform}/${r.env.arch}, ${r.env.cpus} CPUs: ${r.env.cpu})`,
    "",
    table(["mode", "median ms", "min-max ms", "µs/item", "overhead µs/call", "x reference"], rows),
    "",
    `setup per run (loadWorkflow + discover + resolveWorkflow): ${fmt(r.setupMs.median)} ms median (once per run, not per call)`,
    `${r.pass ? "PASS" : "FAIL"}: kernel overhead ${fmt(r.worstOverheadUsPerCall, 1)} µs/call (worst: ${worstMode.mode}) ${r.pass ? "<" : ">="} ${r.targetUsPerCall} µs/call target`,
  ].join("\n");
}

export const kernelOverhead: Benchmark = {
  name: "kernel-overhead",
  description: "kernel time per executed plugin call (scheduling, events.jsonl, outputs.jsonl) and per resumed item",
  async run(flags, log): Promise<BenchOutcome> {
    const result = await benchKernelOverhead({
      ...(flags.items === undefined ? {} : { items: flags.items }),
      ...(flags.reps === undefined ? {} : { reps: flags.reps }),
      ...(flags.concurrency === undefined ? {} : { concurrency: flags.concurrency }),
      log,
    });
    return { pass: result.pass, text: formatKernelOverhead(result), json: result };
  },
};

async function main(argv: ReadonlyArray<string>): Promise<number> {
  const flags = parseFlags(argv);
  if (flags.help) {
    process.stdout.write(`usage: pnpm exec tsx benchmarks/src/kernel-overhead.ts [flags]\n${kernelOverhead.description}\n\n${FLAGS_HELP}\n`);
    return 0;
  }
  const outcome = await kernelOverhead.run(flags, (line) => process.stderr.write(`${line}\n`));
  return printOutcome(flags, outcome);
}

runIfMain(import.meta.url, "kernel-overhead", main);
