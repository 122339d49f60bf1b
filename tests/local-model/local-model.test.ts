/**
 * The local model in workflows, end to end, on a tiny random checkpoint (hidden 64, 2 layers)
 * written into a temporary folder:
 *
 * - policy/local as the agent of step/zero-shot (fixtures/zero-shot-local.yaml), run by the real
 *   CLI (`node --import tsx core/src/cli/bin.ts run`, a process of its own): the run finishes,
 *   each problem has its program, and summary.json accounts the local model's calls and tokens;
 * - encoder/local + step/embed over the bundled problems read by dataset/jsonl
 *   (fixtures/embed-local.yaml): unit vectors of the model's hidden size, equal to embedding
 *   the same texts in this process; `run --resume` embeds nothing again;
 * - `bdc validate` stops a workflow with policy/local on a missing model folder, on
 *   `device: cuda` without the CUDA provider, and on `dtype: float16` on the CPU.
 *
 * Built ONNX models go to a temporary BDC_ONNX_CACHE, and policy/local runs with `cache: off`, so
 * nothing is written under the repository's .cache.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { cli } from "@bdc/core";
import { CausalLM, embedTexts, readVectorRows, writeTinyCheckpoint } from "@bdc/lm-local";
import { checkSandbox } from "@bdc/reward-python";
import { runBdc } from "../cli.ts";
import { CUDA_INSTALL_HINT, cudaUnavailableReason, webgpuUnavailableReason } from "../../plugins/onnx-graph/src/index.ts";

const here = import.meta.dirname;
const fixtures = path.join(here, "fixtures");
const repo = path.resolve(here, "../..");
const PROBLEMS = path.join(repo, "workflows/data/quickstart-problems.jsonl");
const HIDDEN = 64;

let tmp = "";
let model = "";
let onnxCache = "";

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-local-model-"));
  model = path.join(tmp, "tiny-llama");
  onnxCache = path.join(tmp, "onnx");
  writeTinyCheckpoint(model, { arch: "llama", layers: 2, hidden: HIDDEN, heads: 4, kvHeads: 2, seed: 11 });
  // For the in-process `validate` calls and the in-process embeddings below.
  process.env["BDC_ONNX_CACHE"] = onnxCache;
});
after(() => {
  if (tmp !== "") fs.rmSync(tmp, { recursive: true, force: true });
});

const bdc = (...args: string[]) => runBdc(fixtures, args, { onnxCache });

/** `bdc` in this process (no process start-up: for the quick `validate` calls). */
async function bdcInProcess(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await cli(args, { out: (t) => void (out += t), err: (t) => void (err += t), cwd: fixtures, env: { PATH: process.env["PATH"] }, isTTY: false });
  return { code, out, err };
}

const readJsonl = <T>(file: string): T[] =>
  fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as T);
const readJson = <T>(file: string): T => JSON.parse(fs.readFileSync(file, "utf8")) as T;

interface StepSummary {
  status: string;
  items: number;
  done: number;
  failed: number;
  resumed: number;
  summary?: Record<string, unknown>;
}
interface Summary {
  status: string;
  sessions: number;
  steps: Record<string, StepSummary>;
  instances?: Record<string, Record<string, number>>;
}

