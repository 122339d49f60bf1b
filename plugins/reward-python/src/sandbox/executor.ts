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
 * The sandbox ("bwrap"), as root: the verified chain of ARCHITECTURE.md, hardened:
 *
 *   timeout -s KILL T  setpriv --reuid=U --regid=U --clear-groups --no-new-privs --inh-caps=-all
 *   --bounding-set=-all  prlimit --as --cpu --fsize --nofile --nproc --core=0
 *   bwrap --unshare-all --unshare-user --disable-userns --die-with-parent --new-session --as-pid-1
 *   --cap-drop ALL --ro-bind /usr /usr (+ /lib /lib64 /bin symlinks) --proc /proc --dev /dev
 *   --size 1MiB --tmpfs /dev/shm --remount-ro /dev --size tmpBytes --tmpfs /tmp --remount-ro /
 *   --chdir /tmp --clearenv --setenv PATH /usr/bin --setenv HOME /tmp --setenv LANG C.UTF-8
 *   /usr/bin/python3 -I -S -c HARNESS
 *
 * - U is a distinct unprivileged uid per worker (per executor a random free block in
 *   61000..93000, or `uidBase`), so RLIMIT_NPROC binds per worker and concurrent executors (test
 *   files, processes) do not share uids.
 * - `--remount-ro /` and `--remount-ro /dev` (+ a 1 MiB /dev/shm) are additions to the verified
 *   chain: without them the sandbox's root and /dev are writable tmpfs WITHOUT a size limit, i.e.
 *   a program could fill the host's memory by writing files outside /tmp (measured).
 * - `--as-pid-1` is an addition too: the harness is the init of the sandbox's PID namespace.
 *   Processes inside cannot kill or stop an init (the kernel drops their signals unless it has a
 *   handler, and it has none), and bwrap reaps it itself; without it every sandbox left a zombie
 *   bwrap process re-parented to the host's init (reaped ~1.5 s later here, never by some
 *   container inits) and counting against the worker uid's RLIMIT_NPROC.
 * - The harness also sets RLIMIT_NPROC itself inside the sandbox's user namespace. Since Linux
 *   5.14 the kernel counts processes per (user namespace, uid), so that limit binds per sandbox
 *   even where the uid is shared (the non-root path relies on it).
 *
 * Not running as root (process.getuid() !== 0) there is no other uid to switch to: setpriv is
 * skipped (bwrap's user namespace maps the user's own uid; bwrap drops all capabilities and sets
 * no_new_privs itself) and prlimit gets no --nproc, because outside the sandbox RLIMIT_NPROC
 * counts ALL of that user's processes. What that path does not guarantee: on kernels older than
 * 5.14 the in-sandbox RLIMIT_NPROC is not set at all (it would count the user's other processes),
 * so a fork bomb is then contained only by the PID namespace, the per-test wall limit and the
 * kill of the whole sandbox, not by a process count; and all sandboxes of one user share its uid
 * (they still cannot see or signal each other: separate PID namespaces). `describe()` lists what
 * the running configuration guarantees.
 *
 * sandbox "none" runs the same harness directly (`prlimit ... python3 -I -S -c HARNESS` in a
 * fresh temporary directory, clean environment): rlimits and time limits only, NO isolation.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { randomInt } from "node:crypto";
import { BdcError } from "@bdc/core";
import type { ExecRequest, ExecResult, ExecStatus, ExecTest, Executor, Limits, RawRequest, RawResult } from "../types.ts";

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

export const INSTALL_HINT =
  "install bubblewrap: `sudo apt-get install -y bubblewrap` (setpriv and prlimit come with util-linux, timeout with coreutils). " +
  "If bwrap is installed but cannot create a sandbox, unprivileged user namespaces are off: " +
  "`sudo sysctl -w kernel.unprivileged_userns_clone=1` (Debian) or `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu 24.04). " +
  'On a machine where running untrusted code unisolated is acceptable, `sandbox: "none"` works without it.';

export const NONE_WARNING =
  'sandbox "none": untrusted generated code runs WITHOUT isolation (no bubblewrap): it can read and write your files, ' +
  "reach the network and signal your processes; only rlimits (CPU, memory, file size) and time limits apply. " +
  'Use sandbox "bwrap" for anything you do not trust (`sudo apt-get install -y bubblewrap`).';

/** Per-test wall-clock limit the harness enforces: 2x the CPU limit + 0.5 s. */
export const wallMs = (limits: Limits): number => 2 * limits.timeMs + 500;

const DEFAULT_PYTHON = "/usr/bin/python3";
/** Time the host allows the sandbox to start and compile before the first test's own budget. */
const STARTUP_GRACE_MS = 5_000;
/** Extra time per test on the host side (killing strays, draining pipes, scheduling). */
const PER_TEST_MARGIN_MS = 1_500;
const STDERR_KEEP = 8_192;
const UID_LOW = 61_000;
const UID_HIGH = 93_000;

// ---------------------------------------------------------------------------------------------
// Tools and the sandbox check.

interface Tools {
  readonly bwrap?: string;
  readonly setpriv?: string;
  readonly prlimit?: string;
  readonly timeout?: string;
}

function isExecutableFile(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function findTool(name: string): string | undefined {
  const dirs = ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin", ...(process.env.PATH ?? "").split(":").filter((d) => d.startsWith("/"))];
  return dirs.map((dir) => path.join(dir, name)).find(isExecutableFile);
}

let toolsCache: Tools | undefined;
/** The tools, found once per process; `BDC_BWRAP` names the bwrap binary explicitly (e.g. one under /opt). */
function tools(): Tools {
  const bwrapEnv = process.env.BDC_BWRAP;
  toolsCache ??= {
    ...optional("bwrap", bwrapEnv !== undefined && bwrapEnv !== "" ? (isExecutableFile(bwrapEnv) ? bwrapEnv : undefined) : findTool("bwrap")),
    ...optional("setpriv", findTool("setpriv")),
    ...optional("prlimit", findTool("prlimit")),
    ...optional("timeout", findTool("timeout")),
  };
  return toolsCache;
}
const optional = <K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } => (v === undefined ? {} : ({ [k]: v } as { [P in K]?: V }));

const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0;

/** Kernel >= 5.14 counts RLIMIT_NPROC per user namespace (ucounts). */
function kernelCountsProcessesPerUserns(): boolean {
  const m = /^(\d+)\.(\d+)/.exec(os.release());
  if (m === null) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > 5 || (major === 5 && minor >= 14);
}

const checkCache = new Map<string, { ok: true }>();

/**
 * Whether bubblewrap (and setpriv, prlimit, timeout) are present and a sandbox actually starts:
 * runs `python3 -I -c "print('ok')"` through the full chain once (cached after success).
 */
export function checkSandbox(python: string = DEFAULT_PYTHON): { ok: true } | { ok: false; message: string; hint: string } {
  const cached = checkCache.get(python);
  if (cached !== undefined) return cached;
  const t = tools();
  const missing = (["bwrap", "prlimit", "timeout", ...(isRoot() ? (["setpriv"] as const) : [])] as const).filter((k) => t[k] === undefined);
  if (missing.length > 0) {
    return { ok: false, message: `sandbox tools not found: ${missing.join(", ")}`, hint: INSTALL_HINT };
  }
  if (!python.startsWith("/usr/")) {
    return { ok: false, message: `with bubblewrap the interpreter must live under /usr (only /usr is mounted), got ${python}`, hint: INSTALL_HINT };
  }
  const argv = sandboxArgv(t, { uid: isRoot() ? UID_LOW : undefined, limits: PROBE_LIMITS, totalMs: 10_000, python, nproc: true }, [
    "-I",
    "-c",
    "print('ok')",
  ]);
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: 15_000, cwd: "/", env: { PATH: "/usr/bin:/bin" } });
  if (r.error !== undefined || r.status !== 0 || r.stdout.trim() !== "ok") {
    const why = r.error !== undefined ? r.error.message : `exit ${r.status ?? r.signal}: ${(r.stderr ?? "").trim().slice(-500)}`;
    return { ok: false, message: `bubblewrap is installed but a sandbox does not start (${why})`, hint: INSTALL_HINT };
  }
  const ok = { ok: true } as const;
  checkCache.set(python, ok);
  return ok;
}

