/**
 * SAFETY SUITE: hostile programs in the bubblewrap sandbox. For each one: the verdict is right,
 * the host is untouched (marker files absent, no process of the worker uids left), and the next
 * program on the same executor runs normally.
 *
 * Skipped as a whole (with the reason) only where bubblewrap cannot start a sandbox.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { DEFAULT_LIMITS, type ExecResult, type ExecTest, type Limits } from "../types.ts";
import { checkSandbox, createExecutor, processesOfUid, type SandboxExecutor } from "./executor.ts";

const check = checkSandbox();
// A developer without bubblewrap sees the suite reported as skipped, with the reason; CI (which
// installs bubblewrap) must never skip it, so there the missing sandbox is a failure.
if (!check.ok && process.env.CI !== undefined) throw new Error(`the safety suite needs bubblewrap in CI: ${check.message}`);
const SKIP = check.ok ? false : `bubblewrap unavailable: ${check.message}`;
const REPO = path.resolve(import.meta.dirname, "../../../..");
const LIMITS: Limits = { ...DEFAULT_LIMITS, timeMs: 500, memoryMb: 256 };

let ex: SandboxExecutor;
let hostDir: string;

before(() => {
  if (SKIP !== false) return;
  ex = createExecutor({ sandbox: "bwrap", workers: 2 });
  hostDir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-safety-"));
});
after(async () => {
  if (SKIP !== false) return;
  await ex.close();
  fs.rmSync(hostDir, { recursive: true, force: true });
});

const stdio = (...inputs: string[]): ExecTest[] => inputs.map((input) => ({ kind: "stdio", input }));
const py = (s: string): string => JSON.stringify(s); // a Python string literal (JSON strings are valid Python)

/** No live or zombie process runs as a worker uid (`pgrep -u` where present, else /proc). */
function assertNoWorkerProcesses(): void {
  for (const uid of ex.describe().uids) {
    const pgrep = spawnSync("pgrep", ["-u", String(uid)], { encoding: "utf8" });
    const pids = pgrep.error === undefined ? pgrep.stdout.trim() : processesOfUid(uid).join(" ");
    assert.equal(pids, "", `processes of worker uid ${uid} left: ${pids}`);
  }
}

/** The next program after a hostile one still runs normally. */
async function assertNextRuns(): Promise<void> {
  const rs = await ex.run({ code: "print(input()[::-1])\n", tests: stdio("abc\n", "xyz\n"), limits: LIMITS });
  assert.deepEqual(
    rs.map((r) => [r.status, r.stdout]),
    [
      ["ok", "cba\n"],
      ["ok", "zyx\n"],
    ],
  );
}

/** Runs a hostile program, then checks that the host is untouched and the executor still works. */
async function hostile(code: string, tests: ExecTest[] = stdio(""), limits: Limits = LIMITS, markers: string[] = []): Promise<ExecResult[]> {
  const rs = await ex.run({ code, tests, limits });
  assert.equal(rs.length, tests.length, "one result per test");
  for (const m of markers) assert.equal(fs.existsSync(m), false, `host file ${m} was created`);
  assertNoWorkerProcesses();
  await assertNextRuns();
  assertNoWorkerProcesses();
  return rs;
}