test("policy/local as the agent of step/zero-shot: the run finishes and summary.json accounts the model's calls", { timeout: 60_000 }, (t) => {
  const sandbox = checkSandbox().ok ? [] : ["--set", "plugins.reward.with.sandbox=none"];
  t.diagnostic(`reward sandbox: ${sandbox.length === 0 ? "bwrap" : "none (bubblewrap missing)"}`);
  const run = path.join(tmp, "zero-shot-run");
  const r = bdc("run", "zero-shot-local.yaml", "--set", `plugins.student.with.model=${model}`, ...sandbox, "--out", run);
  assert.equal(r.code, 0, `bdc run exited ${r.code}\n${r.err}\n${r.out}`);
  assert.equal(r.out.trim(), run, "stdout: the run directory");
  assert.match(r.err, /succeeded: 2 items done, 0 failed/);
  assert.match(r.err, /building the ONNX graph of .*tiny-llama/, "the first load builds the ONNX model (into BDC_ONNX_CACHE)");
  assert.ok(fs.readdirSync(onnxCache).length > 0, "the ONNX model was built in the temporary cache");

  const summary = readJson<Summary>(path.join(run, "summary.json"));
  assert.equal(summary.status, "succeeded");
  const solve = summary.steps["solve"]!;
  assert.deepEqual([solve.status, solve.items, solve.done, solve.failed], ["succeeded", 2, 2, 0]);
  const usage = summary.instances?.["student"];
  assert.ok(usage !== undefined, `summary.json has the policy instance's usage: ${JSON.stringify(summary.instances)}`);
  assert.equal(usage["calls"], 2, "one call per problem");
  assert.equal(usage["cached"], 0);
  assert.equal(usage["failed"], 0);
  assert.ok(usage["input_tokens"]! > 0, "input tokens counted");
  assert.ok(usage["output_tokens"]! > 0 && usage["output_tokens"]! <= 2 * 16, `output tokens counted, at most max_tokens per call: ${usage["output_tokens"]}`);

  const outputs = readJsonl<{ id: string; output: { code: string; public_pass_rate: number; agent: string } }>(path.join(run, "steps/solve/outputs.jsonl"));
  // Rows are written as items finish, and the two run concurrently: compare as a set.
  assert.deepEqual(outputs.map((o) => o.id).sort(), ["qs-0001-sum-two", "qs-0002-reverse-words"]);
  for (const o of outputs) {
    assert.equal(o.output.agent, "student");
    assert.equal(typeof o.output.code, "string");
    assert.ok(o.output.public_pass_rate >= 0 && o.output.public_pass_rate <= 1);
  }
  const calls = readJsonl<{ type: string; instance?: string; event?: string; cached?: boolean; output_tokens?: number }>(path.join(run, "events.jsonl")).filter(
    (e) => e.type === "plugin" && e.event === "llm.call",
  );
  assert.equal(calls.length, 2, "an llm.call event per call");
  for (const c of calls) assert.ok(c.instance === "student" && c.cached === false && c.output_tokens! > 0, JSON.stringify(c));
});

test("policy/local with attention: fused (ORT's GroupQueryAttention) writes the same programs as the plain graph (greedy)", { timeout: 60_000 }, () => {
  const sandbox = checkSandbox().ok ? [] : ["--set", "plugins.reward.with.sandbox=none"];
  const codes = (attention: string) => {
    const run = path.join(tmp, `zero-shot-${attention}`);
    const r = bdc("run", "zero-shot-local.yaml", "--set", `plugins.student.with.model=${model}`, "--set", `plugins.student.with.attention=${attention}`, ...sandbox, "--out", run);
    assert.equal(r.code, 0, r.err);
    return Object.fromEntries(readJsonl<{ id: string; output: { code: string } }>(path.join(run, "steps/solve/outputs.jsonl")).map((o) => [o.id, o.output.code]));
  };
  assert.deepEqual(codes("fused"), codes("ops"));
  // Fused attention keeps a resident cache: kv_cache: host with it is refused up front.
  const host = bdc("validate", "zero-shot-local.yaml", "--set", `plugins.student.with.model=${model}`, "--set", "plugins.student.with.attention=fused", "--set", "plugins.student.with.kv_cache=host");
  assert.equal(host.code, 2);
  assert.match(host.err, /plugins\.student\.with\.kv_cache {2}attention: fused keeps its cache as GroupQueryAttention lays it out, resident {2}\[BDC_CONFIG_VALUE\]/);
});

