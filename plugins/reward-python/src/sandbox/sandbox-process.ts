/**
 * One sandbox run: spawn the command line, send the request, collect the streamed lines of
 * harness.py (hello, compiled, one "r" per test, raw, done) under a host watchdog, and kill the
 * sandbox on a protocol violation, a stall, an abort or close.
 */
import { spawn } from "node:child_process";
import type { ExecResult, ExecStatus, Limits, RawResult } from "../types.ts";
import { wallMs } from "./command-line.ts";
import { killDescendants } from "./uids.ts";

/** Time the host allows the sandbox to start and compile before the first test's own budget. */
export const STARTUP_GRACE_MS = 5_000;
/** Extra time per test on the host side (killing strays, draining pipes, scheduling). */
export const PER_TEST_MARGIN_MS = 1_500;
const STDERR_KEEP = 8_192;

export interface ResultLine extends ExecResult {
  readonly i: number;
}

export interface SandboxOutcome {
  hello: boolean;
  compiled: boolean;
  compileError: string | undefined;
  results: ResultLine[];
  raw: RawResult | undefined;
  /** Why the sandbox ended early, if it did. */
  ended: "exit" | "watchdog" | "abort" | "protocol" | "closed" | "spawn";
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

export interface Running {
  kill(reason: SandboxOutcome["ended"]): void;
  /** Never rejects: failures are in the outcome. */
  readonly finished: Promise<SandboxOutcome>;
}

export interface SandboxSpawn {
  readonly argv: ReadonlyArray<string>;
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  /** Whether argv is a bwrap sandbox (the harness is then a grandchild: see `kill`). */
  readonly sandboxed: boolean;
  /** The request, sent as JSON on stdin. */
  readonly payload: Record<string, unknown>;
  readonly limits: Limits;
  /** Tests in the request (0: raw mode); the harness must report exactly that many. */
  readonly testCount: number;
  /** Raw mode: the script's wall limit, instead of the per-test one. */
  readonly rawWallMs: number | undefined;
  readonly signal: AbortSignal | undefined;
}

export function emptyOutcome(ended: SandboxOutcome["ended"]): SandboxOutcome {
  return { hello: false, compiled: false, compileError: undefined, results: [], raw: undefined, ended, exitCode: null, signal: null, stderr: "" };
}

export function startSandbox(spec: SandboxSpawn): Running {
  const { argv, limits, testCount, rawWallMs, signal } = spec;
  const out = emptyOutcome("exit");
  const child = spawn(argv[0]!, argv.slice(1), { cwd: spec.cwd, env: spec.env, stdio: ["pipe", "pipe", "pipe"], detached: true });
  let endReason: SandboxOutcome["ended"] | undefined;
  let timer: NodeJS.Timeout | undefined;
  let exited = false;
  const killGroup = (): void => {
    if (child.pid === undefined || exited) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
    }
  };
  // Kill the harness (and, without bwrap, what it started) rather than the whole chain: the
  // outer bwrap and `timeout` then reap their children and exit normally, leaving no zombies
  // for the host's init to collect (which some container inits do slowly or never).
  const kill = (reason: SandboxOutcome["ended"]): void => {
    endReason ??= reason;
    if (child.pid === undefined || exited) return;
    const killed = killDescendants(child.pid, spec.sandboxed ? 2 : 1);
    if (killed === 0) killGroup();
    else setTimeout(killGroup, 1_000).unref();
  };
  // Host watchdog: the next line must come within the current test's budget.
  const perTest = rawWallMs !== undefined ? rawWallMs + PER_TEST_MARGIN_MS : wallMs(limits) + PER_TEST_MARGIN_MS;
  const arm = (ms: number): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => kill("watchdog"), ms);
  };
  arm(STARTUP_GRACE_MS + perTest);
  const onAbort = (): void => kill("abort");
  signal?.addEventListener("abort", onAbort, { once: true });

  const maxLine = 20 * limits.outputBytes + (1 << 20);
  let partial: Buffer[] = [];
  let partialLen = 0;
  const onLine = (line: string): void => {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      kill("protocol");
      return;
    }
    switch (msg.t) {
      case "hello":
        out.hello = true;
        break;
      case "compiled":
        if (typeof msg.error === "string") out.compileError = msg.error;
        else out.compiled = true;
        arm(perTest);
        break;
      case "r": {
        const r = toResult(msg, out.results.length);
        if (r === undefined) {
          kill("protocol");
          return;
        }
        out.results.push(r);
        arm(perTest);
        break;
      }
      case "raw":
        out.raw = toRaw(msg);
        break;
      case "done":
        if (testCount > 0 && out.results.length !== testCount && out.compileError === undefined) kill("protocol");
        break;
      default:
        kill("protocol");
    }
  };
  child.stdout!.on("data", (chunk: Buffer) => {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      partial.push(chunk.subarray(start, nl));
      const line = Buffer.concat(partial).toString("utf8");
      partial = [];
      partialLen = 0;
      start = nl + 1;
      onLine(line);
    }
    if (start < chunk.length) {
      partial.push(chunk.subarray(start));
      partialLen += chunk.length - start;
      if (partialLen > maxLine) {
        partial = [];
        partialLen = 0;
        kill("protocol");
      }
    }
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
    if (stderr.length > 2 * STDERR_KEEP) stderr = stderr.slice(-STDERR_KEEP);
  });
  child.stdin!.on("error", () => {
    // the sandbox exited before reading everything: reported through its exit
  });
  child.stdin!.end(JSON.stringify(spec.payload));

  const finished = new Promise<SandboxOutcome>((resolve) => {
    let settled = false;
    const finish = (code: number | null, sig: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      out.exitCode = code;
      out.signal = sig;
      out.stderr = stderr.slice(-STDERR_KEEP);
      out.ended = endReason ?? "exit";
      resolve(out);
    };
    child.on("error", (e) => {
      stderr += `\n${e.message}`;
      endReason ??= "spawn";
      finish(null, null);
    });
    child.on("close", (code, sig) => finish(code, sig));
    // 'close' waits for the pipes; a process that kept them open cannot hold us longer than this.
    child.on("exit", (code, sig) => {
      exited = true;
      setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish(code, sig);
      }, 2_000).unref();
    });
  });
  return { kill, finished };
}

// ---------------------------------------------------------------------------------------------
// The harness's lines, checked.

const STATUSES = new Set<ExecStatus>(["ok", "time_limit", "memory_limit", "runtime_error", "compile_error", "output_limit"]);

function toResult(msg: Record<string, unknown>, expectIndex: number): ResultLine | undefined {
  const status = msg.status as ExecStatus;
  if (msg.i !== expectIndex || !STATUSES.has(status) || typeof msg.timeMs !== "number" || typeof msg.stdout !== "string") return undefined;
  return {
    i: expectIndex,
    status,
    timeMs: msg.timeMs,
    stdout: msg.stdout,
    ...("returned" in msg ? { returned: msg.returned } : {}),
    ...(typeof msg.returnedRepr === "string" ? { returnedRepr: msg.returnedRepr } : {}),
    ...(typeof msg.error === "string" ? { error: msg.error } : {}),
  };
}

function toRaw(msg: Record<string, unknown>): RawResult {
  return {
    exitCode: typeof msg.exitCode === "number" ? msg.exitCode : null,
    signal: typeof msg.signal === "string" ? msg.signal : null,
    stdout: typeof msg.stdout === "string" ? msg.stdout : "",
    stderr: typeof msg.stderr === "string" ? msg.stderr : "",
    timedOut: msg.timedOut === true,
    outputTruncated: msg.outputTruncated === true,
  };
}
