/**
 * Runs one program on a set of tests and judges it: the reward signal of every BDC stage.
 */
import { judgeProgram } from "../judge/judge.ts";
import type { ExecRequest, Executor, Limits, PublicProblem, TestCase, TestOutcome, Verdict } from "../types.ts";

/** What the APPS harness and the peer code put in front of call-based programs. */
export const CALL_PREAMBLE = [
  "import sys, math, heapq, bisect, itertools, functools, collections, string, re, random, operator",
  "from typing import *",
  "from collections import *",
  "from functools import *",
  "from itertools import *",
  "from heapq import *",
  "from bisect import *",
  "from math import *",
].join("\n");

export interface Judging {
  readonly executor: Executor;
  readonly compare: "apps" | "strict";
  readonly limits: Limits;
  /** Overrides the dataset's per-test time limit when set. */
  readonly timeLimitMs?: number | undefined;
}

export interface ProgramEvaluation {
  readonly passFraction: number;
  readonly verdicts: ReadonlyArray<Verdict>;
  readonly tests: ReadonlyArray<TestOutcome>;
}

type ProblemShape = Pick<PublicProblem, "style" | "timeLimitMs" | "memoryLimitMb">;

export async function evaluateProgram(judging: Judging, problem: ProblemShape, code: string, tests: ReadonlyArray<TestCase>, signal?: AbortSignal): Promise<ProgramEvaluation> {
  if (tests.length === 0) return { passFraction: 0, verdicts: [], tests: [] };
  const limits: Limits = {
    ...judging.limits,
    timeMs: judging.timeLimitMs ?? problem.timeLimitMs ?? judging.limits.timeMs,
    memoryMb: problem.memoryLimitMb ?? judging.limits.memoryMb,
  };
  const request: ExecRequest = {
    code,
    limits,
    tests: tests.map((t) => (t.kind === "stdio" ? { kind: "stdio", input: t.input } : t.kind === "call" ? { kind: "call", fnName: t.fnName, args: t.args } : { kind: "script", code: t.code })),
    ...(problem.style === "call" ? { preamble: CALL_PREAMBLE } : {}),
  };
  const results = await judging.executor.run(request, signal);
  const judged = judgeProgram([...tests], results, judging.compare);
  return { passFraction: judged.passFraction, verdicts: judged.verdicts, tests: judged.outcomes };
}