const PROBE_LIMITS: Limits = {
  timeMs: 4_000,
  memoryMb: 512,
  outputBytes: 1 << 16,
  fileSizeBytes: 1 << 20,
  tmpBytes: 1 << 20,
  processes: 8,
  openFiles: 32,
};

interface ArgvSpec {
  /** setpriv to this uid (root path); undefined: the non-root path. */
  readonly uid: number | undefined;
  readonly limits: Limits;
  /** The outer wall limit of the whole sandbox (timeout -s KILL). */
  readonly totalMs: number;
  readonly python: string;
  /** Whether prlimit gets --nproc (root path only). */
  readonly nproc: boolean;
}

/** The exact command line of one bwrap sandbox (see the header comment). */
function sandboxArgv(t: Tools, spec: ArgvSpec, pythonArgs: ReadonlyArray<string>): string[] {
  const { limits } = spec;
  const argv: string[] = [t.timeout!, "-s", "KILL", seconds(spec.totalMs)];
  if (spec.uid !== undefined) {
    argv.push(
      t.setpriv!,
      `--reuid=${spec.uid}`,
      `--regid=${spec.uid}`,
      "--clear-groups",
      "--no-new-privs",
      "--inh-caps=-all",
      "--bounding-set=-all",
    );
  }
  argv.push(...prlimitArgs(t, limits, spec.totalMs, spec.uid !== undefined && spec.nproc));
  argv.push(
    t.bwrap!,
    "--unshare-all",
    "--unshare-user",
    "--disable-userns",
    "--die-with-parent",
    "--new-session",
    "--as-pid-1",
    "--cap-drop",
    "ALL",
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--symlink",
    "usr/bin",
    "/bin",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--size",
    String(1 << 20),
    "--tmpfs",
    "/dev/shm",
    "--remount-ro",
    "/dev",
    "--size",
    String(Math.max(4096, Math.floor(limits.tmpBytes))),
    "--tmpfs",
    "/tmp",
    "--remount-ro",
    "/",
    "--chdir",
    "/tmp",
    "--clearenv",
    "--setenv",
    "PATH",
    "/usr/bin",
    "--setenv",
    "HOME",
    "/tmp",
    "--setenv",
    "LANG",
    "C.UTF-8",
    spec.python,
    ...pythonArgs,
  );
  return argv;
}

