/**
 * Training the hypernetwork end to end on a tiny model: the loss falls, the validation loss is
 * taken every epoch and the best epoch is what the folder keeps, a run stopped mid-way resumes
 * to the same parameters bit for bit, a finished run is not redone, and bad inputs (centroids of
 * another count or dimension, experts that differ) are refused before any work.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { initLoraAdapter, mulberry32, normalizeLoraConfig, readModelConfig, writePeftAdapter, writeSafetensors, writeTinyCheckpoint, type ModelConfig } from "@bdc/lm-local";
import { openHypernetComposer } from "./composer.ts";
import { HYPERNET_FILES, readHypernet } from "./hypernet.ts";
import { hashEncoder } from "./testing/hash-encoder.ts";
import { HYPERNET_TRAIN_DEFAULTS, trainHypernet, type HypernetTrainArgs } from "./train-hypernet.ts";

let root: string;
let dir: string;
let model: ModelConfig;
const encoder = hashEncoder(8);

function writeExpert(out: string, seed: number, rank = 2): string {
  const a = initLoraAdapter(model, normalizeLoraConfig({ rank, alpha: 2 * rank, rslora: false, dropout: 0, targets: ["q_proj", "v_proj"], layers: [0, 1] }, model), seed);
  const rand = mulberry32(seed + 5);
  for (const m of a.modules.values()) for (let i = 0; i < m.B.length; i++) m.B[i] = (rand() * 2 - 1) * 0.4;
  writePeftAdapter(out, a, model);
  return out;
}

function writeCentroids(file: string, k: number, d: number, metadataModel = encoder.model): string {
  const rand = mulberry32(k * 31 + d);
  writeSafetensors(file, [{ name: "centroids", dtype: "F32", shape: [k, d], data: Float32Array.from({ length: k * d }, () => rand() * 2 - 1) }], { model: metadataModel, dimension: String(d), k: String(k) });
  return file;
}

let args: HypernetTrainArgs;

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-train-hypernet-"));
  dir = path.join(root, "tiny");
  writeTinyCheckpoint(dir, { arch: "llama", layers: 2, hidden: 32, heads: 2, kvHeads: 1, vocab: 384, seed: 3, initStd: 0.1 });
  model = readModelConfig(dir);
  const rows = (n: number, offset: number) =>
    Array.from({ length: n }, (_, i) => {
      const fam = (i + offset) % 2 === 0 ? "alpha" : "beta";
      return JSON.stringify({ prompt: `${fam} task number ${i + offset}:`, completion: fam === "alpha" ? " one two three" : " three two one" });
    }).join("\n");
  fs.writeFileSync(path.join(root, "train.jsonl"), `${rows(6, 0)}\n`);
  fs.writeFileSync(path.join(root, "val.jsonl"), `${rows(2, 10)}\n`);
  args = {
    ...HYPERNET_TRAIN_DEFAULTS,
    model: dir,
    experts: [{ name: "c0", dir: writeExpert(path.join(root, "e0"), 1) }, { name: "c1", dir: writeExpert(path.join(root, "e1"), 2) }],
    centroids: writeCentroids(path.join(root, "centroids.safetensors"), 2, 8),
    data: path.join(root, "train.jsonl"),
    evalData: path.join(root, "val.jsonl"),
    out: path.join(root, "hn"),
    hidden: 8,
    lr: 3e-2,
    epochs: 3,
    saveSteps: 4,
    threads: 1,
    cacheDir: path.join(root, "onnx"),
  };
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

test("training lowers the loss, validates every epoch, keeps the best epoch; a rerun does nothing", async () => {
  const { report } = await trainHypernet(args, encoder);
  assert.equal(report.steps, 18);
  assert.equal(report.eval_loss_by_epoch.length, 3);
  const best = report.eval_loss_by_epoch.indexOf(Math.min(...report.eval_loss_by_epoch)) + 1;
  assert.equal(report.best_epoch, best);
  const events = fs.readFileSync(path.join(args.out, "events.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { type: string; loss?: number });
  const losses = events.filter((e) => e.type === "train.step").map((e) => e.loss!);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(mean(losses.slice(-6)) < mean(losses.slice(0, 6)), `last epoch ${mean(losses.slice(-6))} < first ${mean(losses.slice(0, 6))}`);
  const kept = readHypernet(args.out);
  assert.equal(kept.extra["kept"], "best");
  assert.equal(kept.extra["epoch"], best);
  assert.deepEqual(kept.config.experts, ["c0", "c1"]);
  assert.ok(fs.readFileSync(path.join(args.out, "loss.html"), "utf8").includes("<svg"));
  const again = await trainHypernet(args, encoder);
  assert.equal(again.alreadyDone, true);
});

test("a run stopped mid-way resumes from its checkpoint to the same parameters, bit for bit", async () => {
  const out = path.join(root, "hn-resume");
  const stop = new AbortController();
  await assert.rejects(
    trainHypernet({ ...args, out }, encoder, { signal: stop.signal, progress: (p) => (p.step === 7 ? stop.abort() : undefined) }),
    (e: Error & { code?: string }) => e.code === "BDC_INTERRUPTED",
  );
  assert.ok(fs.existsSync(path.join(out, "checkpoint-6")), "the epoch-end checkpoint is on disk");
  const lines: string[] = [];
  await trainHypernet({ ...args, out }, encoder, { log: (l) => lines.push(l) });
  assert.ok(lines.some((l) => /resuming from checkpoint-6/.test(l)));
  assert.deepEqual(fs.readFileSync(path.join(out, HYPERNET_FILES.weights)), fs.readFileSync(path.join(args.out, HYPERNET_FILES.weights)));
});

test("centroids of another count or dimension, and experts that differ, are refused before any work", async () => {
  const wrongK = { ...args, out: path.join(root, "x1"), centroids: writeCentroids(path.join(root, "c3.safetensors"), 3, 8) };
  await assert.rejects(trainHypernet(wrongK, encoder), (e: Error & { code?: string }) => e.code === "BDC_EXPERTS_MISMATCH" && /holds 3 centroids, but 2 experts/.test(e.message));
  const wrongD = { ...args, out: path.join(root, "x2"), centroids: writeCentroids(path.join(root, "c2d4.safetensors"), 2, 4) };
  await assert.rejects(trainHypernet(wrongD, encoder), (e: Error & { code?: string }) => e.code === "BDC_CLUSTER_DIMENSION" && /8-d/.test(e.message));
  const otherRank = { ...args, out: path.join(root, "x3"), experts: [args.experts[0]!, { name: "c1", dir: writeExpert(path.join(root, "e-r4"), 3, 4) }] };
  await assert.rejects(trainHypernet(otherRank, encoder), (e: Error & { code?: string }) => e.code === "BDC_EXPERTS_MISMATCH" && /expert c1 does not match expert c0: rank 4 vs 2/.test(e.message));
  await assert.rejects(trainHypernet({ ...args, out: path.join(root, "x4"), layers: [0, 5] }, encoder), /layer 5 is not adapted by the experts/);
  for (const x of ["x1", "x2", "x3", "x4"]) assert.equal(fs.existsSync(path.join(root, x)), false, `${x} was not created`);
});

test("inputs longer than the encoder's window are embedded truncated, counted and said - in training and when composing", async () => {
  const short = hashEncoder(8, 3);
  const lines: string[] = [];
  const { report } = await trainHypernet({ ...args, out: path.join(root, "trunc"), maxSteps: 1, epochs: 1 }, short, { log: (l) => lines.push(l) });
  // Every prompt ("alpha task number N:") has 4 words: all 6 training and 2 validation inputs are cut.
  assert.equal(report.embedding.truncated, 8);
  assert.ok(lines.some((l) => /8 of 8 inputs are longer than the encoder's window of 3 tokens \(hash-bow-8\) and were embedded truncated/.test(l)), lines.join("\n"));
  const warnings: string[] = [];
  const composer = openHypernetComposer({ hypernet: path.join(root, "trunc"), baseDir: root, name: "c", onTruncated: (m) => warnings.push(m) }, short);
  const composition = await composer.compose("one two three four five");
  await composer.compose("six seven eight nine");
  await composer.compose("short");
  assert.equal(composer.truncated(), 2);
  assert.equal(warnings.length, 1, "said once");
  assert.equal(composition.gates.size, 4);
  assert.deepEqual(composer.stack.experts, ["c0", "c1"]);
});
