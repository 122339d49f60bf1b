/**
 * A run killed at any moment (SIGKILL: no handler runs) loses no finished item and, resumed,
 * redoes none of them; Ctrl-C (SIGINT) stops cleanly with exit 130 and a resumable run.
 */
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";

const here = import.meta.dirname;
const bin = path.resolve(here, "../../../core/src/cli/bin.ts");
const workflow = path.join(here, "workflow.yaml");
const N = 60;

const lines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "") : []);
const outputs = (dir: string) => lines(path.join(dir, "steps/work/outputs.jsonl")).map((l) => (JSON.parse(l) as { id: string }).id);
const executions = (dir: string) => lines(path.join(dir, "steps/work/executions.log")).map((l) => l.split(" ") as [string, string]);

/** Starts `bdc run`, waits until at least `after` items are finished, then sends `signal`. */
async function runAndStop(args: string[], dir: string, after: number, signal: NodeJS.Signals): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", bin, ...args], { cwd: here, env: { ...process.env, NO_COLOR: "1" } });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (outputs(dir).length < after && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 5));
  child.kill(signal);
  return { code: await exited, stderr };
}

function resume(dir: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", bin, "run", "--resume", dir, "--quiet"], { cwd: here, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  return { status: r.status, stderr: r.stderr };
}

test("SIGKILL at any moment loses no finished item, and resume redoes none", { timeout: 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-kill-"));
  const run = path.join(dir, "run");
  try {
    // Kill twice at different points, the second time during a resumed session.
    const first = await runAndStop(["run", workflow, "--out", run, "--quiet"], run, 9, "SIGKILL");
    assert.equal(first.code, null, "the first session was killed");
    const afterFirst = new Set(outputs(run));
    assert.ok(afterFirst.size >= 9 && afterFirst.size < N, `killed mid-way (${afterFirst.size} finished)`);

    const second = await runAndStop(["run", "--resume", run, "--quiet"], run, afterFirst.size + 11, "SIGKILL");
    assert.equal(second.code, null, "the second session was killed");
    const afterSecond = new Set(outputs(run));
    for (const id of afterFirst) assert.ok(afterSecond.has(id), `finished item ${id} survived the second kill`);

    const last = resume(run);
    assert.equal(last.status, 0, last.stderr);

    const ids = outputs(run);
    assert.equal(ids.length, N, "every item finished exactly once");
    assert.equal(new Set(ids).size, N, "no item is stored twice");

    // An item finished in an earlier session never runs again in a later one.
    const finishedBy = new Map<string, number>(); // id -> index of the session that finished it
    const sessions = [...new Set(executions(run).map(([pid]) => pid))];
    assert.equal(sessions.length, 3, "three sessions ran items");
    for (const id of afterFirst) finishedBy.set(id, 0);
    for (const id of afterSecond) if (!finishedBy.has(id)) finishedBy.set(id, 1);
    for (const [pid, id] of executions(run)) {
      const session = sessions.indexOf(pid);
      const done = finishedBy.get(id);
      assert.ok(done === undefined || session <= done, `item ${id} finished in session ${done} was run again in session ${session}`);
    }

    const summary = JSON.parse(fs.readFileSync(path.join(run, "summary.json"), "utf8"));
    assert.equal(summary.status, "succeeded");
    assert.equal(summary.sessions, 3, "killed sessions count too");
    assert.equal(summary.steps.work.done, N);
    assert.equal(summary.steps.work.resumed, afterSecond.size);
    assert.equal(lines(path.join(run, "steps/export/export.jsonl")).length, N, "the export after resume sees all items");
    // events.jsonl is valid JSON line by line even across kills.
    for (const l of lines(path.join(run, "events.jsonl"))) assert.doesNotThrow(() => JSON.parse(l), l);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("Ctrl-C stops cleanly with exit 130; the run resumes to the end", { timeout: 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-int-"));
  const run = path.join(dir, "run");
  try {
    const stopped = await runAndStop(["run", workflow, "--out", run], run, 8, "SIGINT");
    assert.equal(stopped.code, 130, stopped.stderr);
    assert.match(stopped.stderr, /stopping; finished work is saved/);
    assert.match(stopped.stderr, /resume with: pnpm bdc run --resume /);
    const summary = JSON.parse(fs.readFileSync(path.join(run, "summary.json"), "utf8"));
    assert.equal(summary.status, "interrupted");
    assert.ok(fs.existsSync(path.join(run, "report.html")));
    assert.ok(!fs.existsSync(path.join(run, "run.lock")), "the lock is released");
    const before = outputs(run).length;

    const last = resume(run);
    assert.equal(last.status, 0, last.stderr);
    const after = JSON.parse(fs.readFileSync(path.join(run, "summary.json"), "utf8"));
    assert.equal(after.status, "succeeded");
    assert.equal(after.steps.work.resumed, before);
    assert.equal(new Set(outputs(run)).size, N);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
