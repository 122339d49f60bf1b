/**
 * LDB-style execution feedback (Zhong et al. 2024, "Debug like a Human: A Large Language Model
 * Debugger via Verifying Runtime Execution Step by Step"): the program is split into basic
 * blocks, run under a tracer on ONE failing test, and the variable values at block boundaries
 * are reported - bounded in size - so that a model refining the program can see where
 * execution went wrong.
 *
 * The tracer (`block_trace.py`, next to this file) runs INSIDE the sandbox through
 * `Executor.runRaw`: the program is untrusted and never runs on the host here.
 */
import { readFileSync } from "node:fs";
import { DEFAULT_LIMITS, type Executor, type Limits, type RawResult, type TestCase } from "../types.ts";

/** A basic block: a maximal straight-line run of statements of one scope (see block_trace.py). */
export interface TraceBlock {
  readonly id: number;
  readonly startLine: number;
  readonly endLine: number;
  /** The source lines startLine..endLine. */
  readonly code: string;
  /** Enclosing function / class body, "<module>" at top level. */
  readonly func: string;
}

/** One visit of a block, in the order the visits began. */
export interface TraceEntry {
  readonly block: number;
  /** 1-based visit number of this block (over the whole run) and how many visits it had. */
  readonly visit: number;
  readonly totalVisits: number;
  readonly func: string;
  /** Number of traced program frames below this one (0: the module or the called entry point). */
  readonly depth: number;
  /** Block visits left out of the trace just before this one (loop summarising, size bounds). */
  readonly skippedBefore: number;
  /** Variables at block entry; present at frame entry (arguments) and after skipped visits. */
  readonly localsBefore?: Readonly<Record<string, string>>;
  /** Variables changed by the block (`name` or element-level `name[i]`), as bounded reprs. */
  readonly localsAfter: Readonly<Record<string, string>>;
  /** The frame returned (or yielded) this value when leaving this block. */
  readonly returned?: string;
  /** The frame was left by this exception during this block. */
  readonly raised?: string;
  /** The trace stopped (budget) before the block was left normally. */
  readonly incomplete?: boolean;
}

export interface TraceException {
  readonly type: string;
  readonly message: string;
  /** Line in the program (or in the test script / preamble, see `where`). */
  readonly line: number | null;
  readonly where: "program" | "test" | "preamble" | "harness";
}

export interface TraceStop {
  readonly reason: "steps" | "time";
  readonly steps: number;
  readonly line: number | null;
}

/** The tracer's structured result. */
export interface BlockTrace {
  readonly blocks: ReadonlyArray<TraceBlock>;
  readonly trace: ReadonlyArray<TraceEntry>;
  /** Some block visits were left out, or the run was stopped by a budget. */
  readonly truncated: boolean;
  readonly exception: TraceException | null;
  /** Set when the step or time budget stopped the program (likely an infinite loop). */
  readonly stopped: TraceStop | null;
  /** Argument of sys.exit / os._exit when the program called it. */
  readonly exitCode: number | string | null;
  /** The last bytes of the program's stdout, and how many it wrote in all. */
  readonly stdoutTail: string;
  readonly stdoutBytes: number;
  /** Call tests: repr of the returned value. */
  readonly returnedRepr: string | null;
  /** Line events traced. */
  readonly steps: number;
  readonly notes: ReadonlyArray<string>;
}

export interface BlockFeedback extends BlockTrace {
  /** The rendered, size-bounded report for a model. */
  readonly text: string;
  /** False when the tracer gave no result (killed by the sandbox, crashed); `error` says why. */
  readonly ok: boolean;
  readonly error?: string;
}

/** Bounds of the tracer (defaults in brackets). */
export interface BlockTraceOptions {
  /** Trace entries kept [50]. */
  readonly maxBlocks?: number;
  /** Characters per shown value [80]. */
  readonly maxValueChars?: number;
  /** Tail of the program's stdout kept [1000]. */
  readonly maxOutputBytes?: number;
  /** Line events before the program is stopped [200000]. */
  readonly maxSteps?: number;
  /** First / last visits kept per block [3 / 3]. */
  readonly keepFirst?: number;
  readonly keepLast?: number;
  /** Variables shown per snapshot [16]. */
  readonly maxVars?: number;
}

