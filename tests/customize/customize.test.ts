/**
 * Customize end to end by the real CLI, on tiny generated models: two experts and centroids ->
 * step/train-hypernet (a tiny sentence encoder on ONNX Runtime) -> the student composed per
 * problem (policy/local + composer/hypernet in step/zero-shot, scored on the hidden tests), which
 * records the experts each problem leaned on (outputs and gates.html) -> `bdc hypernet export`
 * of one input's composition as a PEFT folder, which, served as a plain adapter, answers that
 * input exactly as the composed student does.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { readModelConfig, readPeftAdapter } from "@bdc/lm-local";
import { checkSandbox } from "@bdc/reward-python";
import { runBdc } from "../cli.ts";
import { FIXTURES, makeTinyArtifacts, trainTinyHypernet } from "./tiny-artifacts.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-customize-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const bdc = (...args: string[]) => runBdc(FIXTURES, args, { onnxCache: path.join(tmp, "onnx"), timeoutMs: 180_000 });
const readJsonl = <T>(file: string): T[] => fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as T);

test("experts -> hypernetwork -> the student composed per problem (recorded, heatmap) -> one input's composition exported as PEFT", { timeout: 300_000 }, () => {
  const art = makeTinyArtifacts(tmp, { arch: "qwen2", seed: 4, trainRows: 4, valRows: 2, layers: [0, 1] });
  const { model, experts, sentence } = art;
  const config = readModelConfig(model);
  const run = path.join(tmp, "hn-run");
  const hypernet = trainTinyHypernet(art, run, path.join(tmp, "onnx"));
  const [out] = readJsonl<{ output: { hypernet: string; steps: number; best_epoch: number; eval_loss_by_epoch: number[]; experts: string[] } }>(path.join(run, "steps/hypernet/outputs.jsonl"));
  assert.equal(out!.output.steps, 8);
  assert.equal(out!.output.eval_loss_by_epoch.length, 2);
  assert.deepEqual(out!.output.experts, ["cluster-0", "cluster-1"]);
  assert.equal(path.join(run, out!.output.hypernet), hypernet);
  assert.ok(fs.existsSync(path.join(hypernet, "loss.html")));

  const sandbox = checkSandbox().ok ? [] : ["--set", "plugins.reward.with.sandbox=none"];
  const studentSets = ["--set", `plugins.encoder.with.model=${sentence}`, "--set", `plugins.disenlora.with.hypernet=${hypernet}`, "--set", `plugins.student.with.model=${model}`, ...sandbox];
  const use = bdc("run", "student.yaml", "--out", path.join(tmp, "student"), ...studentSets);
  assert.equal(use.code, 0, use.err);
  const solved = readJsonl<{ id: string; output: { composition: { experts: string[]; mass: number[]; modules: Record<string, number[]> } } }>(path.join(tmp, "student/steps/solve/outputs.jsonl"));
  assert.equal(solved.length, 2);
  for (const s of solved) {
    assert.deepEqual(s.output.composition.experts, ["cluster-0", "cluster-1"]);
    assert.ok(Math.abs(s.output.composition.mass[0]! + s.output.composition.mass[1]! - 1) < 1e-3);
    assert.deepEqual(Object.keys(s.output.composition.modules).sort(), ["0.q_proj", "0.v_proj", "1.q_proj", "1.v_proj"]);
  }
  const heatmap = fs.readFileSync(path.join(tmp, "student/steps/solve/gates.html"), "utf8");
  for (const s of solved) assert.ok(heatmap.includes(`>${s.id}</text>`), `the heatmap has a row for ${s.id}`);
  assert.match(fs.readFileSync(path.join(tmp, "student/report.html"), "utf8"), /steps\/solve\/gates\.html/);

  // One input's composition as a PEFT folder: served as a plain adapter, it answers that input as the composed student does.
  const prompt = "sum the numbers 7";
  const exported = path.join(tmp, "exported");
  const ex = bdc("hypernet", "export", "student.yaml", "disenlora", "--text", prompt, "--out", exported, ...studentSets);
  assert.equal(ex.code, 0, ex.err);
  assert.match(ex.err, /rank 4 \(2 experts x 2\)/);
  const adapter = readPeftAdapter(exported, config);
  assert.equal(adapter.config.rank, 4);
  const gates = JSON.parse(fs.readFileSync(path.join(exported, "gates.json"), "utf8")) as { gates: Record<string, number[]>; mass: number[] };
  for (const g of Object.values(gates.gates)) assert.ok(Math.abs(g.reduce((a, b) => a + b, 0) - 1) < 1e-5);
  const composed = bdc("ask", "student.yaml", "student", prompt, ...studentSets);
  const plain = bdc("ask", "exported.yaml", "student", prompt, "--set", `plugins.student.with.model=${model}`, "--set", `plugins.student.with.adapter=${exported}`);
  assert.equal(composed.code, 0, composed.err);
  assert.equal(plain.code, 0, plain.err);
  assert.ok(composed.out.trim().length > 0, "the student answered");
  assert.equal(plain.out, composed.out);

  // The export names a composer instance; anything else is refused with the ones there are.
  const notComposer = bdc("hypernet", "export", "student.yaml", "disenlor", "--text", prompt, "--out", path.join(tmp, "x"), ...studentSets);
  assert.equal(notComposer.code, 2, notComposer.err);
  assert.match(notComposer.err, /no enabled composer\/hypernet instance named "disenlor"[\s\S]*disenlora/);

  // A hypernetwork over other experts is refused when the student is built.
  const wrong = bdc("run", "student.yaml", "--out", path.join(tmp, "wrong"), ...studentSets, "--set", `plugins.disenlora.with.experts=[${experts[0]}]`);
  assert.equal(wrong.code, 1, wrong.err);
  assert.match(wrong.err, /gates 2 experts \(cluster-0, cluster-1\); 1 expert folders were given/);
});
