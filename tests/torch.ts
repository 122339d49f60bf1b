/**
 * The Python interpreters the reference checks need (Debian's python3-torch, python3-numpy,
 * python3-sklearn): found once per test file; without one a test is marked skipped, visibly, with
 * the reason and the install line - except in CI (env CI set), which installs them and must run
 * the comparison.
 */
import * as assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { findPython, TORCH_INSTALL_HINT } from "../benchmarks/src/torch-reference.ts";

const found = new Map<string, ReturnType<typeof findPython>>();

export function pythonOrSkip(t: TestContext, module: string, installHint: string): string | undefined {
  let py = found.get(module);
  if (py === undefined) {
    py = findPython(module, installHint);
    found.set(module, py);
  }
  if ("missing" in py) {
    if (process.env["CI"] !== undefined) assert.fail(`CI must run this comparison (${installHint}): ${py.missing}`);
    t.skip(`not compared: ${py.missing}`);
    return undefined;
  }
  t.diagnostic(`${module} ${py.version} (${py.python})`);
  return py.python;
}

export const torchOrSkip = (t: TestContext): string | undefined => pythonOrSkip(t, "torch", TORCH_INSTALL_HINT);
export const numpyOrSkip = (t: TestContext): string | undefined => pythonOrSkip(t, "numpy", "apt-get install python3-numpy");
