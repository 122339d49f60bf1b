/**
 * `bdc run --resume DIR` with --set or --overlay is never silently ignored: a value that changes
 * the resolved workflow is refused (BDC_RESUME_MISMATCH, naming the key, its old and new value);
 * one that resolves to the same workflow is accepted.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { cli } from "@bdc/core";

const here = import.meta.dirname;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-resume-set-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function bdc(...args: string[]): Promise<{ code: number; err: string }> {
  let err = "";
  const code = await cli(args, { out: () => {}, err: (t) => void (err += t), cwd: here, env: { PATH: process.env.PATH }, isTTY: false });
  return { code, err };
}

test("--resume with --set: a change is refused naming the key and both values; the same values are accepted", async () => {
  const run = path.join(tmp, "run");
  assert.equal((await bdc("run", "workflow.yaml", "--out", run, "--quiet")).code, 0);
  const changed = await bdc("run", "--resume", run, "--set", "plugins.work.with.ms=5", "--quiet");
  assert.equal(changed.code, 2, changed.err);
  assert.match(changed.err, /the workflow resolves differently from the run in .*: plugins\.work\.with\.ms was 1, now 5 +\[BDC_RESUME_MISMATCH\]/);
  const overlay = path.join(tmp, "more.yaml");
  fs.writeFileSync(overlay, "plugins:\n  items: { with: { n: 4 } }\n");
  const overlaid = await bdc("run", "--resume", run, "--overlay", overlay, "--quiet");
  assert.equal(overlaid.code, 2);
  assert.match(overlaid.err, /plugins\.items\.with\.n was 3, now 4/);
  const same = await bdc("run", "--resume", run, "--set", "plugins.work.with.ms=1", "--quiet");
  assert.equal(same.code, 0, same.err);
});
