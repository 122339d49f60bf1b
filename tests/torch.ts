/**
 * The PyTorch interpreter for the tests that compare with PyTorch (Debian's python3-torch): found
 * once per test file; without it a test is marked skipped, visibly, with the reason and the
 * install line - except in CI (env CI set), which installs it and must run the comparison.
 */
import * as assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { findTorchPython, TORCH_INSTALL_HINT } from "../benchmarks/src/torch-reference.ts";

let found: ReturnType<typeof findTorchPython> | undefined;

export function torchOrSkip(t: TestContext): string | undefined {
  found ??= findTorchPython();
  if ("missing" in found) {
    if (process.env["CI"] !== undefined) assert.fail(`CI must compare with PyTorch (${TORCH_INSTALL_HINT}): ${found.missing}`);
    t.skip(`not compared with PyTorch: ${found.missing}`);
    return undefined;
  }
  t.diagnostic(`torch ${found.version} (${found.python})`);
  return found.python;
}
