#!/usr/bin/env node
// Runs the test suite with Node's test runner (TypeScript through tsx). With arguments, runs
// just those files or folders; without, every *.test.ts of the workspace.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const skip = new Set(["node_modules", ".git", "runs", "dist", ".cache"]);

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (skip.has(name)) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith(".test.ts")) out.push(relative(root, p));
  }
  return out;
}

const args = process.argv.slice(2);
const files = (args.length > 0 ? args : ["core", "plugins", "benchmarks", "tests"]).flatMap((a) =>
  statSync(join(root, a)).isDirectory() ? find(join(root, a)) : [a],
);
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-reporter=spec", "--test-concurrency=2", ...files.sort()],
  { cwd: root, stdio: "inherit", env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" } },
);
process.exit(result.status ?? 1);