export interface BlockFeedbackArgs {
  readonly code: string;
  readonly test: TestCase;
  /** Prepended for call-based problems; run untraced in the program's namespace. */
  readonly preamble?: string;
  /** Sandbox limits for the whole traced run (DEFAULT_LIMITS for the rest). */
  readonly limits?: Partial<Limits>;
  /** Bound of `text` [4000]. */
  readonly maxChars?: number;
  readonly options?: BlockTraceOptions;
  readonly signal?: AbortSignal;
}

let scriptSource: string | undefined;

/** The source of block_trace.py (what runs in the sandbox). */
export function blockTraceScript(): string {
  scriptSource ??= readFileSync(new URL("./block_trace.py", import.meta.url), "utf8");
  return scriptSource;
}

/** The JSON request block_trace.py reads on stdin. */
export function blockTraceRequest(args: BlockFeedbackArgs, limits: Limits): Record<string, unknown> {
  const o = args.options ?? {};
  const t = args.test;
  const test =
    t.kind === "stdio"
      ? { kind: "stdio", input: t.input }
      : t.kind === "call"
        ? { kind: "call", fnName: t.fnName, args: t.args }
        : { kind: "script", code: t.code };
  const timeBudget = Math.max(100, Math.floor(limits.timeMs * 0.6));
  return {
    code: args.code,
    test,
    preamble: args.preamble ?? null,
    max_blocks: o.maxBlocks ?? 50,
    max_value_chars: o.maxValueChars ?? 80,
    max_output_bytes: o.maxOutputBytes ?? 1000,
    max_steps: o.maxSteps ?? 200_000,
    keep_first: o.keepFirst ?? 3,
    keep_last: o.keepLast ?? 3,
    max_vars: o.maxVars ?? 16,
    time_budget_ms: timeBudget,
    hard_deadline_ms: Math.max(timeBudget + 200, Math.floor(limits.timeMs * 0.85)),
    max_json_bytes: Math.max(16_384, Math.floor(limits.outputBytes * 0.8)),
  };
}

/**
 * Traces `code` on `test` in the sandbox and renders the report. Executor failures (a rejected
 * runRaw) propagate; a tracer that yields no result gives `ok: false` with an explanatory text.
 */
export async function blockFeedback(executor: Executor, args: BlockFeedbackArgs): Promise<BlockFeedback> {
  const limits: Limits = { ...DEFAULT_LIMITS, ...args.limits };
  const maxChars = args.maxChars ?? 4000;
  const request = blockTraceRequest(args, limits);
  const raw = await executor.runRaw(
    { script: blockTraceScript(), stdin: JSON.stringify(request), limits },
    args.signal,
  );
  const data = parseBlockTrace(raw.stdout);
  if (data === undefined) {
    const error = describeFailure(raw);
    const hangLine = lastProgramLine(raw.stderr);
    const empty: BlockTrace = {
      blocks: [],
      trace: [],
      truncated: true,
      exception: null,
      stopped: raw.timedOut || hangLine !== null ? { reason: "time", steps: 0, line: hangLine } : null,
      exitCode: null,
      stdoutTail: "",
      stdoutBytes: 0,
      returnedRepr: null,
      steps: 0,
      notes: [error],
    };
    let text = `Execution trace unavailable: ${error}.`;
    if (hangLine !== null) text += ` The program was still running at line ${hangLine} when it was stopped.`;
    return { ...empty, text: clip(text, maxChars), ok: false, error };
  }
  return { ...data, text: formatFeedback(data, maxChars, { test: args.test }), ok: true };
}

function describeFailure(raw: RawResult): string {
  if (raw.timedOut) return "the traced run exceeded the sandbox time limit";
  if (raw.outputTruncated) return "the tracer's output exceeded the sandbox output limit";
  if (raw.signal) return `the tracer was killed by ${raw.signal}`;
  const last = raw.stderr.trim().split("\n").slice(-1)[0] ?? "";
  return `the tracer failed (exit ${raw.exitCode ?? "?"})${last ? `: ${clip(last, 200)}` : ""}`;
}

