/**
 * Test doubles of the search: a scripted Policy (answers from a rule, counts and records every
 * call), a scripted Reward (pass rates from a table or a rule keyed by code; records every test
 * it is asked to run), and the default "chain" script used by the workflow tests.
 */
import type { ChatMessage, Completion, Policy, Sampling, Usage } from "@bdc/policy";
import type { ProgramEvaluation, PublicProblem, Reward, TestCase, Verdict } from "@bdc/reward-python";

export interface ScriptedCall {
  readonly prompt: string;
  readonly sampling?: Partial<Sampling> | undefined;
}

export type Script = (prompt: string, agent: string, sampling: Partial<Sampling> | undefined) => string;

const words = (s: string) => (s.match(/\S+/g) ?? []).length;

export class ScriptedPolicy implements Policy {
  readonly model = "scripted";
  readonly provider = "scripted";
  readonly calls: ScriptedCall[] = [];
  constructor(
    readonly name: string,
    private readonly script: Script,
    private readonly options: { cachedAfterFirst?: boolean } = {},
  ) {}
  async complete(messages: ReadonlyArray<ChatMessage>, options?: { readonly sampling?: Partial<Sampling>; readonly signal?: AbortSignal }): Promise<Completion> {
    options?.signal?.throwIfAborted();
    const prompt = messages.map((m) => m.content).join("\n");
    const seen = this.calls.some((c) => c.prompt === prompt && JSON.stringify(c.sampling) === JSON.stringify(options?.sampling));
    this.calls.push({ prompt, sampling: options?.sampling });
    const text = this.script(prompt, this.name, options?.sampling);
    return { text, inputTokens: words(prompt), outputTokens: words(text), cached: this.options.cachedAfterFirst === true && seen, latencyMs: 0, retries: 0, costUsd: 0, model: this.model };
  }
  usage(): Usage {
    return { calls: this.calls.length, cached: 0, failed: 0, retries: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0, latency_ms_total: 0 };
  }
}

export interface RewardCall {
  readonly op: "evaluate" | "evaluateOn" | "feedback";
  readonly code: string;
  readonly tests: ReadonlyArray<TestCase>;
}

export class ScriptedReward implements Reward {
  readonly sandboxed = false;
  readonly calls: RewardCall[] = [];
  constructor(
    /** Pass rate of a program (0..1), e.g. from a table keyed by code. */
    private readonly passRate: (code: string) => number,
    private readonly feedbackText = "trace: x = 1 at line 2",
    private readonly log?: (call: RewardCall) => void,
  ) {}
  private judge(code: string, tests: ReadonlyArray<TestCase>): ProgramEvaluation {
    const rate = this.passRate(code);
    const n = tests.length;
    const passed = Math.round(rate * n);
    const verdicts: Verdict[] = tests.map((_, i) => (i < passed ? "passed" : "wrong_answer"));
    return { passFraction: n === 0 ? 0 : rate, verdicts, tests: verdicts.map((verdict) => ({ verdict, timeMs: 1 })) };
  }
  private record(call: RewardCall): void {
    this.calls.push(call);
    this.log?.(call);
  }
  async evaluate(problem: PublicProblem, code: string): Promise<ProgramEvaluation> {
    this.record({ op: "evaluate", code, tests: problem.publicTests });
    return this.judge(code, problem.publicTests);
  }
  async evaluateOn(_problem: PublicProblem, code: string, tests: ReadonlyArray<TestCase>): Promise<ProgramEvaluation> {
    this.record({ op: "evaluateOn", code, tests });
    return this.judge(code, tests);
  }
  async feedback(_problem: PublicProblem, code: string, test: TestCase) {
    this.record({ op: "feedback", code, tests: [test] });
    return { text: this.feedbackText, ok: true, entries: [], truncated: false } as unknown as Awaited<ReturnType<Reward["feedback"]>>;
  }
}

/** The number of numbered thoughts in the "Reasoning..." section of a prompt. */
export function thoughtCount(prompt: string): number {
  const m = /Reasoning(?: so far)?:\n([\s\S]*?)(?:\n\n|$)/.exec(prompt);
  if (!m || m[1]!.trim() === "(none yet)") return 0;
  return m[1]!.split("\n").filter((l) => /^\d+\. /.test(l)).length;
}

/**
 * The "chain" script: expand -> `width` thoughts "<agent> step <d>.<k>"; code -> a program
 * printing the depth of the path; refine-summary -> a fixed diagnosis; regenerate -> a fixed
 * thought. With chainPassRate a path of depth 2 passes every public test.
 */
export const chainScript: Script = (prompt, agent, sampling) => {
  const d = thoughtCount(prompt);
  if (prompt.includes("propose the\nnext reasoning step") || prompt.includes("candidate next steps")) {
    const width = Number(/Give (\d+) different/.exec(prompt)?.[1] ?? 3);
    return Array.from({ length: width }, (_, k) => `Thought: ${agent} step ${d + 1}.${k}`).join("\n");
  }
  if (prompt.includes("what is wrong with the reasoning")) return `${agent}: the last step is wrong; use a loop.`;
  if (prompt.includes("Propose a corrected replacement")) return `Thought: ${agent} corrected step`;
  if (prompt.includes("Write a Python 3 program")) {
    return `Here it is:\n\`\`\`python\n# ${agent} seed=${sampling?.seed ?? 0}\nprint(${d})\n\`\`\``;
  }
  return "I do not know.";
};

/** Pass rate of a chain program: its printed depth / 2, capped at 1. */
export const chainPassRate = (code: string): number => Math.min(1, Number(/print\((\d+)\)/.exec(code)?.[1] ?? 0) / 2);