describe("safety suite (bubblewrap)", { skip: SKIP }, () => {
  test("describe(): root path drops to per-worker uids; the non-root path is documented", () => {
    const d = ex.describe();
    assert.equal(d.sandbox, "bwrap");
    if (d.privileged) {
      assert.equal(d.uids.length, 2);
      assert.ok(d.uids.every((u) => u >= 61_000 && u !== 65_534));
      assert.equal(d.processLimit, "per-worker-uid");
    }
    assert.ok(d.guarantees.some((g) => /network/.test(g)));
  });

  test("fork bomb: contained by RLIMIT_NPROC and the time limit; nothing survives", async () => {
    const code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n";
    const rs = await hostile(code, stdio("", ""));
    assert.deepEqual(
      rs.map((r) => r.status),
      ["time_limit", "time_limit"],
    );
  });

  test("fork bomb: the number of processes is capped at limits.processes", async () => {
    const code =
      "import os, time\nn = 0\ntry:\n    for _ in range(1000):\n        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n        n += 1\nexcept OSError as e:\n    print(n, type(e).__name__)\n";
    const rs = await hostile(code, stdio(""), { ...LIMITS, processes: 12 });
    assert.equal(rs[0]!.status, "ok", rs[0]!.error);
    const [n, err] = rs[0]!.stdout.trim().split(" ");
    assert.equal(err, "BlockingIOError");
    assert.ok(Number(n) <= 12, `forked ${n} processes with limits.processes = 12`);
  });

  test("memory bomb: allocating until failure is memory_limit", async () => {
    const rs = await hostile("chunks = []\nwhile True:\n    chunks.append(bytearray(32 << 20))\n", stdio("", ""));
    assert.deepEqual(
      rs.map((r) => r.status),
      ["memory_limit", "memory_limit"],
    );
  });

  test("infinite loop: time_limit (CPU), the other tests of the program unaffected", async () => {
    const code = "if input() == 'loop':\n    while True:\n        pass\nprint('done')\n";
    const rs = await hostile(code, stdio("x\n", "loop\n", "y\n"));
    assert.deepEqual(
      rs.map((r) => r.status),
      ["ok", "time_limit", "ok"],
    );
  });

  test("sleep past the limit: time_limit by the wall clock", async () => {
    const t0 = performance.now();
    const rs = await hostile("import time\ntime.sleep(3600)\n");
    assert.equal(rs[0]!.status, "time_limit");
    assert.match(rs[0]!.error!, /wall-clock/);
    assert.ok(performance.now() - t0 < 5_000);
  });

  test("a program that ignores SIGTERM (and a child that does too) is still stopped", async () => {
    const code =
      "import os, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nif os.fork() == 0:\n    os.setsid()\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    time.sleep(3600)\nwhile True:\n    pass\n";
    const rs = await hostile(code);
    assert.equal(rs[0]!.status, "time_limit");
  });

  test("disk fill: writing /tmp until it fails ends in an error inside the sandbox (bounded tmpfs), host disk untouched", async () => {
    // /tmp is a tmpfs of limits.tmpBytes (RAM of the host, freed with the sandbox), one file is
    // capped by RLIMIT_FSIZE; / and /dev are read-only, /dev/shm is 1 MiB. The program sees
    // ENOSPC (or EFBIG) as an OSError: runtime_error, or ok when it catches it (second program).
    const fill = "i = 0\nwhile True:\n    with open(f'/tmp/fill{i}', 'wb') as f:\n        f.write(b'x' * (1 << 20))\n    i += 1\n";
    const rs = await hostile(fill, stdio(""), { ...LIMITS, tmpBytes: 8 << 20 });
    assert.equal(rs[0]!.status, "runtime_error");
    assert.match(rs[0]!.error!, /No space left on device|File too large/);
    const elsewhere =
      "for p in ['/fill', '/dev/fill', '/usr/fill', '/dev/shm/fill']:\n    try:\n        with open(p, 'wb') as f:\n            f.write(b'x' * (4 << 20))\n        print(p, 'WROTE')\n    except OSError as e:\n        print(p, e.errno)\n";
    const rs2 = await hostile(elsewhere);
    assert.equal(rs2[0]!.status, "ok");
    assert.doesNotMatch(rs2[0]!.stdout, /WROTE/);
  });

  test("giant stdout: output_limit at outputBytes; the host buffers no more than that", async () => {
    const limits = { ...LIMITS, outputBytes: 64 << 10 };
    const rss0 = process.memoryUsage().rss;
    const rs = await hostile("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", stdio("", ""), limits);
    assert.deepEqual(
      rs.map((r) => r.status),
      ["output_limit", "output_limit"],
    );
    assert.equal(rs[0]!.stdout.length, 64 << 10);
    assert.ok(process.memoryUsage().rss - rss0 < 200 << 20);
  });

  test("network: a TCP server on the host's 127.0.0.1 receives no connection; the program sees an error", async () => {
    let connections = 0;
    const server = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const code = `import socket\ntry:\n    s = socket.create_connection(('127.0.0.1', ${port}), timeout=2)\n    print('CONNECTED')\nexcept OSError as e:\n    print('error', type(e).__name__)\n`;
      const rs = await hostile(code);
      assert.equal(rs[0]!.status, "ok");
      assert.match(rs[0]!.stdout, /^error /);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(connections, 0);
    } finally {
      server.close();
    }
  });

  test("host files: /etc/shadow, /root and the repository are not visible", async () => {
    const code = `import os\nfor p in ['/etc/shadow', '/etc/passwd', '/root', ${py(REPO)}, ${py(path.join(REPO, "package.json"))}]:\n    try:\n        print(p, os.listdir(p) if os.path.isdir(p) else open(p).read()[:50])\n    except OSError as e:\n        print(p, type(e).__name__)\n`;
    const rs = await hostile(code);
    assert.equal(rs[0]!.status, "ok");
    const lines = rs[0]!.stdout.trim().split("\n");
    assert.equal(lines.length, 5);
    for (const line of lines) assert.match(line, / (FileNotFoundError|PermissionError)$/, line);
  });

  test("writing outside /tmp fails; writing the host's temp dir lands in the private /tmp only", async () => {
    const marker = path.join(hostDir, "marker-write");
    const code = `import os\nfor p in ['/etc_x', '/usr/x', ${py(path.join(REPO, "PWNED"))}]:\n    try:\n        open(p, 'w').write('x')\n        print(p, 'WROTE')\n    except OSError as e:\n        print(p, type(e).__name__)\nos.makedirs(${py(hostDir)}, exist_ok=True)\nopen(${py(marker)}, 'w').write('x')\nprint('private', os.path.exists(${py(marker)}))\n`;
    const rs = await hostile(code, stdio(""), LIMITS, [marker, path.join(REPO, "PWNED")]);
    assert.equal(rs[0]!.status, "ok", rs[0]!.error);
    assert.doesNotMatch(rs[0]!.stdout, /WROTE/);
    assert.match(rs[0]!.stdout, /private True/);
  });

  test("a shell (os.system, subprocess sh -c) runs contained: host marker files are not created", async () => {
    const m1 = path.join(hostDir, "marker-system");
    const m2 = path.join(hostDir, "marker-subprocess");
    const code = `import os, subprocess\nos.system(${py(`echo pwned > ${m1}; touch ${path.join(REPO, "PWNED-SH")}`)})\nr = subprocess.run(['sh', '-c', ${py(`echo pwned > ${m2}; id -u; ls /`)}], capture_output=True, text=True)\nprint(r.returncode, r.stdout.split())\n`;
    const rs = await hostile(code, stdio(""), LIMITS, [m1, m2, path.join(REPO, "PWNED-SH")]);
    assert.equal(rs[0]!.status, "ok", rs[0]!.error);
    assert.doesNotMatch(rs[0]!.stdout, /root|work/);
  });

  test("killing the parent (os.kill(getppid, 9), os.killpg, kill(-1)): the harness is the sandbox's init and survives; every test gets its result", async () => {
    const code =
      "import os, signal\nwhat = input()\ntry:\n    if what == 'ppid':\n        os.kill(os.getppid(), signal.SIGKILL)\n    elif what == 'pg':\n        os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)\n    elif what == 'all':\n        os.kill(-1, signal.SIGKILL)\n    elif what == 'stop':\n        os.kill(os.getppid(), signal.SIGSTOP)\nexcept OSError as e:\n    print(type(e).__name__)\nprint('alive', what)\n";
    const rs = await hostile(code, stdio("ppid\n", "a\n", "pg\n", "b\n", "all\n", "stop\n", "c\n"));
    assert.deepEqual(
      rs.map((r) => r.status),
      ["ok", "ok", "ok", "ok", "ok", "ok", "ok"],
    );
    assert.deepEqual(
      rs.map((r) => r.stdout.trim().split("\n").pop()),
      ["alive ppid", "alive a", "alive pg", "alive b", "alive all", "alive stop", "alive c"],
    );
  });

  test("forging results: a test cannot open the harness's result pipe (/proc/<harness>/fd), read its memory or ptrace it", async () => {
    const code = `import os\nforged = b'{"t":"r","i":1,"status":"ok","timeMs":1,"stdout":"FORGED"}\\n'\nfor fd in range(0, 8):\n    for p in (f'/proc/{os.getppid()}/fd/{fd}', f'/proc/1/fd/{fd}'):\n        try:\n            h = os.open(p, os.O_WRONLY)\n            os.write(h, forged)\n            print('OPENED', p)\n        except OSError:\n            pass\nfor p in ('/proc/1/mem', '/proc/1/environ', '/proc/1/maps'):\n    try:\n        open(p, 'rb').read(1)\n        print('READ', p)\n    except OSError:\n        pass\nimport ctypes\nif ctypes.CDLL(None).ptrace(16, os.getppid(), 0, 0) == 0:\n    print('ATTACHED')\nprint('done')\n`;
    const rs = await hostile(code, stdio("", "x\n"));
    assert.deepEqual(
      rs.map((r) => [r.status, r.stdout]),
      [
        ["ok", "done\n"],
        ["ok", "done\n"],
      ],
    );
  });

  test("a daemon started by one test (setsid, double fork) does not survive into the next test", async () => {
    const code =
      "import os, time\nif input() == 'spawn':\n    if os.fork() == 0:\n        os.setsid()\n        if os.fork() == 0:\n            open('/tmp/daemon', 'w').write('alive')\n            time.sleep(3600)\n        os._exit(0)\n    time.sleep(0.2)\nprint(len([p for p in os.listdir('/proc') if p.isdigit()]))\n";
    const rs = await hostile(code, stdio("spawn\n", "check\n"));
    assert.equal(rs[0]!.status, "ok");
    // the check test sees only init (the harness), itself and nothing else
    assert.equal(rs[1]!.stdout.trim(), "2");
  });
});

describe("harness recovery when the harness dies (sandbox none, where a program can kill it)", () => {
  test("the test that killed the harness is a runtime_error, the rest run in a fresh harness", async () => {
    const none = createExecutor({ sandbox: "none", workers: 1, onWarning: () => {} });
    try {
      const code =
        "import os, signal\nwhat = input()\nif what == 'ppid':\n    os.kill(os.getppid(), signal.SIGKILL)\nif what == 'pg':\n    os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)\nprint('alive', what)\n";
      const rs = await none.run({ code, tests: stdio("a\n", "ppid\n", "b\n", "pg\n", "c\n"), limits: LIMITS });
      assert.deepEqual(
        rs.map((r) => r.status),
        ["ok", "runtime_error", "ok", "runtime_error", "ok"],
      );
      assert.match(rs[1]!.error!, /killed the test harness/);
      assert.match(rs[3]!.error!, /killed the test harness/);
      assert.deepEqual(
        [rs[0], rs[2], rs[4]].map((r) => r!.stdout),
        ["alive a\n", "alive b\n", "alive c\n"],
      );
    } finally {
      await none.close();
    }
  });
});