test("encoder/local + step/embed: a unit vector of the hidden size per row, the model's own; --resume embeds nothing again", { timeout: 60_000 }, async () => {
  const run = path.join(tmp, "embed-run");
  const first = bdc("run", "embed-local.yaml", "--set", `plugins.encoder.with.model=${model}`, "--out", run);
  assert.equal(first.code, 0, `bdc run exited ${first.code}\n${first.err}\n${first.out}`);

  const rows = fs
    .readFileSync(PROBLEMS, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as { problem_id: string; difficulty: string; question: string });
  const raw = readJsonl<{ id: string; output: { id: string; row: number; dimension: number; model: string; file: string } }>(path.join(run, "steps/embed/outputs.jsonl"));
  // The vectors are rows of the step's binary file, not JSON numbers.
  const outputs = raw.map(({ id, output }) => ({ id, output: { ...output, vector: Array.from(readVectorRows(path.join(run, "steps/embed", output.file), [output.row]).vectors) } }));
  assert.deepEqual(outputs.map((o) => o.id).sort(), rows.map((r) => r.problem_id).sort(), "one output per row");
  for (const { id, output } of outputs) {
    assert.deepEqual(Object.keys(raw.find((r) => r.id === id)!.output), ["id", "row", "dimension", "model", "file"]);
    assert.equal(output.id, id);
    assert.equal(output.dimension, HIDDEN, "dimension = the model's hidden size");
    assert.equal(output.vector.length, HIDDEN);
    assert.equal(output.model, model);
    const norm = Math.hypot(...output.vector);
    assert.ok(Math.abs(norm - 1) < 1e-5, `${id}: unit length (norm ${norm})`);
  }
  assert.ok(fs.existsSync(path.join(run, "steps/embed/embeddings.safetensors")), "the consolidated matrix in safetensors");
  // The same texts (the template "{difficulty}\n{question}") embedded here, with encoder/local's defaults.
  const lm = await CausalLM.load(model, { threads: 1, cacheDir: onnxCache });
  try {
    const expected = await embedTexts(lm, rows.map((r) => `${r.difficulty}\n${r.question}`), { pooling: "mean", maxTokens: 512 });
    rows.forEach((r, i) => {
      const got = outputs.find((o) => o.id === r.problem_id)!.output.vector;
      const diff = Math.max(...got.map((x, j) => Math.abs(x - expected[i]![j]!)));
      assert.ok(diff < 1e-5, `${r.problem_id}: the step's vector is the model's embedding of "{difficulty}\\n{question}" (max diff ${diff})`);
    });
    // Distinct texts, distinct vectors (not one constant vector for everything).
    const cos = outputs[0]!.output.vector.reduce((s, x, j) => s + x * outputs[1]!.output.vector[j]!, 0);
    assert.ok(cos < 0.99999, `different rows embed differently (cosine ${cos})`);
  } finally {
    await lm.dispose();
  }
  const firstSummary = readJson<Summary>(path.join(run, "summary.json"));
  assert.equal(firstSummary.instances?.["encoder"]?.["texts"], rows.length);
  assert.equal(firstSummary.steps["embed"]!.summary?.["embedded"], rows.length);
  assert.equal(firstSummary.steps["embed"]!.summary?.["dimension"], HIDDEN);

  const resumed = bdc("run", "--resume", run);
  assert.equal(resumed.code, 0, `bdc run --resume exited ${resumed.code}\n${resumed.err}\n${resumed.out}`);
  const summary = readJson<Summary>(path.join(run, "summary.json"));
  assert.equal(summary.status, "succeeded");
  assert.equal(summary.sessions, 2);
  const step = summary.steps["embed"]!;
  assert.equal(step.resumed, rows.length, "every row was already embedded");
  assert.equal(step.done, rows.length);
  assert.equal(step.summary?.["encoder_calls"], 0, "no encoder call in the resumed session");
  assert.equal(summary.instances?.["encoder"]?.["texts"], 0, "the encoder embedded nothing in the resumed session");
  assert.equal(readJsonl(path.join(run, "steps/embed/outputs.jsonl")).length, rows.length, "no output was written twice");
});

