import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExecResult, Executor, RawRequest, RawResult, TestCase } from "../types.ts";
import { blockFeedback, formatFeedback, type BlockTrace, type TraceEntry } from "./ldb.ts";

/**
 * Test double for the sandbox executor: runs the script with `/usr/bin/python3 -I` on the host.
 * Only for this test's own fixture programs - production code runs the tracer in the sandbox.
 */
class HostExecutor implements Executor {
  readonly sandboxed = false;
  calls = 0;
  async run(): Promise<ExecResult[]> {
    throw new Error("not used by the block tracer");
  }
  async runRaw(req: RawRequest): Promise<RawResult> {
    this.calls++;
    const dir = await mkdtemp(join(tmpdir(), "bdc-ldb-test-"));
    const script = join(dir, "block_trace.py");
    await writeFile(script, req.script);
    try {
      return await new Promise<RawResult>((resolve, reject) => {
        const child = spawn("/usr/bin/python3", ["-I", script], { cwd: dir, stdio: ["pipe", "pipe", "pipe"] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let outBytes = 0;
        let outputTruncated = false;
        let timedOut = false;
        child.stdout.on("data", (b: Buffer) => {
          if (outBytes + b.length > req.limits.outputBytes) {
            outputTruncated = true;
            out.push(b.subarray(0, Math.max(0, req.limits.outputBytes - outBytes)));
            outBytes = req.limits.outputBytes;
            child.kill("SIGKILL");
          } else {
            out.push(b);
            outBytes += b.length;
          }
        });
        child.stderr.on("data", (b: Buffer) => err.push(b));
        const timer = setTimeout(() => {
          timedOut = true;
          child.kill("SIGKILL");
        }, req.limits.timeMs);
        child.on("error", reject);
        child.on("close", (exitCode, signal) => {
          clearTimeout(timer);
          resolve({
            exitCode,
            signal,
            stdout: Buffer.concat(out).toString("utf8"),
            stderr: Buffer.concat(err).toString("utf8"),
            timedOut,
            outputTruncated,
          });
        });
        child.stdin.on("error", () => {});
        child.stdin.end(req.stdin);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  async close(): Promise<void> {}
}

const executor = new HostExecutor();
const stdio = (input: string, output = ""): TestCase => ({ kind: "stdio", input, output });
const src = (...lines: string[]) => lines.join("\n") + "\n";

test("stdio program with a loop and an if: blocks split at control flow, values at boundaries", async () => {
  const code = src(
    "n = int(input())",
    "a = list(map(int, input().split()))",
    "s = 0",
    "for i in range(n):",
    "    if a[i] % 2 == 0:",
    "        s += a[i]",
    "    else:",
    "        s -= 1",
    "print(s)",
  );
  const fb = await blockFeedback(executor, { code, test: stdio("5\n1 2 3 4 5\n", "6\n") });
  assert.equal(fb.ok, true, fb.text);
  assert.deepEqual(
    fb.blocks.map((b) => [b.startLine, b.endLine]),
    [[1, 3], [4, 4], [5, 5], [6, 6], [8, 8], [9, 9]],
  );
  const first = fb.trace[0]!;
  assert.equal(first.block, 1);
  assert.deepEqual(first.localsAfter, { n: "5", a: "[1, 2, 3, 4, 5]", s: "0" });
  const byBlock = (line: number) => fb.trace.filter((t) => fb.blocks.find((b) => b.id === t.block)!.startLine === line);
  assert.deepEqual(byBlock(6).map((t) => t.localsAfter.s), ["1", "4"]); // even branch
  assert.deepEqual(byBlock(8).map((t) => t.localsAfter.s), ["-1", "0", "3"]); // odd branch
  assert.deepEqual(byBlock(4).slice(0, 3).map((t) => t.localsAfter.i), ["0", "1", "2"]);
  assert.equal(byBlock(4)[0]!.totalVisits, 6);
  assert.equal(fb.exception, null);
  assert.equal(fb.truncated, false);
  assert.equal(fb.stdoutTail, "3\n");
  assert.match(fb.text, /\[block 1\] lines 1-3: `n = int\(input\(\)\)` … `s = 0` -> n=5, a=\[1, 2, 3, 4, 5\], s=0/);
  assert.match(fb.text, /\[block 2\] line 4 \(visit 1 of 6\): `for i in range\(n\):` -> i=0/);
  assert.match(fb.text, /expected output: "6\\n"/);
  assert.match(fb.text, /stdout: "3\\n"/);
});

test("call-based Solution method: arguments at entry, returned value", async () => {
  const code = src(
    "class Solution:",
    "    def twoSum(self, nums, target):",
    "        seen = {}",
    "        for i, x in enumerate(nums):",
    "            if target - x in seen:",
    "                return [seen[target - x], i]",
    "            seen[x] = i",
    "        return []",
  );
  const fb = await blockFeedback(executor, {
    code,
    test: { kind: "call", fnName: "twoSum", args: [[2, 7, 11, 15], 9], expected: [0, 1] },
    preamble: "from typing import *\nimport math\n",
  });
  assert.equal(fb.ok, true, fb.text);
  assert.equal(fb.returnedRepr, "[0, 1]");
  const entry = fb.trace.find((t) => t.func === "twoSum")!;
  assert.deepEqual(entry.localsBefore, { self: "<Solution>", nums: "[2, 7, 11, 15]", target: "9" });
  assert.ok(fb.trace.some((t) => t.returned === "[0, 1]"));
  assert.ok(fb.trace.some((t) => t.localsAfter.seen === "{2: 0}"));
  // preamble names (List, math, ...) are not shown as program variables
  assert.ok(fb.trace.every((t) => !("List" in (t.localsBefore ?? {})) && !("math" in t.localsAfter)));
  assert.match(fb.text, /\[block \d+ in twoSum\].*at entry: self=<Solution>, nums=\[2, 7, 11, 15\], target=9/);
  assert.match(fb.text, /returns \[0, 1\]/);
  assert.match(fb.text, /returned: \[0, 1\]/);
});

test("an exception is reported with its line and the block it left", async () => {
  const code = src(
    "def f(xs):",
    "    total = 0",
    "    for x in xs:",
    "        total += 10 // x",
    "    return total",
    "print(f([1, 2, 0, 4]))",
  );
  const fb = await blockFeedback(executor, { code, test: stdio("") });
  assert.equal(fb.ok, true, fb.text);
  assert.deepEqual(fb.exception, {
    type: "ZeroDivisionError",
    message: "integer division or modulo by zero",
    line: 4,
    where: "program",
  });
  const last = fb.trace.filter((t) => t.func === "f").at(-1)!;
  assert.equal(last.raised, "ZeroDivisionError");
  assert.deepEqual(last.localsBefore ?? {}, {});
  assert.match(fb.text, /exception ZeroDivisionError at line 4: integer division or modulo by zero/);
  assert.match(fb.text, /-> total=15/);
});

test("a long loop is summarised: first and last visits, skipped counts, bounded size", async () => {
  const code = src("s = 0", "for i in range(20000):", "    s += i * i", "print(s)");
  const fb = await blockFeedback(executor, { code, test: stdio("") });
  assert.equal(fb.ok, true, fb.text);
  assert.equal(fb.stopped, null);
  assert.equal(fb.truncated, true);
  assert.ok(fb.trace.length <= 14, `${fb.trace.length} entries`);
  const body = fb.trace.filter((t) => t.block === 3);
  assert.deepEqual(body.map((t) => t.visit), [1, 2, 3, 19998, 19999, 20000]);
  assert.equal(body[0]!.totalVisits, 20000);
  const gap = fb.trace.find((t) => t.skippedBefore > 0)!;
  assert.ok(gap.skippedBefore > 39_000);
  assert.ok(gap.localsBefore, "state is shown again after a gap");
  assert.equal(body.at(-1)!.localsAfter.s, String(Array.from({ length: 20000 }, (_, i) => i * i).reduce((a, b) => a + b)));
  assert.match(fb.text, /\.\.\. \(\d+ block visits skipped\) \.\.\./);
  assert.match(fb.text, /\(visit 20000 of 20000\)/);
  assert.ok(fb.text.length <= 4000);
});

test("element-level changes of long lists and dicts are reported", async () => {
  const code = src("dp = [0] * 100", "d = {k: 0 for k in range(50)}", "if True:", "    dp[50] = 7", "    d[40] = 1", "    del d");
  const fb = await blockFeedback(executor, { code, test: stdio("") });
  assert.equal(fb.ok, true, fb.text);
  assert.match(fb.trace[0]!.localsAfter["dp"]!, /^\[0, 0, (0, )+\u2026, (0, )+0\] \(len 100\)$/);
  assert.ok(fb.trace[0]!.localsAfter["dp"]!.length <= 80);
  assert.deepEqual(fb.trace[1]!.localsAfter, { "dp[50]": "7", d: "<unbound>" });
  assert.match(fb.text, /-> dp\[50\]=7, d=<unbound>/);
});

test("an infinite loop stops at the step budget and still reports", async () => {
  const code = src("i = 0", "while True:", "    i += 1");
  const t0 = Date.now();
  const fb = await blockFeedback(executor, { code, test: stdio(""), options: { maxSteps: 20_000 } });
  assert.ok(Date.now() - t0 < 4000);
  assert.equal(fb.ok, true, fb.text);
  assert.equal(fb.stopped?.reason, "steps");
  assert.equal(fb.truncated, true);
  assert.ok(fb.trace.length <= 16);
  assert.match(fb.text, /trace stopped: step budget exhausted after 20001 steps \(at line \d\) - the program may not terminate/);
});

test("a loop that swallows the stop exception is cut by the time budget", async () => {
  const code = src("i = 0", "while True:", "    try:", "        i += 1", "    except BaseException:", "        pass");
  const fb = await blockFeedback(executor, {
    code,
    test: stdio(""),
    limits: { timeMs: 1500 },
    options: { maxSteps: 1e9 },
  });
  assert.equal(fb.ok, true, fb.text);
  assert.equal(fb.stopped?.reason, "time");
  assert.match(fb.text, /time budget exhausted/);
});

test("a program blocked in C code: the sandbox deadline, with the line it was running", async () => {
  const fb = await blockFeedback(executor, { code: "x = sum(range(10**13))\n", test: stdio(""), limits: { timeMs: 1500 } });
  assert.equal(fb.ok, false);
  assert.equal(fb.stopped?.line, 1);
  assert.match(fb.text, /Execution trace unavailable: .*still running at line 1/);
});

test("a program printing a lot, reading stdin in every way and calling sys.exit stays bounded", async () => {
  const code = src(
    "import sys, os",
    "first = sys.stdin.buffer.readline().decode().strip()",
    "rest = open(0).read().split()",
    "for i in range(30000):",
    "    print(i)",
    "sys.stdout.write('x' * 1_000_000)",
    "os.write(1, b'not json')",
    "sys.exit(2)",
  );
  const fb = await blockFeedback(executor, { code, test: stdio("hello\n1 2\n"), options: { maxOutputBytes: 500 } });
  assert.equal(fb.ok, true, fb.text);
  assert.equal(fb.exitCode, 2);
  assert.equal(fb.exception, null);
  assert.equal(fb.stdoutTail, "x".repeat(500));
  assert.ok(fb.stdoutBytes > 1_000_000);
  assert.deepEqual(fb.trace[0]!.localsAfter.first, "'hello'");
  assert.match(fb.text, /stdout \(last 500 of \d+ bytes\)/);
  assert.match(fb.text, /the program called exit\(2\)/);
  assert.ok(fb.text.length <= 4000);
});

test("syntax errors and failing test scripts", async () => {
  const bad = await blockFeedback(executor, { code: "def f(x)\n    return x\n", test: stdio("") });
  assert.equal(bad.ok, true);
  assert.equal(bad.exception?.type, "SyntaxError");
  assert.equal(bad.exception?.line, 1);
  const fb = await blockFeedback(executor, {
    code: src("def add(a, b):", "    return a - b"),
    test: { kind: "script", code: "assert add(2, 3) == 5, 'add(2, 3)'" },
  });
  assert.equal(fb.exception?.where, "test");
  assert.equal(fb.exception?.type, "AssertionError");
  assert.deepEqual(fb.trace[0]!.localsBefore, { a: "2", b: "3" });
  assert.equal(fb.trace[0]!.returned, "-1");
  assert.match(fb.text, /the test failed: exception AssertionError at test line 1: add\(2, 3\)/);
});

test("formatFeedback respects maxChars and keeps the start, the end and the exception", () => {
  const entry = (i: number): TraceEntry => ({
    block: 2,
    visit: i + 1,
    totalVisits: 500,
    func: "solve",
    depth: 1,
    skippedBefore: i === 250 ? 1000 : 0,
    localsAfter: { i: String(i), row: "[" + "1, ".repeat(40) + "]" },
  });
  const data: BlockTrace = {
    blocks: [
      { id: 1, startLine: 1, endLine: 2, code: "def solve(n):\n    x = 1", func: "<module>" },
      { id: 2, startLine: 3, endLine: 5, code: "    a = 1\n    b = 2\n    c = 3", func: "solve" },
    ],
    trace: Array.from({ length: 500 }, (_, i) => entry(i)),
    truncated: true,
    exception: { type: "IndexError", message: "list index out of range " + "y".repeat(5000), line: 4, where: "program" },
    stopped: null,
    exitCode: null,
    stdoutTail: "z".repeat(2000),
    stdoutBytes: 90_000,
    returnedRepr: null,
    steps: 1234,
    notes: [],
  };
  for (const max of [150, 1000, 4000, 10_000]) {
    const text = formatFeedback(data, max);
    assert.ok(text.length <= max, `${text.length} > ${max}`);
  }
  const text = formatFeedback(data, 4000);
  assert.match(text, /\[block 2 in solve\] lines 3-5 \(visit 1 of 500\): `a = 1` … `c = 3` -> i=0/);
  assert.match(text, /visit 500 of 500/);
  assert.match(text, /\(\d+ more trace entries omitted to fit\)/);
  assert.match(text, /exception IndexError at line 4: list index out of range/);
  assert.match(text, /stdout \(last 2000 of 90000 bytes\)/);
  // pure: same input, same output
  assert.equal(formatFeedback(data, 4000), text);
  // small traces are rendered whole
  const small = formatFeedback({ ...data, trace: data.trace.slice(0, 3), exception: null }, 4000);
  assert.equal(small.split("\n").filter((l) => l.includes("[block")).length, 3);
  assert.doesNotMatch(small, /omitted/);
});

test("the tracer runs through Executor.runRaw (never on the host directly)", async () => {
  const before = executor.calls;
  await blockFeedback(executor, { code: "x = 1\n", test: stdio("") });
  assert.equal(executor.calls, before + 1);
  const broken: Executor = {
    sandboxed: true,
    run: async () => [],
    runRaw: async () => ({ exitCode: 1, signal: null, stdout: "", stderr: "Traceback...\nMemoryError", timedOut: false, outputTruncated: false }),
    close: async () => {},
  };
  const fb = await blockFeedback(broken, { code: "x = 1\n", test: stdio("") });
  assert.equal(fb.ok, false);
  assert.match(fb.text, /Execution trace unavailable: the tracer failed \(exit 1\): MemoryError/);
});
