/**
 * The executor's functional behaviour: stdio, call and script tests, verdicts, limits per test,
 * partial results when the harness dies, the worker pool, abort and close. Runs in bubblewrap when
 * it works here, else in sandbox "none" (the same harness).
 */
import * as assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { DEFAULT_LIMITS, type ExecResult, type Limits } from "../types.ts";
import { checkSandbox, createExecutor, type SandboxExecutor } from "./executor.ts";

const SANDBOX = checkSandbox().ok ? "bwrap" : "none";
if (SANDBOX === "none" && process.env.CI !== undefined) throw new Error("CI must test the executor in bubblewrap (install it: apt-get install -y bubblewrap)");
const LIMITS: Limits = { ...DEFAULT_LIMITS, timeMs: 1_000, memoryMb: 512 };
const PREAMBLE = "from typing import *\nimport collections, math, heapq, bisect, itertools, functools, re, string, sys";

let ex: SandboxExecutor;
before(() => {
  ex = createExecutor({ sandbox: SANDBOX, workers: 2, onWarning: () => {} });
});
after(async () => {
  await ex.close();
});

const stdio = (...inputs: string[]) => inputs.map((input) => ({ kind: "stdio" as const, input }));
const statuses = (rs: ReadonlyArray<ExecResult>) => rs.map((r) => r.status);

