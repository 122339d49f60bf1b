/**
 * The kernel depends on effect (+ @effect/*) and yaml only: vendor SDKs, model runtimes and
 * the built-in plugins live in plugins/, which the kernel finds through package.json, never
 * through an import.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

const coreDir = path.resolve(import.meta.dirname, "..");
const allowed = (spec: string) => spec.startsWith(".") || spec.startsWith("node:") || spec === "effect" || spec.startsWith("@effect/") || spec === "yaml";

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : /\.ts$/.test(e.name) && !e.name.endsWith(".test.ts") ? [p] : [];
  });
}

test("core/package.json depends on effect and yaml only", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(coreDir, "package.json"), "utf8")) as Record<string, Record<string, string> | undefined>;
  const deps = Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies, ...pkg.optionalDependencies });
  assert.deepEqual(deps.filter((d) => !allowed(d)), []);
});

test("core sources import only effect, @effect/*, yaml, node: builtins and each other", () => {
  const files = sources(path.join(coreDir, "src"));
  assert.ok(files.length > 10);
  const offenders: string[] = [];
  for (const file of files) {
    const text = fs.readFileSync(file, "utf8");
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g)) {
      const spec = m[1] ?? m[2]!;
      if (!allowed(spec)) offenders.push(`${path.relative(coreDir, file)}: ${spec}`);
    }
  }
  assert.deepEqual(offenders, []);
});