function prlimitArgs(t: Tools, limits: Limits, totalMs: number, nproc: boolean): string[] {
  if (t.prlimit === undefined) return [];
  // The harness itself needs a little more than one test (it holds the request and the output).
  const as = (Math.floor(limits.memoryMb) + 256) * 1024 * 1024;
  return [
    t.prlimit,
    `--as=${as}`,
    `--cpu=${Math.ceil(totalMs / 1000)}`,
    `--fsize=${Math.floor(limits.fileSizeBytes)}`,
    `--nofile=${Math.max(32, Math.floor(limits.openFiles)) + 32}`,
    ...(nproc ? [`--nproc=${Math.floor(limits.processes) + 4}`] : []),
    "--core=0",
  ];
}

const seconds = (ms: number): string => (Math.ceil(ms / 100) / 10).toFixed(1);

const sysPathCache = new Map<string, ReadonlyArray<string> | null>();
function interpreterSysPath(python: string): ReadonlyArray<string> | null {
  let v = sysPathCache.get(python);
  if (v === undefined) {
    const r = spawnSync(python, ["-I", "-c", "import sys, json; print(json.dumps(sys.path))"], { encoding: "utf8", timeout: 10_000, cwd: "/", env: { PATH: "/usr/bin:/bin" } });
    try {
      const parsed = JSON.parse(r.stdout) as unknown;
      v = Array.isArray(parsed) && parsed.every((p) => typeof p === "string") ? (parsed as string[]) : null;
    } catch {
      v = null;
    }
    sysPathCache.set(python, v);
  }
  return v;
}

