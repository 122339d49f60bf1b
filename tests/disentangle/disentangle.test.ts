/**
 * Disentangle end to end by the real CLI, on a tiny generated model: training pairs -> embed
 * (binary vectors) -> cluster (K = 2: labels, centroids, one JSONL per cluster, the map) -> one
 * expert per cluster (a fan-out over the clusters) -> a TIES merge of the experts -> generation
 * with the merged adapter (policy/local in step/zero-shot). `run --resume` redoes nothing. Then
 * the same rows routed to the stored centroids (the same clusters), and an encoder of another
 * dimension (encoder/onnx, 8-d) refused against them.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { openSafetensorsFile, readModelConfig, readPeftAdapter, writeTinyCheckpoint, writeTinySentenceModel } from "@bdc/lm-local";
import { checkSandbox } from "@bdc/reward-python";
import { runBdc } from "../cli.ts";

const here = import.meta.dirname;
const repo = path.resolve(here, "../..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-disentangle-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const bdc = (cwd: string, ...args: string[]) => runBdc(cwd, args, { onnxCache: path.join(tmp, "onnx"), timeoutMs: 180_000 });

const readJsonl = <T>(file: string): T[] => fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as T);

test("pairs -> embed -> cluster -> an expert per cluster -> TIES merge -> generation with the merged adapter", { timeout: 240_000 }, () => {
  const model = path.join(tmp, "tiny");
  writeTinyCheckpoint(model, { arch: "llama", layers: 2, hidden: 64, heads: 4, kvHeads: 2, seed: 6 });
  const run = path.join(tmp, "run");
  const sets = ["encoder", "expert", "merge"].flatMap((i) => ["--set", `plugins.${i}.with.model=${model}`]);
  const r = bdc(path.join(here, "fixtures"), "run", "disentangle.yaml", ...sets, "--out", run);
  assert.equal(r.code, 0, r.err);

  // Clusters: two, covering the 16 rows; centroids [2, 64] of unit length; the rows split; a map.
  const [cluster] = readJsonl<{ output: { k: number; sizes: number[]; clusters: Array<{ id: string; data: string; size: number }>; centroids: string; map: string } }>(path.join(run, "steps/cluster/outputs.jsonl"));
  const c = cluster!.output;
  assert.equal(c.k, 2);
  assert.equal(c.sizes.reduce((a, b) => a + b, 0), 16);
  assert.ok(c.sizes.every((s) => s > 0));
  const centroids = openSafetensorsFile(path.join(run, c.centroids));
  assert.deepEqual(centroids.info("centroids").shape, [2, 64]);
  const cv = centroids.readFloat32("centroids");
  for (let k = 0; k < 2; k++) assert.ok(Math.abs(Math.hypot(...cv.subarray(k * 64, (k + 1) * 64)) - 1) < 1e-5);
  centroids.close();
  for (const cl of c.clusters) assert.equal(fs.readFileSync(path.join(run, cl.data), "utf8").trim().split("\n").length, cl.size);
  assert.match(fs.readFileSync(path.join(run, c.map), "utf8"), /<svg[^>]*>(<circle[^>]*><title>cluster \d: [^<]+<\/title><\/circle>){16}/);

  // One expert per cluster, then their TIES merge.
  const experts = readJsonl<{ id: string; output: { adapter: string; steps: number } }>(path.join(run, "steps/expert/outputs.jsonl"));
  assert.deepEqual(experts.map((e) => e.id).sort(), ["cluster-0", "cluster-1"]);
  const config = readModelConfig(model);
  for (const e of experts) assert.equal(readPeftAdapter(path.join(run, e.output.adapter), config).config.rank, 8);
  const [merged] = readJsonl<{ output: { merged: string; method: string; rank: number; energy_kept: number; adapters: string[] } }>(path.join(run, "steps/merge/outputs.jsonl"));
  assert.deepEqual([merged!.output.method, merged!.output.rank, merged!.output.adapters.length], ["ties", 8, 2]);
  assert.ok(merged!.output.energy_kept > 0 && merged!.output.energy_kept <= 1);
  const mergedDir = path.join(run, merged!.output.merged);
  readPeftAdapter(mergedDir, config);
  assert.match(fs.readFileSync(path.join(run, "report.html"), "utf8"), /steps\/cluster\/map\.html/);

  const again = bdc(path.join(here, "fixtures"), "run", "--resume", run);
  assert.equal(again.code, 0, again.err);
  assert.doesNotMatch(again.err, /step \d+\/\d+ loss/, "nothing is trained again");

  const sandbox = checkSandbox().ok ? [] : ["--set", "plugins.reward.with.sandbox=none"];
  const use = bdc(path.join(repo, "tests/local-model/fixtures"), "run", "zero-shot-local.yaml", "--set", `plugins.student.with.model=${model}`, "--set", `plugins.student.with.adapter=${mergedDir}`, ...sandbox, "--out", path.join(tmp, "use"));
  assert.equal(use.code, 0, use.err);
  assert.match(use.err, /succeeded: 2 items done, 0 failed/);

  // Routing: the same rows, embedded again, fall in the same stored clusters.
  const labelsOf = (file: string) => readJsonl<{ id: string; cluster: number }>(file).map((l) => `${l.id}:${l.cluster}`).sort();
  const stored = path.join(run, c.centroids);
  const routed = bdc(path.join(here, "fixtures"), "run", "route.yaml", "--set", `plugins.encoder.with.model=${model}`, "--set", `plugins.route.with.centroids=${stored}`, "--out", path.join(tmp, "route"));
  assert.equal(routed.code, 0, routed.err);
  assert.deepEqual(labelsOf(path.join(tmp, "route/steps/route/labels.jsonl")), labelsOf(path.join(run, "steps/cluster/labels.jsonl")));

  const sentence = path.join(tmp, "sentence");
  writeTinySentenceModel(sentence);
  const other = bdc(path.join(here, "fixtures"), "run", "route.yaml", "--set", "plugins.encoder.use=encoder/onnx", "--set", `plugins.encoder.with.model=${sentence}`, "--set", `plugins.route.with.centroids=${stored}`, "--out", path.join(tmp, "route-8d"));
  assert.equal(other.code, 1, other.err);
  const [failure] = (JSON.parse(fs.readFileSync(path.join(tmp, "route-8d/summary.json"), "utf8")) as { steps: Record<string, { failures: Array<{ code: string; message: string }> }> }).steps["route"]!.failures;
  assert.equal(failure!.code, "BDC_CLUSTER_DIMENSION");
  assert.match(other.err, /\n {2}\[route\] [^:]+: the vectors are 8-d .* {2}\[BDC_CLUSTER_DIMENSION\]\n/, `the cause is on stderr too: ${other.err}`);
  assert.match(failure!.message, /^the vectors are 8-d \(encoder model .*sentence\), but the centroids in .*centroids\.safetensors are 64-d \(encoder model .*tiny\)$/);
});