/** The innermost `File "<program>", line N` of a faulthandler / traceback dump. */
function lastProgramLine(stderr: string): number | null {
  // faulthandler lists the most recent call first: the first match of the first thread.
  const m = /File "<program>", line (\d+)/.exec(stderr);
  return m ? Number(m[1]) : null;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const num = (v: unknown, d = 0): number => (typeof v === "number" && Number.isFinite(v) ? v : d);
const str = (v: unknown, d = ""): string => (typeof v === "string" ? v : d);
const strMap = (v: unknown): Record<string, string> => {
  const out: Record<string, string> = {};
  if (isObj(v)) for (const [k, x] of Object.entries(v)) out[k] = typeof x === "string" ? x : JSON.stringify(x);
  return out;
};

/** Parses block_trace.py's stdout; undefined when it is not the tracer's JSON. */
export function parseBlockTrace(stdout: string): BlockTrace | undefined {
  let j: unknown;
  try {
    j = JSON.parse(stdout);
  } catch {
    return undefined;
  }
  if (!isObj(j) || !Array.isArray(j.blocks) || !Array.isArray(j.trace)) return undefined;
  const blocks: TraceBlock[] = j.blocks.filter(isObj).map((b) => ({
    id: num(b.id),
    startLine: num(b.start_line),
    endLine: num(b.end_line),
    code: str(b.code),
    func: str(b.func, "<module>"),
  }));
  const trace: TraceEntry[] = j.trace.filter(isObj).map((t) => ({
    block: num(t.block),
    visit: num(t.visit, 1),
    totalVisits: num(t.total_visits, 1),
    func: str(t.func, "<module>"),
    depth: num(t.depth),
    skippedBefore: num(t.skipped_before),
    ...(isObj(t.locals_before) ? { localsBefore: strMap(t.locals_before) } : {}),
    localsAfter: strMap(t.locals_after),
    ...(typeof t.returned === "string" ? { returned: t.returned } : {}),
    ...(typeof t.raised === "string" ? { raised: t.raised } : {}),
    ...(t.incomplete === true ? { incomplete: true } : {}),
  }));
  const e = j.exception;
  const exception: TraceException | null = isObj(e)
    ? {
        type: str(e.type, "Exception"),
        message: str(e.message),
        line: typeof e.line === "number" ? e.line : null,
        where: (["program", "test", "preamble", "harness"] as const).find((w) => w === e.where) ?? "harness",
      }
    : null;
  const s = j.stopped;
  const stopped: TraceStop | null = isObj(s)
    ? { reason: s.reason === "steps" ? "steps" : "time", steps: num(s.steps), line: typeof s.line === "number" ? s.line : null }
    : null;
  return {
    blocks,
    trace,
    truncated: j.truncated === true,
    exception,
    stopped,
    exitCode: typeof j.exit_code === "number" || typeof j.exit_code === "string" ? j.exit_code : null,
    stdoutTail: str(j.stdout_tail),
    stdoutBytes: num(j.stdout_bytes),
    returnedRepr: typeof j.returned_repr === "string" ? j.returned_repr : null,
    steps: num(j.steps),
    notes: Array.isArray(j.notes) ? j.notes.filter((n): n is string => typeof n === "string") : [],
  };
}

// ---------------------------------------------------------------------------------------------
// Rendering.

function clip(s: string, n: number): string {
  if (n <= 0) return "";
  return s.length <= n ? s : s.slice(0, Math.max(0, n - 1)) + "\u2026";
}

const oneLine = (s: string, n: number) => clip(JSON.stringify(s), n);

function codeSnippet(code: string): string {
  const lines = code
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => "`" + clip(l, 60) + "`");
  if (lines.length <= 2) return lines.join("; ");
  return `${lines[0]} \u2026 ${lines[lines.length - 1]}`;
}

function vars(m: Readonly<Record<string, string>>): string {
  return Object.entries(m)
    .map(([k, v]) => (k === "\u2026" ? `\u2026${v}` : `${k}=${v}`))
    .join(", ");
}

function describeTest(test: TestCase): string[] {
  switch (test.kind) {
    case "stdio":
      return [`input: ${oneLine(test.input, 300)}`, `expected output: ${oneLine(test.output, 200)}`];
    case "call":
      return [
        `call: ${test.fnName}(${clip(test.args.map((a) => JSON.stringify(a)).join(", "), 300)})`,
        `expected: ${clip(JSON.stringify(test.expected) ?? "undefined", 200)}`,
      ];
    case "script":
      return [`test script: ${oneLine(test.code, 300)}`];
  }
}

/**
 * Renders a trace as a compact report of at most `maxChars` characters: one line per kept
 * block visit (`[block 3 in f] lines 6-8 (visit 1 of 5): `code` -> i=0, s=1`), markers for
 * skipped visits, then the exception / stop / output summary. When the trace lines do not
 * fit, the first and the last ones are kept and the middle is elided.
 */
