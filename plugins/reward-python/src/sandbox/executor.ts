/**
 * The sandboxed Python executor: runs untrusted programs on tests, one sandbox per program.
 * See README.md beside this file for what each path (root, non-root, none) guarantees.
 *
 * Each `run()` starts ONE sandbox process that runs ALL tests of the program: `harness.py`
 * (passed with `python3 -I -S -c`) reads the request as JSON on stdin, compiles the program once,
 * and forks one child per test with per-test rlimits, streaming one JSON line per finished test
 * back (see harness.py). Starting a sandbox costs ~25-35 ms; a forked test ~1-2 ms plus the
 * program's own work.
 *
 * The pieces: command-line.ts (the tools, `checkSandbox`, the bwrap/setpriv/prlimit chain and why
 * it looks the way it does), sandbox-process.ts (one sandbox run: spawn, stream, watchdog, kill),
 * uids.ts (the per-worker uids as root, and the /proc bookkeeping). This file: the worker slots,
 * request validation, retries and blame when a sandbox dies, `describe()`.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import type { ExecRequest, ExecResult, ExecTest, Executor, Limits, RawRequest, RawResult } from "../types.ts";
import {
  checkSandbox,
  DEFAULT_PYTHON,
  harnessArgs,
  INSTALL_HINT,
  interpreterSysPath,
  isRoot,
  NONE_WARNING,
  sandboxArgv,
  tools,
  unsandboxedArgv,
  wallMs,
  type Tools,
} from "./command-line.ts";
import { emptyOutcome, PER_TEST_MARGIN_MS, startSandbox, STARTUP_GRACE_MS, type Running, type SandboxOutcome } from "./sandbox-process.ts";
import { kernelCountsProcessesPerUserns, pickUids, waitUidFree } from "./uids.ts";

export { checkSandbox, INSTALL_HINT, NONE_WARNING, wallMs } from "./command-line.ts";
export { processesOfUid } from "./uids.ts";

export type SandboxKind = "bwrap" | "none";

export interface ExecutorOptions {
  readonly sandbox: SandboxKind;
  /** Sandboxes running at once; default os.availableParallelism(). */
  readonly workers?: number;
  /** The interpreter; default /usr/bin/python3 (with bwrap it must live under /usr). */
  readonly python?: string;
  /** Where warnings go (sandbox "none"); default: stderr. */
  readonly onWarning?: (msg: string) => void;
  /** As root: first uid of the per-worker uids (uidBase .. uidBase+workers-1); default a random free block in 61000..93000. */
  readonly uidBase?: number;
}

/** What the running configuration guarantees, for logs and docs. */
export interface SandboxDescription {
  readonly sandbox: SandboxKind;
  readonly workers: number;
  readonly python: string;
  /** True when running as root: every worker drops to its own unprivileged uid (setpriv). */
  readonly privileged: boolean;
  /** The uids the sandboxes run as (one per worker as root; the user's own uid otherwise). */
  readonly uids: ReadonlyArray<number>;
  /** RLIMIT_NPROC is applied inside each sandbox (per-sandbox count). */
  readonly processLimit: "per-worker-uid" | "per-sandbox" | "none";
  readonly guarantees: ReadonlyArray<string>;
  readonly caveats: ReadonlyArray<string>;
}

export interface SandboxExecutor extends Executor {
  describe(): SandboxDescription;
}

/**
 * The executor. sandbox "bwrap" throws BDC_SANDBOX_MISSING (with the install hint) when
 * bubblewrap is missing or cannot start a sandbox; sandbox "none" warns (onWarning, default
 * stderr) every time an executor is created.
 */
export function createExecutor(options: ExecutorOptions): SandboxExecutor {
  if (options.sandbox === "bwrap") {
    const check = checkSandbox(options.python ?? DEFAULT_PYTHON);
    if (!check.ok) throw new BdcError({ code: "BDC_SANDBOX_MISSING", message: check.message, hint: check.hint });
  } else if (options.sandbox === "none") {
    const warn = options.onWarning ?? ((msg: string) => process.stderr.write(`warning: ${msg}\n`));
    warn(NONE_WARNING);
  } else {
    throw new BdcError({ code: "BDC_CONFIG_VALUE", message: `sandbox must be "bwrap" or "none", got ${JSON.stringify(options.sandbox)}`, hint: 'valid choices are "bwrap", "none"' });
  }
  return new SandboxExecutorImpl(options);
}