describe(`executor (${SANDBOX})`, () => {
  test("stdio: a sum program passes through several tests, outputs in order", async () => {
    const code = "import sys\nfor line in sys.stdin:\n    a, b = map(int, line.split())\n    print(a + b)\n";
    const rs = await ex.run({ code, tests: stdio("1 2\n", "10 20\n3 4\n", ""), limits: LIMITS });
    assert.deepEqual(statuses(rs), ["ok", "ok", "ok"]);
    assert.deepEqual(
      rs.map((r) => r.stdout),
      ["3\n", "30\n7\n", ""],
    );
    for (const r of rs) assert.ok(r.timeMs >= 0 && r.timeMs < 1_000, `timeMs ${r.timeMs}`);
  });

  test("numpy programs run (its BLAS is reached through /etc/alternatives), when the system Python has numpy", async (t) => {
    const has = (await import("node:child_process")).spawnSync("/usr/bin/python3", ["-c", "import numpy"]).status === 0;
    if (!has) return t.skip("python3-numpy is not installed");
    const code = "import numpy as np\na = np.array([[1.0, 2.0], [3.0, 4.0]])\nprint(int(round(np.linalg.det(a @ a.T))))\n";
    const rs = await ex.run({ code, tests: stdio(""), limits: LIMITS });
    assert.deepEqual(statuses(rs), ["ok"], rs[0]!.error);
    assert.equal(rs[0]!.stdout, "4\n");
  });

  test("stdio: sys.stdin.buffer, unicode, a large input", async () => {
    const big = `${Array.from({ length: 50_000 }, (_, i) => i).join(" ")}\n`;
    const code = "import sys\nn = sys.stdin.buffer.readline().decode().strip()\ndata = sys.stdin.buffer.read().split()\nprint(n, len(data), sum(map(int, data)))\n";
    const rs = await ex.run({ code, tests: stdio(`héllo ✓\n${big}`), limits: LIMITS });
    assert.equal(rs[0]!.status, "ok");
    assert.equal(rs[0]!.stdout, `héllo ✓ 50000 ${(49_999 * 50_000) / 2}\n`);
  });

  test("call: a top-level function; tuples become lists in `returned`, repr kept", async () => {
    const code = "def solve(a, b):\n    return (a + b, [a, (b,)], {'k': (1, 2)})\n";
    const rs = await ex.run({
      code,
      preamble: PREAMBLE,
      tests: [
        { kind: "call", fnName: "solve", args: [1, 2] },
        { kind: "call", fnName: "solve", args: ["x", "y"] },
      ],
      limits: LIMITS,
    });
    assert.deepEqual(statuses(rs), ["ok", "ok"]);
    assert.deepEqual(rs[0]!.returned, [3, [1, [2]], { k: [1, 2] }]);
    assert.equal(rs[0]!.returnedRepr, "(3, [1, (2,)], {'k': (1, 2)})");
    assert.deepEqual(rs[1]!.returned, ["xy", ["x", ["y"]], { k: [1, 2] }]);
  });

  test("call: a method of class Solution (preamble names such as List available)", async () => {
    const code = "class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n        seen = {}\n        for i, x in enumerate(nums):\n            if target - x in seen:\n                return [seen[target - x], i]\n            seen[x] = i\n";
    const rs = await ex.run({ code, preamble: PREAMBLE, tests: [{ kind: "call", fnName: "twoSum", args: [[2, 7, 11, 15], 9] }], limits: LIMITS });
    assert.equal(rs[0]!.status, "ok");
    assert.deepEqual(rs[0]!.returned, [0, 1]);
    assert.equal(rs[0]!.returnedRepr, "[0, 1]");
  });

  test("call: a value JSON cannot hold has no `returned`, only returnedRepr; a missing function is a runtime_error", async () => {
    const code = "def f():\n    return {3, 1}\n";
    const rs = await ex.run({
      code,
      tests: [
        { kind: "call", fnName: "f", args: [] },
        { kind: "call", fnName: "nope", args: [] },
      ],
      limits: LIMITS,
    });
    assert.equal(rs[0]!.status, "ok");
    assert.equal("returned" in rs[0]!, false);
    assert.equal(rs[0]!.returnedRepr, "{1, 3}");
    assert.equal(rs[1]!.status, "runtime_error");
    assert.match(rs[1]!.error!, /neither a function 'nope' nor a method Solution\.nope/);
  });

  test("script: assertions after the program in the same namespace pass or fail", async () => {
    const code = "def add(a, b):\n    return a + b\n";
    const rs = await ex.run({
      code,
      tests: [
        { kind: "script", code: "assert add(2, 3) == 5" },
        { kind: "script", code: "def check(candidate):\n    assert candidate(2, 2) == 5, 'two and two'\ncheck(add)" },
      ],
      limits: LIMITS,
    });
    assert.deepEqual(statuses(rs), ["ok", "runtime_error"]);
    assert.match(rs[1]!.error!, /AssertionError: two and two/);
  });

  test("compile error: every test gets compile_error with the SyntaxError", async () => {
    const rs = await ex.run({ code: "def f(:\n    pass\n", tests: stdio("", ""), limits: LIMITS });
    assert.deepEqual(statuses(rs), ["compile_error", "compile_error"]);
    assert.match(rs[0]!.error!, /SyntaxError/);
    assert.match(rs[0]!.error!, /line 1/);
  });

  test("runtime error: the last lines of the traceback, pointing into the program", async () => {
    const code = "def g(x):\n    return 1 // x\n\ndef f(x):\n    return g(x)\n\nprint('before')\nf(int(input()))\n";
    const rs = await ex.run({ code, tests: stdio("0\n", "1\n"), limits: LIMITS });
    assert.deepEqual(statuses(rs), ["runtime_error", "ok"]);
    const err = rs[0]!.error!;
    assert.ok(err.split("\n").length <= 5, err);
    assert.match(err, /ZeroDivisionError/);
    assert.match(err, /File "<solution>", line 2, in g/);
    assert.equal(rs[0]!.stdout, "before\n");
  });

  test("SystemExit: exit(0) is ok for stdio, a nonzero code or a message is a runtime_error", async () => {
    const code = "import sys\nprint('out')\nc = input()\nsys.exit(None if c == 'none' else int(c) if c.isdigit() else c)\n";
    const rs = await ex.run({ code, tests: stdio("0\n", "none\n", "3\n", "bad input\n"), limits: LIMITS });
    assert.deepEqual(statuses(rs), ["ok", "ok", "runtime_error", "runtime_error"]);
    assert.equal(rs[0]!.stdout, "out\n");
    assert.match(rs[2]!.error!, /SystemExit: 3/);
    assert.match(rs[3]!.error!, /bad input/);
    // the builtins exit()/quit() (normally installed by `site`) exist
    const ex2 = await ex.run({ code: "print(1)\nexit()\nprint(2)\n", tests: stdio(""), limits: LIMITS });
    assert.deepEqual([ex2[0]!.status, ex2[0]!.stdout], ["ok", "1\n"]);
  });

  test("threads: output of a main() run in a thread (common in contest code) is kept", async () => {
    const code = "import sys, threading\nsys.setrecursionlimit(10**6)\nthreading.stack_size(1 << 26)\ndef main():\n    print(sum(map(int, input().split())))\nthreading.Thread(target=main).start()\n";
    const rs = await ex.run({ code, tests: stdio("1 2 3\n"), limits: LIMITS });
    assert.equal(rs[0]!.status, "ok", rs[0]!.error);
    assert.equal(rs[0]!.stdout, "6\n");
  });

  test("time limits: an infinite loop and a sleep past the wall limit are time_limit; the other tests are unaffected", async () => {
    const limits = { ...LIMITS, timeMs: 300 };
    const code = "import time\ns = input()\nif s == 'loop':\n    while True: pass\nif s == 'sleep':\n    time.sleep(60)\nprint(s)\n";
    const t0 = performance.now();
    const rs = await ex.run({ code, tests: stdio("a\n", "loop\n", "b\n", "sleep\n", "c\n"), limits });
    const ms = performance.now() - t0;
    assert.deepEqual(statuses(rs), ["ok", "time_limit", "ok", "time_limit", "ok"]);
    assert.deepEqual(
      rs.map((r) => r.stdout),
      ["a\n", "", "b\n", "", "c\n"],
    );
    assert.match(rs[3]!.error!, /wall-clock/);
    assert.ok(ms < 6_000, `took ${ms} ms`);
  });

  test("memory limit: MemoryError is memory_limit", async () => {
    const rs = await ex.run({ code: "x = bytearray(10**10)\n", tests: stdio(""), limits: { ...LIMITS, memoryMb: 256 } });
    assert.equal(rs[0]!.status, "memory_limit");
  });

  test("output limit: output beyond outputBytes is output_limit with the output cut at the limit", async () => {
    const limits = { ...LIMITS, outputBytes: 1_000 };
    const rs = await ex.run({ code: "print('y' * int(input()))\n", tests: stdio("10\n", "5000\n"), limits });
    assert.deepEqual(statuses(rs), ["ok", "output_limit"]);
    assert.equal(rs[1]!.stdout.length, 1_000);
  });

  test("many tests in one run: 300 tests, one sandbox", async () => {
    const inputs = Array.from({ length: 300 }, (_, i) => `${i}\n`);
    const t0 = performance.now();
    const rs = await ex.run({ code: "print(int(input()) * 2)\n", tests: stdio(...inputs), limits: LIMITS });
    const ms = performance.now() - t0;
    assert.equal(rs.length, 300);
    assert.ok(rs.every((r, i) => r.status === "ok" && r.stdout === `${i * 2}\n`));
    assert.ok(ms < 10_000, `took ${ms} ms`);
  });

  test("runRaw: a script with files next to it, stdin, exit code, stderr, time limit", async () => {
    const r = await ex.runRaw({
      script: "import sys, helper\nprint(helper.X, sys.stdin.read())\nprint('err', file=sys.stderr)\nsys.exit(3)\n",
      stdin: "in",
      files: { "helper.py": "X = 42\n" },
      limits: LIMITS,
    });
    assert.deepEqual(r, { exitCode: 3, signal: null, stdout: "42 in\n", stderr: "err\n", timedOut: false, outputTruncated: false });
    const slow = await ex.runRaw({ script: "import time\ntime.sleep(30)\n", stdin: "", limits: { ...LIMITS, timeMs: 300 } });
    assert.equal(slow.timedOut, true);
    assert.equal(slow.exitCode, null);
    const big = await ex.runRaw({ script: "print('z' * 100000)\n", stdin: "", limits: { ...LIMITS, outputBytes: 1000 } });
    assert.equal(big.outputTruncated, true);
    assert.equal(big.stdout.length, 1000);
  });

  test("worker pool: requests beyond `workers` queue and all complete", async () => {
    const pool = createExecutor({ sandbox: SANDBOX, workers: 2, onWarning: () => {} });
    try {
      const code = "import time\ntime.sleep(0.2)\nprint(input())\n";
      const t0 = performance.now();
      const all = await Promise.all(Array.from({ length: 6 }, (_, i) => pool.run({ code, tests: stdio(`${i}\n`), limits: LIMITS })));
      const ms = performance.now() - t0;
      assert.deepEqual(
        all.map((rs) => rs[0]!.stdout),
        ["0\n", "1\n", "2\n", "3\n", "4\n", "5\n"],
      );
      // 6 programs of 0.2 s on 2 workers: at least 3 rounds.
      assert.ok(ms >= 550, `took ${ms} ms: more than 2 ran at once`);
    } finally {
      await pool.close();
    }
  });

  test("abort: an AbortSignal kills the running sandbox and rejects; queued requests abort too", async () => {
    const pool = createExecutor({ sandbox: SANDBOX, workers: 1, onWarning: () => {} });
    try {
      const ac = new AbortController();
      const t0 = performance.now();
      const running = pool.run({ code: "while True: pass\n", tests: stdio(""), limits: { ...LIMITS, timeMs: 10_000 } }, ac.signal);
      const queued = pool.run({ code: "print(1)\n", tests: stdio(""), limits: LIMITS }, ac.signal);
      const settled = Promise.allSettled([running, queued]);
      setTimeout(() => ac.abort(), 200);
      const [r1, r2] = await settled;
      assert.equal(r1.status === "rejected" && (r1.reason as Error).name, "AbortError");
      assert.equal(r2.status === "rejected" && (r2.reason as Error).name, "AbortError");
      assert.ok(performance.now() - t0 < 3_000);
      const rs = await pool.run({ code: "print(1)\n", tests: stdio(""), limits: LIMITS });
      assert.equal(rs[0]!.stdout, "1\n");
    } finally {
      await pool.close();
    }
  });

  test("close: kills what is in flight; later calls reject", async () => {
    const pool = createExecutor({ sandbox: SANDBOX, workers: 1, onWarning: () => {} });
    const running = pool.run({ code: "while True: pass\n", tests: stdio(""), limits: { ...LIMITS, timeMs: 10_000 } });
    const settled = Promise.allSettled([running]);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = performance.now();
    await pool.close();
    assert.ok(performance.now() - t0 < 3_000);
    const [r1] = await settled;
    assert.match(r1.status === "rejected" ? String(r1.reason) : "fulfilled", /closed/);
    await assert.rejects(pool.run({ code: "print(1)", tests: stdio(""), limits: LIMITS }), /closed/);
  });

  test("bad requests are BdcErrors", async () => {
    await assert.rejects(ex.run({ code: "", tests: stdio(""), limits: { ...LIMITS, timeMs: 0 } }), { code: "BDC_CONFIG_VALUE" });
    await assert.rejects(ex.run({ code: "", tests: [{ kind: "call", fnName: "f", args: "x" as unknown as [] }], limits: LIMITS }), { code: "BDC_CONFIG_VALUE" });
    await assert.rejects(ex.runRaw({ script: "", stdin: "", files: { "../x": "" }, limits: LIMITS }), { code: "BDC_CONFIG_VALUE" });
    assert.deepEqual(await ex.run({ code: "", tests: [], limits: LIMITS }), []);
  });
});