test("bdc validate: a missing model folder is BDC_MODEL_NOT_FOUND at plugins.<name>.with.model (exit 2)", async () => {
  const missing = path.join(tmp, "no-such-model");
  const r = await bdcInProcess("validate", "zero-shot-local.yaml", "--set", `plugins.student.with.model=${missing}`);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /plugins\.student\.with\.model {2}model .*no-such-model: .*no-such-model does not exist {2}\[BDC_MODEL_NOT_FOUND\]/);
  assert.match(r.err, /plugin: policy\/local/);
  assert.match(r.err, /hint: .*pnpm bdc models pull org\/name.*pnpm bdc models make-tiny --out /);

  // As the fixture has it (a relative folder that is not there): located at its line in the YAML.
  const asWritten = await bdcInProcess("validate", "zero-shot-local.yaml");
  assert.equal(asWritten.code, 2, asWritten.err);
  assert.match(asWritten.err, /zero-shot-local\.yaml:\d+:\d+ plugins\.student\.with\.model {2}model \/.*\/set-by-the-test: .* does not exist {2}\[BDC_MODEL_NOT_FOUND\]/);
});

test("bdc validate: device: cuda without the CUDA provider is BDC_DEVICE_UNAVAILABLE with the install hint; dtype: float16 on cpu is a config error", async (t) => {
  const ok = await bdcInProcess("validate", "zero-shot-local.yaml", "--set", `plugins.student.with.model=${model}`);
  assert.equal(ok.code, 0, `the fixture is valid with a model: ${ok.err}`);

  const cuda = await bdcInProcess("validate", "zero-shot-local.yaml", "--set", `plugins.student.with.model=${model}`, "--set", "plugins.student.with.device=cuda");
  const reason = cudaUnavailableReason();
  if (reason === undefined) {
    t.diagnostic("this machine has the CUDA provider: device: cuda validates");
    assert.equal(cuda.code, 0, cuda.err);
  } else {
    assert.equal(cuda.code, 2, cuda.err);
    assert.match(cuda.err, /plugins\.student\.with\.device {2}device: cuda, but .* {2}\[BDC_DEVICE_UNAVAILABLE\]/);
    const hintFirstLine = CUDA_INSTALL_HINT.split("\n")[0]!;
    assert.ok(cuda.err.includes(`hint: ${hintFirstLine}`), `the install hint:\n${cuda.err}`);
    assert.match(cuda.err, /ONNXRUNTIME_NODE_INSTALL=cuda12/);
  }

  const fp16 = await bdcInProcess("validate", "zero-shot-local.yaml", "--set", `plugins.student.with.model=${model}`, "--set", "plugins.student.with.dtype=float16");
  assert.equal(fp16.code, 2, fp16.err);
  assert.match(fp16.err, /plugins\.student\.with\.dtype {2}dtype: float16 is for a GPU .* {2}\[BDC_CONFIG_VALUE\]/);
  assert.match(fp16.err, /hint: remove dtype, or set device: webgpu or cuda/);
});

test("bdc validate: device: webgpu is probed (a one-node session on ORT's bundled WebGPU provider); without a GPU adapter it names what to install", async (t) => {
  const webgpu = await bdcInProcess("validate", "zero-shot-local.yaml", "--set", `plugins.student.with.model=${model}`, "--set", "plugins.student.with.device=webgpu", "--set", "plugins.student.with.dtype=float16");
  const reason = await webgpuUnavailableReason();
  if (reason === undefined) {
    t.diagnostic("this machine has a GPU adapter for WebGPU: device: webgpu with float16 validates");
    assert.equal(webgpu.code, 0, webgpu.err);
    return;
  }
  assert.equal(webgpu.code, 2, webgpu.err);
  assert.match(webgpu.err, /plugins\.student\.with\.device {2}device: webgpu, but .* {2}\[BDC_DEVICE_UNAVAILABLE\]/);
  assert.ok(webgpu.err.includes(reason), webgpu.err);
  assert.match(webgpu.err, /apt install libvulkan1/);
  assert.doesNotMatch(webgpu.err, /dtype/, "float16 is a valid compute type on a GPU");
  const id = await bdcInProcess("validate", "zero-shot-local.yaml", "--set", `plugins.student.with.model=${model}`, "--set", "plugins.student.with.device=webgpu", "--set", "plugins.student.with.device_id=1");
  assert.match(id.err, /plugins\.student\.with\.device_id {2}device: webgpu, but device_id is for CUDA/);
});
