/**
 * Hypernetwork training killed with SIGKILL at several moments (`bdc run`), and resumed each
 * time with `bdc run --resume`: the kept hypernetwork is bit-identical to an uninterrupted run's
 * (same thread count), its validation losses per epoch the same.
 */
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { FIXTURES, hypernetSets, makeTinyArtifacts } from "./tiny-artifacts.ts";

const repo = path.resolve(import.meta.dirname, "../..");
const bin = path.join(repo, "core/src/cli/bin.ts");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-hypernet-kill-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const env = { ...process.env, INIT_CWD: undefined, npm_lifecycle_event: undefined, BDC_ONNX_CACHE: path.join(tmp, "onnx"), NO_COLOR: "1" };

const steps = (run: string) => {
  try {
    return fs.readFileSync(path.join(run, "steps/hypernet/hypernet/events.jsonl"), "utf8").split("\n").filter((l) => l.includes('"train.step"')).length;
  } catch {
    return 0;
  }
};

test("kill -9 during hypernetwork training, then bdc run --resume: the kept hypernetwork is bit-identical", { timeout: 240_000 }, async (t) => {
  const art = makeTinyArtifacts(tmp, { arch: "llama", seed: 8, trainRows: 24, valRows: 3 });
  const sets = hypernetSets(art, { "hypernet.with.epochs": "3", "hypernet.with.save_steps": "5" });
  const cli = (...args: string[]) => ["--import", "tsx", bin, ...args];

  const straight = path.join(tmp, "straight");
  const r = spawnSync(process.execPath, cli("run", "hypernet.yaml", "--out", straight, "--quiet", ...sets), { cwd: FIXTURES, env, encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);

  const killed = path.join(tmp, "killed");
  const killedAt: number[] = [];
  for (const [i, atStep] of [3, 17, 30, 52].entries()) {
    const args = i === 0 ? cli("run", "hypernet.yaml", "--out", killed, "--quiet", ...sets) : cli("run", "--resume", killed, "--quiet");
    const child = spawn(process.execPath, args, { cwd: FIXTURES, env, stdio: "ignore" });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    let done = false;
    void exited.then(() => (done = true));
    while (!done && steps(killed) < atStep) await new Promise((res) => setTimeout(res, 2));
    assert.ok(!done, `the run ended before step ${atStep}`);
    child.kill("SIGKILL");
    await exited;
    killedAt.push(steps(killed));
  }
  const last = spawnSync(process.execPath, cli("run", "--resume", killed, "--quiet"), { cwd: FIXTURES, env, encoding: "utf8", timeout: 120_000 });
  assert.equal(last.status, 0, last.stderr);
  t.diagnostic(`killed after ${killedAt.join(", ")} logged steps (of 72)`);
  const file = "steps/hypernet/hypernet/hypernet.safetensors";
  assert.ok(fs.readFileSync(path.join(killed, file)).equals(fs.readFileSync(path.join(straight, file))), "bit-identical");
  const report = (run: string) => JSON.parse(fs.readFileSync(path.join(run, "steps/hypernet/hypernet/train_report.json"), "utf8")) as { eval_loss_by_epoch: number[]; best_epoch: number; resumed_from_step?: number };
  assert.deepEqual(report(killed).eval_loss_by_epoch, report(straight).eval_loss_by_epoch);
  assert.ok((report(killed).resumed_from_step ?? 0) > 0);
  assert.deepEqual(fs.readdirSync(path.join(killed, "steps/hypernet/hypernet")).filter((n) => n.startsWith(".")), [], "no temporary checkpoint folder is left");
});
