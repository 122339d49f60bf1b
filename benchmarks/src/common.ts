import * as path from "node:path";
import { fileURLToPath } from "node:url";
/**
 * Shared pieces of the benchmarks: command-line flags, statistics and the shape every
 * benchmark exports so that run-all.ts can run it.
 */
import { parseArgs } from "node:util";
import type { CausalLM, Composition, LoraAdapter } from "@bdc/lm-local";

/** What one benchmark returns to its caller (its own main, or run-all.ts). */
export interface BenchOutcome {
  /** Whether the benchmark met its target. */
  readonly pass: boolean;
  /** The human-readable report (table and PASS/FAIL line). */
  readonly text: string;
  /** The same results as plain JSON (printed with --json). */
  readonly json: unknown;
}

export interface Benchmark {
  readonly name: string;
  readonly description: string;
  run(flags: BenchFlags, log: (line: string) => void): Promise<BenchOutcome>;
}

/** Flags every benchmark understands; a benchmark uses its own default where one is unset. */
export interface BenchFlags {
  readonly items?: number;
  readonly reps?: number;
  readonly concurrency?: ReadonlyArray<number>;
  readonly json: boolean;
  readonly help: boolean;
}

export const FLAGS_HELP = `flags:
  --items N           items (plugin calls) per run
  --reps R            repetitions; the table shows medians
  --concurrency A,B   run.concurrency values of the kernel runs (kernel-overhead; default 1,8)
  --json              print the results as JSON instead of the table
  --help              this text`;

export function parseFlags(argv: ReadonlyArray<string>): BenchFlags {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      items: { type: "string" },
      reps: { type: "string" },
      concurrency: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const positiveInt = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
  return {
    ...(values.items === undefined ? {} : { items: positiveInt("items", values.items) }),
    ...(values.reps === undefined ? {} : { reps: positiveInt("reps", values.reps) }),
    ...(values.concurrency === undefined ? {} : { concurrency: values.concurrency.split(",").map((c) => positiveInt("concurrency", c.trim())) }),
    json: values.json === true,
    help: values.help === true,
  };
}

export function median(xs: ReadonlyArray<number>): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Stats {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly samples: ReadonlyArray<number>;
}

export function stats(samples: ReadonlyArray<number>): Stats {
  return { median: median(samples), min: Math.min(...samples), max: Math.max(...samples), samples: [...samples] };
}

/** Fixed-width text table; numbers are right-aligned, the first column left-aligned. */
export function table(header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export const fmt = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : "-");

/** Prints an outcome (table or JSON) and returns the exit code: 0 target met, 1 missed. */
export function printOutcome(flags: BenchFlags, outcome: BenchOutcome): number {
  process.stdout.write(`${flags.json ? JSON.stringify(outcome.json, null, 2) : outcome.text}\n`);
  return outcome.pass ? 0 : 1;
}

/** Runs `main` when the module is the script node started (not when run-all imports it); errors exit 2. */
export function runIfMain(moduleUrl: string, name: string, main: (argv: ReadonlyArray<string>) => Promise<number>): void {
  if (process.argv[1] === undefined || path.resolve(process.argv[1]) !== fileURLToPath(moduleUrl)) return;
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      // A BdcError is a message for the user (what and how to fix), not a crash: no stack.
      const hint = (e as { hint?: unknown }).hint;
      if (e instanceof Error && typeof hint === "string") process.stderr.write(`${name}: ${e.message}\n  hint: ${hint.split("\n").join("\n  ")}\n`);
      else process.stderr.write(`${name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 2;
    },
  );
}

/** Token ids from a fixed LCG: the same prompt on every side of a comparison. */
export function randomIds(n: number, vocab: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => (s = (s * 1103515245 + 12345) % 2 ** 31) % vocab);
}

/** The index of the largest of `n` values from `from` (a row of logits), relative to `from`. */
export function argmaxOf(row: Float32Array, from = 0, n = row.length): number {
  let best = from;
  for (let i = from + 1; i < from + n; i++) if (row[i]! > row[best]!) best = i;
  return best - from;
}

/**
 * One greedy generation of `tokens` tokens after `prompt` through the model's KV cache: the
 * seconds of the prompt's forward and of the one-token steps. The cache is released after.
 */
export async function timeGreedy(lm: CausalLM, prompt: ReadonlyArray<number>, tokens: number, adapter?: LoraAdapter | Composition): Promise<{ prefillSeconds: number; decodeSeconds: number }> {
  const t0 = performance.now();
  let step = await lm.forward({ ids: [prompt], adapter });
  const t1 = performance.now();
  for (let i = 0; i < tokens; i++) step = await lm.forward({ ids: [[argmaxOf(step.logits)]], past: step.cache, adapter });
  const t2 = performance.now();
  lm.releaseCache(step.cache);
  return { prefillSeconds: (t1 - t0) / 1000, decodeSeconds: (t2 - t1) / 1000 };
}