export function formatFeedback(data: BlockTrace, maxChars = 4000, opts: { readonly test?: TestCase } = {}): string {
  const lineCap = Math.max(80, Math.floor(maxChars / 5));
  const blocks = new Map(data.blocks.map((b) => [b.id, b]));
  const head: string[] = ["Execution trace on the failing test (block = straight-line code; values are reprs):"];
  if (opts.test) head.push(...describeTest(opts.test).map((l) => clip(l, lineCap)));

  const items: string[][] = data.trace.map((t) => {
    const out: string[] = [];
    const indent = "  ".repeat(Math.min(t.depth, 8));
    if (t.skippedBefore > 0) {
      out.push(`${indent}... (${t.skippedBefore} block visit${t.skippedBefore === 1 ? "" : "s"} skipped) ...`);
    }
    const b = blocks.get(t.block);
    const where = t.func !== "<module>" ? ` in ${t.func}` : "";
    let s = `${indent}[block ${t.block}${where}]`;
    if (b) s += b.startLine === b.endLine ? ` line ${b.startLine}` : ` lines ${b.startLine}-${b.endLine}`;
    if (t.totalVisits > 1) s += ` (visit ${t.visit} of ${t.totalVisits})`;
    if (b) s += `: ${codeSnippet(b.code)}`;
    if (t.localsBefore && Object.keys(t.localsBefore).length > 0) s += ` | at entry: ${vars(t.localsBefore)}`;
    const changed = vars(t.localsAfter);
    s += t.incomplete ? ` -> (interrupted)${changed ? " " + changed : ""}` : ` -> ${changed || "(no change)"}`;
    if (t.returned !== undefined) s += `; returns ${t.returned}`;
    if (t.raised !== undefined) s += `; raised ${t.raised}`;
    out.push(clip(s, lineCap));
    return out;
  });
  if (data.trace.length === 0 && data.blocks.length > 0 && !data.exception) items.push(["(no block of the program ran)"]);

  const tail: string[] = [];
  const e = data.exception;
  if (e) {
    const at =
      e.line === null ? "" : e.where === "program" ? ` at line ${e.line}` : ` at ${e.where} line ${e.line}`;
    const lead = e.where === "test" ? "the test failed: " : e.where === "program" ? "" : `(${e.where}) `;
    tail.push(clip(`${lead}exception ${e.type}${at}: ${e.message}`, lineCap));
  }
  if (data.stopped) {
    const st = data.stopped;
    tail.push(
      clip(
        `trace stopped: ${st.reason === "steps" ? "step" : "time"} budget exhausted after ${st.steps} steps` +
          (st.line !== null ? ` (at line ${st.line})` : "") +
          " - the program may not terminate",
        lineCap,
      ),
    );
  }
  for (const n of data.notes) if (!/budget exhausted/.test(n)) tail.push(clip(`note: ${n}`, lineCap));
  if (data.exitCode !== null) tail.push(`the program called exit(${data.exitCode})`);
  if (data.returnedRepr !== null) tail.push(clip(`returned: ${data.returnedRepr}`, lineCap));
  if (data.stdoutBytes > 0) {
    const shown = Buffer.byteLength(data.stdoutTail, "utf8");
    const label = shown < data.stdoutBytes ? `stdout (last ${shown} of ${data.stdoutBytes} bytes)` : "stdout";
    tail.push(`${label}: ${oneLine(data.stdoutTail.slice(-300), 320)}`);
  } else if (opts.test?.kind === "stdio") {
    tail.push("stdout: (empty)");
  }

  const size = (ls: string[]) => ls.reduce((n, l) => n + l.length + 1, 0);
  const fixed = size(head) + size(tail);
  const total = items.reduce((n, it) => n + size(it), 0);
  let body: string[];
  if (fixed + total <= maxChars) {
    body = items.flat();
  } else {
    // Keep the first and the last visits (where it starts, where it goes wrong), elide the middle.
    let budget = maxChars - fixed - 60;
    const front: string[][] = [];
    const back: string[][] = [];
    let i = 0;
    let j = items.length - 1;
    let turn = 0;
    while (i <= j) {
      const next = turn % 3 === 0 ? items[i]! : items[j]!; // 1 : 2 in favour of the end
      const cost = size(next);
      if (cost > budget) break;
      budget -= cost;
      if (turn % 3 === 0) front.push(items[i++]!);
      else back.unshift(items[j--]!);
      turn++;
    }
    const omitted = j - i + 1;
    body = [...front.flat(), ...(omitted > 0 ? [`... (${omitted} more trace entries omitted to fit) ...`] : []), ...back.flat()];
  }
  return clip([...head, ...body, ...tail].join("\n"), maxChars);
}
