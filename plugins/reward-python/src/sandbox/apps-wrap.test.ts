/**
 * Standard-input programs written for the APPS reference harness, which runs them as the body
 * of `def code():`, may `return` at the top level or use `nonlocal` on top-level names. They
 * get that form as a fallback (their SyntaxError as a plain script), so they score as there.
 */
import * as assert from "node:assert/strict";
import { after, test } from "node:test";
import { DEFAULT_LIMITS } from "../types.ts";
import { checkSandbox, createExecutor } from "./executor.ts";

const ex = createExecutor({ sandbox: checkSandbox().ok ? "bwrap" : "none", workers: 1, onWarning: () => {} });
after(() => ex.close());
const limits = { ...DEFAULT_LIMITS, timeMs: 2_000 };

test("a top-level return ends the program, as in the APPS harness", async () => {
  const code = "import sys\nn = int(input())\nif n == 0:\n    print('zero')\n    return\nprint(n * 2)\n";
  const rs = await ex.run({ code, limits, tests: [{ kind: "stdio", input: "0\n" }, { kind: "stdio", input: "21\n" }] });
  assert.deepEqual(rs.map((r) => [r.status, r.stdout]), [["ok", "zero\n"], ["ok", "42\n"]]);
});

test("nonlocal on a top-level name works inside the wrapping function", async () => {
  const code = "total = 0\ndef add(x):\n    nonlocal total\n    total += x\nfor v in map(int, input().split()):\n    add(v)\nprint(total)\n";
  const [r] = await ex.run({ code, limits, tests: [{ kind: "stdio", input: "1 2 3\n" }] });
  assert.deepEqual([r!.status, r!.stdout], ["ok", "6\n"]);
});

test("a real syntax error is still a compile error, reported against the original program", async () => {
  const [r] = await ex.run({ code: "print(1\n", limits, tests: [{ kind: "stdio", input: "" }] });
  assert.equal(r!.status, "compile_error");
  assert.match(r!.error!, /SyntaxError/);
});

test("call-based programs are never wrapped", async () => {
  const [r] = await ex.run({ code: "return 1\n", limits, tests: [{ kind: "call", fnName: "f", args: [] }] });
  assert.equal(r!.status, "compile_error");
});
