import * as os from "node:os";
import { Schema } from "effect";
import { definePlugin, option, optional } from "@bdc/core";
import { blockFeedback, type BlockFeedback } from "./feedback/ldb.ts";
import { checkSandbox, createExecutor } from "./sandbox/executor.ts";
import { CALL_PREAMBLE, evaluateProgram, type Judging, type ProgramEvaluation } from "./scoring/evaluate-program.ts";
import { DEFAULT_LIMITS, type PublicProblem, type TestCase } from "./types.ts";

/** The reward signal: run a program on a problem's tests in the sandbox and judge it. */
export interface Reward {
  /** On the problem's public tests: the only tests search-time code can reach. */
  evaluate(problem: PublicProblem, code: string, signal?: AbortSignal): Promise<ProgramEvaluation>;
  /** On given tests (final scoring passes the hidden ones it obtained from the dataset). */
  evaluateOn(problem: PublicProblem, code: string, tests: ReadonlyArray<TestCase>, signal?: AbortSignal): Promise<ProgramEvaluation>;
  /** LDB-style block-level trace of the program on one (failing) test, for refinement prompts. */
  feedback(problem: PublicProblem, code: string, test: TestCase, maxChars?: number): Promise<BlockFeedback>;
  readonly sandboxed: boolean;
}

declare module "@bdc/core" {
  interface SlotTypes {
    reward: Reward;
  }
}

export default definePlugin({
  id: "reward/python",
  version: "0.1.0",
  description: "Runs Python programs on tests in a bubblewrap sandbox and judges them (APPS or strict comparison)",
  config: Schema.Struct({
    sandbox: option(Schema.Literal("bwrap", "none"), "bwrap", "bwrap: isolated (needs bubblewrap); none: runs untrusted code unisolated, with a warning on every run"),
    workers: optional(Schema.Int.pipe(Schema.positive()), "programs run at once (default: the number of CPUs)"),
    compare: option(Schema.Literal("apps", "strict"), "apps", "output comparison: the APPS reference cascade (comparable with published numbers) or strict tokens"),
    time_limit_ms: optional(Schema.Int.pipe(Schema.positive()), "per-test time limit, overriding the dataset's"),
    default_time_limit_ms: option(Schema.Int.pipe(Schema.positive()), DEFAULT_LIMITS.timeMs, "per-test time limit when the dataset has none"),
    memory_mb: option(Schema.Int.pipe(Schema.positive()), DEFAULT_LIMITS.memoryMb, "memory per test process, MiB"),
    output_bytes: option(Schema.Int.pipe(Schema.positive()), DEFAULT_LIMITS.outputBytes, "captured output per test, bytes"),
  }),
  preflight(config) {
    if (config.sandbox === "none") return [];
    const check = checkSandbox();
    return check.ok ? [] : [{ code: "BDC_SANDBOX_MISSING", path: ["sandbox"], message: check.message, hint: check.hint }];
  },
  make(config, _deps, kernel): Reward & { close(): Promise<void> } {
    const executor = createExecutor({
      sandbox: config.sandbox,
      workers: config.workers ?? os.availableParallelism(),
      onWarning: (message) => kernel.warn(message),
    });
    const judging: Judging = {
      executor,
      compare: config.compare,
      limits: { ...DEFAULT_LIMITS, timeMs: config.default_time_limit_ms, memoryMb: config.memory_mb, outputBytes: config.output_bytes },
      timeLimitMs: config.time_limit_ms,
    };
    return {
      sandboxed: executor.sandboxed,
      evaluate: (problem, code, signal) => evaluateProgram(judging, problem, code, problem.publicTests, signal),
      evaluateOn: (problem, code, tests, signal) => evaluateProgram(judging, problem, code, tests, signal),
      feedback: (problem, code, test, maxChars) =>
        blockFeedback(executor, { code, test, ...(problem.style === "call" ? { preamble: CALL_PREAMBLE } : {}), limits: judging.limits, ...(maxChars === undefined ? {} : { maxChars }) }),
      close: () => executor.close(),
    };
  },
});
