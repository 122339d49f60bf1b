/**
 * Every TypeScript example in README.md typechecks as written: each ```ts block becomes a file in
 * a temporary folder inside the project (so that @bdc/* and effect resolve as they would for a
 * plugin author) and tsc checks them with the project's compiler options.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

const repo = path.resolve(import.meta.dirname, "..");

test("README.md's TypeScript examples typecheck", { timeout: 120_000 }, () => {
  const readme = fs.readFileSync(path.join(repo, "README.md"), "utf8");
  const blocks = [...readme.matchAll(/^( *)```ts\n([\s\S]*?)^\1```/gm)].map((m) => m[2]!.split("\n").map((l) => l.slice(m[1]!.length)).join("\n"));
  assert.ok(blocks.length >= 2, "the README has TypeScript examples");
  const dir = fs.mkdtempSync(path.join(repo, "tests", ".readme-examples-"));
  try {
    blocks.forEach((code, i) => fs.writeFileSync(path.join(dir, `example-${i + 1}.ts`), code));
    // A test example imports "./jsonl-dataset.ts" as a plugin author's own file would be: give it one.
    fs.writeFileSync(path.join(dir, "jsonl-dataset.ts"), 'export { default } from "../../plugins/basics/src/jsonl-dataset.ts";\n');
    fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({ extends: "../../tsconfig.json", include: ["*.ts"] }));
    const r = spawnSync(process.execPath, [path.join(repo, "node_modules/typescript/bin/tsc"), "-p", path.join(dir, "tsconfig.json")], { encoding: "utf8", cwd: repo });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}\n${blocks.map((b, i) => `--- example-${i + 1}.ts\n${b}`).join("\n")}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