// ---------------------------------------------------------------------------------------------

interface Slot {
  /** Uid of this worker (root path), else undefined. */
  readonly uid: number | undefined;
  /** Set after a sandbox was killed: wait until the uid has no processes left before reusing it. */
  dirty: boolean;
}

class SandboxExecutorImpl implements SandboxExecutor {
  readonly sandboxed: boolean;
  private readonly workers: number;
  private readonly python: string;
  private readonly kind: SandboxKind;
  private readonly root: boolean;
  private readonly t: Tools;
  private readonly slots: Slot[];
  private readonly free: Slot[];
  private readonly waiters: Array<{ resolve: (s: Slot) => void; reject: (e: unknown) => void }> = [];
  private readonly running = new Set<Running>();
  private readonly innerNproc: boolean;
  private closed = false;

  constructor(options: ExecutorOptions) {
    this.kind = options.sandbox;
    this.sandboxed = options.sandbox === "bwrap";
    this.python = options.python ?? DEFAULT_PYTHON;
    const workers = options.workers ?? os.availableParallelism();
    if (!Number.isInteger(workers) || workers < 1) {
      throw new BdcError({ code: "BDC_CONFIG_VALUE", message: `workers must be a positive integer, got ${String(workers)}` });
    }
    this.workers = workers;
    this.root = isRoot();
    this.t = tools();
    this.innerNproc = this.sandboxed && (this.root || kernelCountsProcessesPerUserns());
    const uids = this.sandboxed && this.root ? pickUids(workers, options.uidBase) : undefined;
    this.slots = Array.from({ length: workers }, (_, index) => ({ uid: uids?.[index], dirty: false }));
    this.free = [...this.slots];
  }

  describe(): SandboxDescription {
    const uids = this.slots.map((s) => s.uid).filter((u): u is number => u !== undefined);
    const guarantees: string[] = [];
    const caveats: string[] = [];
    let processLimit: SandboxDescription["processLimit"] = "none";
    if (this.sandboxed) {
      guarantees.push(
        "no network (a new network namespace with only its own loopback)",
        "host files invisible: only /usr (read-only), a private /tmp (tmpBytes), /proc of the sandbox and minimal /dev",
        "no capabilities, no_new_privs, no nested user namespaces",
        "new PID namespace: the program sees and signals only its own sandbox; everything in it dies with the sandbox",
        "per test: CPU, address space, file size and open-file limits, wall-clock limit with SIGKILL of the process group",
      );
      if (this.root) {
        processLimit = "per-worker-uid";
        guarantees.push(`runs as unprivileged uid ${uids.join(", ")} (one per worker); RLIMIT_NPROC binds per worker and per sandbox`);
      } else if (this.innerNproc) {
        processLimit = "per-sandbox";
        guarantees.push("RLIMIT_NPROC set inside the sandbox's user namespace (counted per sandbox since Linux 5.14)");
        caveats.push(`not root: sandboxes run as your own uid (${process.getuid?.() ?? "?"}) mapped into a user namespace (no setpriv)`);
      } else {
        caveats.push(
          "not root and Linux < 5.14: no process-count limit (RLIMIT_NPROC would count all your processes); a fork bomb is contained only by the PID namespace and the time limits",
        );
      }
    } else {
      caveats.push(NONE_WARNING);
      caveats.push(this.root ? "RLIMIT_NPROC does not bind root: no process-count limit" : "no process-count limit (RLIMIT_NPROC would count all your processes)");
    }
    return { sandbox: this.kind, workers: this.workers, python: this.python, privileged: this.root, uids, processLimit, guarantees, caveats };
  }

