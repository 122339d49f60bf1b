/**
 * The shared vocabulary of code evaluation: problems and their tests, execution requests and
 * results, verdicts. Every module of this package speaks these types.
 *
 * Public vs hidden tests: search-time code sees a `PublicProblem` (what datasets yield as
 * items). Hidden tests are not a field of it; they are reachable only through a
 * `HiddenTestSource` handle, which only scoring code is given.
 */

/** One test of a program. */
export type TestCase =
  /** Standard input -> expected standard output (APPS, CodeContests). */
  | { readonly kind: "stdio"; readonly input: string; readonly output: string }
  /**
   * Call-based (APPS `fn_name`, LeetCode style): call `fnName(*args)` - a top-level function,
   * or a method of `class Solution` - and compare the returned value with `expected`.
   */
  | { readonly kind: "call"; readonly fnName: string; readonly args: ReadonlyArray<unknown>; readonly expected: unknown }
  /** An assertion script run after the program in the same namespace (HumanEval `check`, MBPP asserts); passes when it raises nothing. */
  | { readonly kind: "script"; readonly code: string };

export type Difficulty = string;

/** What search-time code may see of a problem. */
export interface PublicProblem {
  readonly id: string;
  readonly source: "apps" | "codecontests" | "humaneval" | "mbpp" | (string & {});
  /** "introductory" | "interview" | "competition" (APPS), "easy" | "hard" (CodeContests), ... */
  readonly difficulty: Difficulty;
  readonly statement: string;
  /** Code the solution must start from (APPS starter code, HumanEval prompt). */
  readonly starterCode?: string;
  /** The function or `Solution` method call-based tests call. */
  readonly fnName?: string;
  readonly style: "stdio" | "call" | "script";
  /** Tests search may run (rewards, refinement feedback). */
  readonly publicTests: ReadonlyArray<TestCase>;
  /** Per-test time limit from the dataset, when it has one. */
  readonly timeLimitMs?: number;
  readonly memoryLimitMb?: number;
  /** How the public tests were obtained (e.g. "first-half", "statement-examples"), for the record. */
  readonly split: string;
}

/** The hidden half: given only to final scoring. */
export interface HiddenTestSource {
  hiddenTests(problemId: string): Promise<ReadonlyArray<TestCase>>;
  /** The dataset's own reference solutions (for `bdc evaluate --reference`). */
  references(problemId: string): Promise<ReadonlyArray<string>>;
}

export type Verdict =
  | "passed"
  | "wrong_answer"
  | "time_limit"
  | "memory_limit"
  | "runtime_error"
  | "compile_error"
  | "output_limit";

// ---------------------------------------------------------------------------------------------
// Execution (sandbox) - runs code, does not judge it.

export interface Limits {
  /** CPU and wall time per test, milliseconds (wall is a small multiple of it). */
  readonly timeMs: number;
  /** Address-space limit per test process, MiB. */
  readonly memoryMb: number;
  /** Captured stdout (and the JSON of a returned value) per test, bytes; beyond is output_limit. */
  readonly outputBytes: number;
  /** Largest file the program may write (in its private /tmp), bytes. */
  readonly fileSizeBytes: number;
  /** Size of the private /tmp, bytes. */
  readonly tmpBytes: number;
  readonly processes: number;
  readonly openFiles: number;
}

export const DEFAULT_LIMITS: Limits = {
  timeMs: 4_000,
  memoryMb: 1_024,
  outputBytes: 1 << 20,
  fileSizeBytes: 16 << 20,
  tmpBytes: 32 << 20,
  processes: 32,
  openFiles: 64,
};

/** What the executor runs: a program and the tests to run it on (no expected outputs needed). */
export interface ExecRequest {
  readonly code: string;
  readonly tests: ReadonlyArray<ExecTest>;
  readonly limits: Limits;
  /** Prepended to the program for call-based problems (`from typing import *` ...). */
  readonly preamble?: string;
}

export type ExecTest =
  | { readonly kind: "stdio"; readonly input: string }
  | { readonly kind: "call"; readonly fnName: string; readonly args: ReadonlyArray<unknown> }
  | { readonly kind: "script"; readonly code: string };

export type ExecStatus = "ok" | "time_limit" | "memory_limit" | "runtime_error" | "compile_error" | "output_limit";

export interface ExecResult {
  readonly status: ExecStatus;
  readonly timeMs: number;
  /** Captured standard output (stdio tests), up to the limit. */
  readonly stdout: string;
  /** Call-based: the returned value as JSON (tuples become lists); absent if not JSON-representable. */
  readonly returned?: unknown;
  /** Call-based: repr() of the returned value, always present for call tests that returned. */
  readonly returnedRepr?: string;
  /** Last lines of the traceback (runtime/compile errors), or what the limit was. */
  readonly error?: string;
}

/** A whole Python script run once in the sandbox (for tools such as the block tracer). */
export interface RawRequest {
  readonly script: string;
  readonly stdin: string;
  /** Extra files placed next to the script in the sandbox's /tmp (name -> content). */
  readonly files?: Readonly<Record<string, string>>;
  readonly limits: Limits;
}

export interface RawResult {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  readonly outputTruncated: boolean;
}

export interface Executor {
  /** Runs every test of the request; one result per test, in order. */
  run(request: ExecRequest, signal?: AbortSignal): Promise<ExecResult[]>;
  /** Runs one script with the same isolation and limits (time limit = limits.timeMs in total). */
  runRaw(request: RawRequest, signal?: AbortSignal): Promise<RawResult>;
  /** True when programs run inside the sandbox. */
  readonly sandboxed: boolean;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Judging.

/** Which rule accepted an output (per-test details report it). */
export type CompareStage =
  | "exact"
  | "lines"
  | "lines-stripped"
  | "floats"
  | "token-sets" // the APPS cascade's last, lenient stage (accepts some wrong outputs)
  | "strict-tokens"
  | "call-equal"
  | "call-first-element"
  | "script";

export interface TestOutcome {
  readonly verdict: Verdict;
  readonly timeMs: number;
  /** For passed tests: the comparison stage that accepted the output. */
  readonly stage?: CompareStage;
  readonly error?: string;
}