let harnessCache: string | undefined;
function harnessSource(): string {
  harnessCache ??= fs.readFileSync(new URL("./harness.py", import.meta.url), "utf8");
  return harnessCache;
}

// ---------------------------------------------------------------------------------------------
// One sandbox run: spawn, send the request, collect the streamed lines.

interface ResultLine extends ExecResult {
  readonly i: number;
}

interface SandboxOutcome {
  hello: boolean;
  compiled: boolean;
  compileError: string | undefined;
  results: ResultLine[];
  raw: RawResult | undefined;
  done: boolean;
  /** Why the sandbox ended early, if it did. */
  ended: "exit" | "watchdog" | "abort" | "protocol" | "closed" | "spawn";
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

interface Running {
  readonly child: ChildProcess;
  kill(reason: SandboxOutcome["ended"]): void;
  readonly finished: Promise<SandboxOutcome>;
}

const STATUSES = new Set<ExecStatus>(["ok", "time_limit", "memory_limit", "runtime_error", "compile_error", "output_limit"]);

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

interface Slot {
  readonly index: number;
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
    this.slots = Array.from({ length: workers }, (_, index) => ({ index, uid: uids?.[index], dirty: false }));
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
      argv = sandboxArgv(this.t, { uid: slot.uid, limits, totalMs, python: this.python, nproc: true }, ["-I", "-S", "-c", harnessSource()]);
    } else {
      tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-exec-"));
      cwd = tmpDir;
      env = { PATH: "/usr/bin:/bin", HOME: tmpDir, LANG: "C.UTF-8" };
      argv = [
        ...(this.t.timeout === undefined ? [] : [this.t.timeout, "-s", "KILL", seconds(totalMs)]),
        ...prlimitArgs(this.t, limits, totalMs, false),
        this.python,
        "-I",
        "-S",
        "-c",
        harnessSource(),
      ];
    }
    try {
      const running = this.start(argv, cwd, env, payload, limits, testCount, rawWallMs, signal);
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

  private start(
    argv: string[],
    cwd: string,
    env: NodeJS.ProcessEnv,
    payload: Record<string, unknown>,
    limits: Limits,
    testCount: number,
    rawWallMs: number | undefined,
    signal: AbortSignal | undefined,
  ): Running {
    const out: SandboxOutcome = {
      hello: false,
      compiled: false,
      compileError: undefined,
      results: [],
      raw: undefined,
      done: false,
      ended: "exit",
      exitCode: null,
      signal: null,
      stderr: "",
    };
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ["pipe", "pipe", "pipe"], detached: true });
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
      const killed = killDescendants(child.pid, this.sandboxed ? 2 : 1);
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
          out.done = true;
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
    child.stdin!.end(JSON.stringify(payload));

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
    return { child, kill, finished };
  }
}

function emptyOutcome(ended: SandboxOutcome["ended"]): SandboxOutcome {
  return { hello: false, compiled: false, compileError: undefined, results: [], raw: undefined, done: false, ended, exitCode: null, signal: null, stderr: "" };
}

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

// ---------------------------------------------------------------------------------------------
// Uids (root path).

function passwdUids(): Set<number> {
  const uids = new Set<number>();
  try {
    for (const line of fs.readFileSync("/etc/passwd", "utf8").split("\n")) {
      const uid = Number(line.split(":")[2]);
      if (Number.isInteger(uid)) uids.add(uid);
    }
  } catch {
    // no /etc/passwd
  }
  return uids;
}

