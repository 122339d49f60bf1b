/**
 * The command line of a sandbox: finding the tools, the one-off `checkSandbox` probe, the argv
 * chain, and what the harness needs from the host (its source, the interpreter's sys.path).
 *
 * The sandbox ("bwrap"), as root: the verified chain of ARCHITECTURE.md, hardened:
 *
 *   timeout -s KILL T  setpriv --reuid=U --regid=U --clear-groups --no-new-privs --inh-caps=-all
 *   --bounding-set=-all  prlimit --as --cpu --fsize --nofile --nproc --core=0
 *   bwrap --unshare-all --unshare-user --disable-userns --die-with-parent --new-session --as-pid-1
 *   --cap-drop ALL --ro-bind /usr /usr (+ /lib /lib64 /bin symlinks, /etc/alternatives read-only) --proc /proc --dev /dev
 *   --size 1MiB --tmpfs /dev/shm --remount-ro /dev --size tmpBytes --tmpfs /tmp --remount-ro /
 *   --chdir /tmp --clearenv --setenv PATH /usr/bin --setenv HOME /tmp --setenv LANG C.UTF-8
 *   /usr/bin/python3 -I -S -c HARNESS
 *
 * - U is a distinct unprivileged uid per worker (per executor a random free block in
 *   61000..93000, or `uidBase`; see uids.ts), so RLIMIT_NPROC binds per worker and concurrent
 *   executors (test files, processes) do not share uids.
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
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Limits } from "../types.ts";
import { UID_LOW } from "./uids.ts";

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

export const DEFAULT_PYTHON = "/usr/bin/python3";

export const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0;

// ---------------------------------------------------------------------------------------------
// Tools and the sandbox check.

export interface Tools {
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
export function tools(): Tools {
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

// ---------------------------------------------------------------------------------------------
// The argv chains.

export interface ArgvSpec {
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
export function sandboxArgv(t: Tools, spec: ArgvSpec, pythonArgs: ReadonlyArray<string>): string[] {
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
    // Debian's alternatives (libblas.so.3, liblapack.so.3: what numpy loads) are symlinks from
    // /usr through /etc/alternatives back into /usr: the links only, read-only.
    "--ro-bind-try",
    "/etc/alternatives",
    "/etc/alternatives",
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

/** The command line of sandbox "none": `timeout` (when present) and prlimit (no --nproc), no isolation. */
export function unsandboxedArgv(t: Tools, limits: Limits, totalMs: number, python: string, pythonArgs: ReadonlyArray<string>): string[] {
  return [
    ...(t.timeout === undefined ? [] : [t.timeout, "-s", "KILL", seconds(totalMs)]),
    ...prlimitArgs(t, limits, totalMs, false),
    python,
    ...pythonArgs,
  ];
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

// ---------------------------------------------------------------------------------------------
// What the harness needs from the host.

const sysPathCache = new Map<string, ReadonlyArray<string> | null>();
/** The interpreter's sys.path with `site` (the harness runs with -S and sets it from this); queried once per interpreter. */
export function interpreterSysPath(python: string): ReadonlyArray<string> | null {
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
/** The interpreter arguments that start harness.py: `-I -S -c HARNESS`. */
export function harnessArgs(): string[] {
  harnessCache ??= fs.readFileSync(new URL("./harness.py", import.meta.url), "utf8");
  return ["-I", "-S", "-c", harnessCache];
}