  async run(request: ExecRequest, signal?: AbortSignal): Promise<ExecResult[]> {
    validateLimits(request.limits);
    const tests = request.tests.map(validateTest);
    if (typeof request.code !== "string") throw new BdcError({ code: "BDC_CONFIG_TYPE", message: "ExecRequest.code must be a string" });
    if (tests.length === 0) return [];
    const slot = await this.acquire(signal);
    try {
      const results = new Array<ExecResult | undefined>(tests.length);
      let pending = tests.map((_, i) => i);
      let infraFailures = 0;
      while (pending.length > 0) {
        const payload = {
          sysPath: this.sysPath(),
          mode: "tests",
          code: request.code,
          preamble: request.preamble ?? null,
          limits: request.limits,
          tests: pending.map((i) => tests[i]!),
          pidns: this.sandboxed,
          nproc: this.innerNproc ? Math.floor(request.limits.processes) + 2 : null,
        };
        const totalMs = STARTUP_GRACE_MS + pending.length * (wallMs(request.limits) + PER_TEST_MARGIN_MS);
        const out = await this.sandbox(slot, payload, request.limits, totalMs, pending.length, signal);
        if (out.ended === "abort") throw abortError(signal!);
        if (out.ended === "closed") throw closedError();
        if (!out.hello) {
          infraFailures++;
          if (infraFailures >= 2) throw sandboxFailed(out);
          continue;
        }
        if (out.compileError !== undefined || !out.compiled) {
          const error =
            out.compileError ?? `the program crashed the test harness while compiling${out.ended === "watchdog" ? " (timed out)" : ""}${tailOf(out.stderr)}`;
          for (const i of pending) results[i] = { status: "compile_error", timeMs: 0, stdout: "", error };
          break;
        }
        for (const r of out.results) {
          const { i, ...result } = r;
          results[pending[i]!] = result;
        }
        const got = out.results.length;
        if (got >= pending.length) break;
        // The sandbox ended before the last test: the test that was running gets the blame, the
        // rest run again in a fresh sandbox.
        const victim = pending[got]!;
        results[victim] =
          out.ended === "watchdog"
            ? { status: "time_limit", timeMs: wallMs(request.limits), stdout: "", error: "the test harness stopped responding while this test ran (sandbox killed by the host watchdog)" }
            : {
                status: "runtime_error",
                timeMs: 0,
                stdout: "",
                error: `the program killed the test harness (sandbox ended: ${out.signal ?? `exit ${out.exitCode}`}); the remaining tests ran in a fresh sandbox`,
              };
        pending = pending.slice(got + 1);
      }
      return results.map((r) => r!);
    } finally {
      this.release(slot);
    }
  }

  async runRaw(request: RawRequest, signal?: AbortSignal): Promise<RawResult> {
    validateLimits(request.limits);
    if (typeof request.script !== "string" || typeof request.stdin !== "string") {
      throw new BdcError({ code: "BDC_CONFIG_TYPE", message: "RawRequest.script and RawRequest.stdin must be strings" });
    }
    const scriptName = "_script.py";
    for (const [name, content] of Object.entries(request.files ?? {})) {
      if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/.test(name) || name === scriptName || typeof content !== "string") {
        throw new BdcError({
          code: "BDC_CONFIG_VALUE",
          message: `RawRequest.files: invalid file name ${JSON.stringify(name)} (plain names only, not ${scriptName}) or non-string content`,
        });
      }
    }
    const slot = await this.acquire(signal);
    try {
      for (let attempt = 0; ; attempt++) {
        const payload = {
          sysPath: this.sysPath(),
          mode: "raw",
          script: request.script,
          stdin: request.stdin,
          files: request.files ?? {},
          scriptName,
          python: this.python,
          limits: request.limits,
          pidns: this.sandboxed,
          nproc: this.innerNproc ? Math.floor(request.limits.processes) + 2 : null,
        };
        const out = await this.sandbox(slot, payload, request.limits, STARTUP_GRACE_MS + request.limits.timeMs + PER_TEST_MARGIN_MS, 0, signal, request.limits.timeMs);
        if (out.ended === "abort") throw abortError(signal!);
        if (out.ended === "closed") throw closedError();
        if (out.raw !== undefined) return out.raw;
        if (!out.hello) {
          if (attempt >= 1) throw sandboxFailed(out);
          continue;
        }
        return {
          exitCode: null,
          signal: "SIGKILL",
          stdout: "",
          stderr:
            out.ended === "watchdog"
              ? "the sandbox stopped responding and was killed by the host watchdog"
              : `the script killed the sandbox harness (sandbox ended: ${out.signal ?? `exit ${out.exitCode}`})`,
          timedOut: out.ended === "watchdog",
          outputTruncated: false,
        };
      }
    } finally {
      this.release(slot);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(closedError());
    const all = [...this.running];
    for (const r of all) r.kill("closed");
    await Promise.allSettled(all.map((r) => r.finished));
  }

  // -------------------------------------------------------------------------------------------

  /** The interpreter's sys.path with `site` (the harness runs with -S and sets it from this). */
  private sysPath(): ReadonlyArray<string> | null {
    return interpreterSysPath(this.python);
  }