function pickUids(workers: number, base: number | undefined): number[] {
  if (base !== undefined) {
    if (!Number.isInteger(base) || base < 1000) throw new BdcError({ code: "BDC_CONFIG_VALUE", message: `uidBase must be an integer >= 1000, got ${base}` });
    return Array.from({ length: workers }, (_, i) => base + i);
  }
  const block = 16 * Math.ceil(workers / 16);
  const blocks = Math.floor((UID_HIGH - UID_LOW) / block);
  const taken = passwdUids();
  for (const uid of uidsInUse()) taken.add(uid);
  for (let attempt = 0; attempt < 100; attempt++) {
    const start = UID_LOW + block * randomInt(0, blocks);
    const uids = Array.from({ length: workers }, (_, i) => start + i);
    if (uids.some((u) => taken.has(u) || u === 65534 || u === 65535)) continue;
    return uids;
  }
  throw new BdcError({ code: "BDC_SANDBOX_FAILED", message: `no free block of ${workers} uids in ${UID_LOW}..${UID_HIGH}` });
}

/** The real and effective uids of all processes (scans /proc once). */
function uidsInUse(): Set<number> {
  const uids = new Set<number>();
  let names: string[];
  try {
    names = fs.readdirSync("/proc");
  } catch {
    return uids;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const m = /\nUid:\s+(\d+)\s+(\d+)/.exec(fs.readFileSync(`/proc/${name}/status`, "utf8"));
      if (m !== null) uids.add(Number(m[1])).add(Number(m[2]));
    } catch {
      // gone
    }
  }
  return uids;
}

/** Pids of the processes whose real or effective uid is `uid` (scans /proc); `live`: without zombies. */
export function processesOfUid(uid: number, live = false): number[] {
  const pids: number[] = [];
  let names: string[];
  try {
    names = fs.readdirSync("/proc");
  } catch {
    return pids;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    let status: string;
    try {
      status = fs.readFileSync(`/proc/${name}/status`, "utf8");
    } catch {
      continue;
    }
    const m = /\nUid:\s+(\d+)\s+(\d+)/.exec(status);
    if (m === null || (Number(m[1]) !== uid && Number(m[2]) !== uid)) continue;
    if (live && /\nState:\s+Z/.test(status)) continue;
    pids.push(Number(name));
  }
  return pids;
}

const uidHasProcesses = (uid: number, live: boolean): boolean => processesOfUid(uid, live).length > 0;

/** Waits (bounded) until no live process runs as `uid` (zombies hold no resources but a pid). */
async function waitUidFree(uid: number, maxMs: number): Promise<void> {
  const until = Date.now() + maxMs;
  while (uidHasProcesses(uid, true) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
}

/** SIGKILLs the descendants of `root` at depth >= minDepth (1 = its children); returns how many. */
function killDescendants(root: number, minDepth: number): number {
  let killed = 0;
  for (let round = 0; round < 2; round++) {
    const children = new Map<number, number[]>();
    let names: string[];
    try {
      names = fs.readdirSync("/proc");
    } catch {
      return killed;
    }
    for (const name of names) {
      if (!/^\d+$/.test(name)) continue;
      let stat: string;
      try {
        stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
      } catch {
        continue;
      }
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid);
      if (list === undefined) children.set(ppid, [Number(name)]);
      else list.push(Number(name));
    }
    let level = [root];
    for (let depth = 1; level.length > 0 && depth < 64; depth++) {
      level = level.flatMap((p) => children.get(p) ?? []);
      if (depth < minDepth) continue;
      for (const pid of level) {
        try {
          process.kill(pid, "SIGKILL");
          killed++;
        } catch {
          // already gone
        }
      }
    }
    if (minDepth >= 2) break; // bwrap: killing the namespace's init takes everything in it
  }
  return killed;
}

// ---------------------------------------------------------------------------------------------

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