  private acquire(signal: AbortSignal | undefined): Promise<Slot> {
    if (this.closed) return Promise.reject(closedError());
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const slot = this.free.pop();
    if (slot !== undefined) return Promise.resolve(slot);
    return new Promise<Slot>((resolve, reject) => {
      const onAbort = (): void => {
        const k = this.waiters.indexOf(waiter);
        if (k >= 0) this.waiters.splice(k, 1);
        reject(abortError(signal!));
      };
      const waiter = {
        resolve: (s: Slot) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(s);
        },
        reject: (e: unknown) => {
          signal?.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private release(slot: Slot): void {
    const next = this.waiters.shift();
    if (next !== undefined) next.resolve(slot);
    else this.free.push(slot);
  }

  /** Runs one sandbox to its end; never rejects (failures are in the outcome). */
  private async sandbox(
    slot: Slot,
    payload: Record<string, unknown>,
    limits: Limits,
    totalMs: number,
    testCount: number,
    signal: AbortSignal | undefined,
    rawWallMs?: number,
  ): Promise<SandboxOutcome> {
    if (slot.dirty && slot.uid !== undefined) {
      await waitUidFree(slot.uid, 3_000);
      slot.dirty = false;
    }
    if (this.closed) return emptyOutcome("closed");
    if (signal?.aborted) return emptyOutcome("abort");
    let cwd = "/";
    let tmpDir: string | undefined;
    let argv: string[];
    let env: NodeJS.ProcessEnv = { PATH: "/usr/bin:/bin" };
    if (this.sandboxed) {
      argv = sandboxArgv(this.t, { uid: slot.uid, limits, totalMs, python: this.python, nproc: true }, harnessArgs());
    } else {
      tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-exec-"));
      cwd = tmpDir;
      env = { PATH: "/usr/bin:/bin", HOME: tmpDir, LANG: "C.UTF-8" };
      argv = unsandboxedArgv(this.t, limits, totalMs, this.python, harnessArgs());
    }
    try {
      const running = startSandbox({ argv, cwd, env, sandboxed: this.sandboxed, payload, limits, testCount, rawWallMs, signal });
      this.running.add(running);
      try {
        const out = await running.finished;
        if (out.ended !== "exit" && slot.uid !== undefined) slot.dirty = true;
        return out;
      } finally {
        this.running.delete(running);
      }
    } finally {
      if (tmpDir !== undefined) fs.rmSync(tmpDir, { recursive: true, force: true, maxRetries: 3 });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Errors and request validation.

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

const tailOf = (stderr: string): string => {
  const t = stderr.trim();
  return t === "" ? "" : `\n${t.split("\n").slice(-5).join("\n")}`;
};

function closedError(): BdcError {
  return new BdcError({ code: "BDC_SANDBOX_FAILED", message: "the executor is closed" });
}

function sandboxFailed(out: SandboxOutcome): BdcError {
  return new BdcError({
    code: "BDC_SANDBOX_FAILED",
    message: `the sandbox failed to start twice (${out.ended === "spawn" ? "spawn failed" : (out.signal ?? `exit ${out.exitCode}`)})${tailOf(out.stderr)}`,
    hint: INSTALL_HINT,
  });
}

function validateLimits(limits: Limits): void {
  const keys: ReadonlyArray<keyof Limits> = ["timeMs", "memoryMb", "outputBytes", "fileSizeBytes", "tmpBytes", "processes", "openFiles"];
  for (const k of keys) {
    const v = limits?.[k];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      throw new BdcError({ code: "BDC_CONFIG_VALUE", message: `limits.${k} must be a positive number, got ${JSON.stringify(v)}` });
    }
  }
}

function validateTest(t: ExecTest, i: number): ExecTest {
  const bad = (what: string): never => {
    throw new BdcError({ code: "BDC_CONFIG_VALUE", message: `tests[${i}]: ${what}` });
  };
  switch (t?.kind) {
    case "stdio":
      if (typeof t.input !== "string") bad("stdio test needs a string input");
      return { kind: "stdio", input: t.input };
    case "call":
      if (typeof t.fnName !== "string" || !Array.isArray(t.args)) bad("call test needs fnName (string) and args (array)");
      return { kind: "call", fnName: t.fnName, args: t.args };
    case "script":
      if (typeof t.code !== "string") bad("script test needs code (string)");
      return { kind: "script", code: t.code };
    default:
      return bad(`unknown test kind ${JSON.stringify((t as { kind?: unknown } | undefined)?.kind)}`);
  }
}
