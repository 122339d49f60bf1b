/**
 * encoder/onnx on tiny sentence-transformers folders the tests write (./tiny-sentence-model.ts:
 * a BERT-like ONNX graph, a WordPiece tokenizer.json in the BERT layout, 1_Pooling/config.json).
 * The expected vectors are the
 * same arithmetic done in plain JS (float64, compared at 1e-5), pooled as sentence-transformers'
 * Pooling module does.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { BdcError } from "@bdc/core";
import { PluginTester, testPlugin } from "@bdc/core/testing";
import type { Encoder } from "@bdc/policy";
import { encoderContract } from "@bdc/policy/testing";
import plugin from "../plugins/encoder-onnx.ts";
import { encodeTruncated, openSentenceEncoder, type PoolingMode } from "./sentence-encoder.ts";
import { H, VOCAB, writeTinySentenceModel, type FolderOptions, type Weights } from "./tiny-sentence-model.ts";

/** A folder under tmp; its weights' seed from its name. */
function writeFolder(name: string, o: FolderOptions = {}): { dir: string; w: Weights } {
  const dir = path.join(tmp, name);
  return { dir, w: writeTinySentenceModel(dir, o, name.length) };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-sentence-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The graph's token states for one unpadded sequence, in float64. */
function referenceStates(w: Weights, ids: number[]): Float64Array {
  const n = ids.length;
  const h0 = new Float64Array(n * H);
  ids.forEach((id, s) => {
    for (let j = 0; j < H; j++) h0[s * H + j] = w.E[id * H + j]! + w.T[j]!;
  });
  const out = new Float64Array(n * H);
  for (let q = 0; q < n; q++) {
    const scores = Array.from({ length: n }, (_, k) => {
      let dot = 0;
      for (let j = 0; j < H; j++) dot += h0[q * H + j]! * h0[k * H + j]!;
      return dot / Math.sqrt(H);
    });
    const max = Math.max(...scores);
    const e = scores.map((x) => Math.exp(x - max));
    const z = e.reduce((a, b) => a + b, 0);
    for (let j = 0; j < H; j++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += (e[k]! / z) * h0[k * H + j]!;
      out[q * H + j] = h0[q * H + j]! + acc;
    }
  }
  return out;
}

/** Mean over the tokens, written out (not the module's poolTokens). */
function refMean(states: Float64Array, n: number): number[] {
  return Array.from({ length: H }, (_, j) => {
    let acc = 0;
    for (let s = 0; s < n; s++) acc += states[s * H + j]!;
    return acc / n;
  });
}

function unit(v: ArrayLike<number>): number[] {
  const n = Math.hypot(...Array.from(v));
  return Array.from(v, (x) => x / n);
}

function close(actual: Float32Array, expected: number[], what: string) {
  assert.equal(actual.length, expected.length, what);
  const err = Math.max(...expected.map((x, i) => Math.abs(x - actual[i]!)));
  assert.ok(err < 1e-5, `${what}: max abs error ${err}`);
}

const ids = (...tokens: string[]) => tokens.map((t) => VOCAB.indexOf(t));
const cpu = { device: "cpu" as const, threads: 1 };

describe("sentence-encoder", () => {
  const { dir, w } = writeFolder("mean");

  test("the BERT tokenizer: lower-cased WordPiece between [CLS] and [SEP], unknown pieces as [UNK]", async () => {
    const enc = await openSentenceEncoder(dir, cpu);
    assert.deepEqual(enc.tokenizer.encode("Sorting the LIST!", { addSpecialTokens: true }), ids("[CLS]", "sort", "##ing", "the", "list", "[UNK]", "[SEP]"));
    await enc.close();
  });

  test("mean pooling (1_Pooling/config.json) over the unpadded tokens, normalised, whatever the batch", async () => {
    const enc = await openSentenceEncoder(dir, cpu);
    assert.deepEqual([enc.dimension, enc.pooling, enc.maxTokens, enc.onnxFile], [H, ["mean"], 64, "onnx/model.onnx"]);
    const texts = ["binary search over the answer", "def add(a, b): return a + b", "x", "dynamic programming over the graph, sorting the list"];
    const out = await enc.embed(texts, 2);
    texts.forEach((t, i) => {
      const tokens = enc.tokenizer.encode(t, { addSpecialTokens: true });
      const states = referenceStates(w, tokens);
      close(out[i]!, unit(refMean(states, tokens.length)), t);
    });
    await enc.close();
  });

  test("each pooling mode, and several concatenated in sentence-transformers' order", async () => {
    const tokens = ids("[CLS]", "binary", "search", "over", "the", "answer", "[SEP]");
    const states = referenceStates(w, tokens);
    const row = (s: number) => Array.from(states.subarray(s * H, (s + 1) * H));
    const mean = row(0).map((_, j) => tokens.reduce((a, _t, s) => a + row(s)[j]!, 0) / tokens.length);
    const expected: Record<PoolingMode, number[]> = {
      cls: row(0),
      lasttoken: row(tokens.length - 1),
      max: row(0).map((_, j) => Math.max(...tokens.map((_t, s) => row(s)[j]!))),
      mean,
      mean_sqrt_len: mean.map((x) => (x * tokens.length) / Math.sqrt(tokens.length)),
      weightedmean: row(0).map((_, j) => tokens.reduce((a, _t, s) => a + (s + 1) * row(s)[j]!, 0) / ((tokens.length * (tokens.length + 1)) / 2)),
    };
    for (const mode of Object.keys(expected) as PoolingMode[]) {
      const enc = await openSentenceEncoder(dir, { ...cpu, pooling: [mode] });
      close((await enc.embed(["binary search over the answer"], 4))[0]!, unit(expected[mode]), mode);
      await enc.close();
    }
    const both = writeFolder("cls-and-mean", { pooling: { pooling_mode_cls_token: true } });
    const enc = await openSentenceEncoder(both.dir, cpu);
    assert.deepEqual([enc.pooling, enc.dimension], [["cls", "mean"], 2 * H]);
    const s2 = referenceStates(both.w, tokens);
    const cls = Array.from(s2.subarray(0, H));
    const mean2 = cls.map((_, j) => tokens.reduce((a, _t, s) => a + s2[s * H + j]!, 0) / tokens.length);
    close((await enc.embed(["binary search over the answer"], 1))[0]!, unit([...cls, ...mean2]), "cls+mean");
    await enc.close();
  });

  test("truncation keeps [CLS] and [SEP] and drops content tokens", async () => {
    const enc = await openSentenceEncoder(dir, { ...cpu, maxTokens: 4 });
    assert.deepEqual(encodeTruncated(enc.tokenizer, "sort the list over the graph", 4), ids("[CLS]", "sort", "the", "[SEP]"));
    close((await enc.embed(["sort the list over the graph"], 1))[0]!, unit(refMean(referenceStates(w, ids("[CLS]", "sort", "the", "[SEP]")), 4)), "truncated");
    await enc.close();
  });

  test("a graph that pools itself (sentence_embedding, int32 inputs, no token_type_ids) is used as it is, normalised", async () => {
    const pooled = writeFolder("in-graph", { pooledInGraph: true, onnxFile: "model.onnx" });
    const enc = await openSentenceEncoder(pooled.dir, cpu);
    assert.deepEqual([enc.pooling, enc.onnxFile], ["in-graph", "model.onnx"]);
    const tokens = ids("[CLS]", "print", "x", "[SEP]");
    // The same attention as the reference, without type embeddings.
    const states = referenceStates({ E: pooled.w.E, T: new Float32Array(2 * H) }, tokens);
    close((await enc.embed(["print x", "sort the list over the graph"], 2))[0]!, unit(refMean(states, 4)), "in-graph mean");
    await enc.close();
  });

  test("clear errors: no ONNX file (naming the ones there), a Dense module, a pooling config with no mode", async () => {
    const quantOnly = writeFolder("quantized-only", { onnxFile: "onnx/model_quantized.onnx" });
    await assert.rejects(openSentenceEncoder(quantOnly.dir, cpu), (e: BdcError) => e.code === "BDC_MODEL_FILE_MISSING" && /it has onnx\/model_quantized\.onnx/.test(e.message) && /onnx_file: onnx\/model_quantized\.onnx/.test(e.hint ?? ""));
    assert.equal((await openSentenceEncoder(quantOnly.dir, { ...cpu, onnxFile: "onnx/model_quantized.onnx" })).dimension, H);
    const dense = writeFolder("dense", { modules: [{ idx: 0, name: "0", path: "", type: "sentence_transformers.models.Transformer" }, { idx: 1, name: "1", path: "1_Pooling", type: "sentence_transformers.models.Pooling" }, { idx: 2, name: "2", path: "2_Dense", type: "sentence_transformers.models.Dense" }] });
    await assert.rejects(openSentenceEncoder(dense.dir, cpu), (e: BdcError) => e.code === "BDC_MODEL_UNSUPPORTED" && /1 Dense module\(s\) after pooling \(2_Dense\)/.test(e.message));
    const none = writeFolder("no-mode", { pooling: { pooling_mode_mean_tokens: false } });
    await assert.rejects(openSentenceEncoder(none.dir, cpu), (e: BdcError) => e.code === "BDC_MODEL_FILE_INVALID" && /1_Pooling\/config\.json: turns no pooling mode on/.test(e.message));
  });
});

describe("encoder/onnx", () => {
  const { dir } = writeFolder("plugin");
  testPlugin(plugin, {
    valid: [{ model: dir }, { model: "org/name", pooling: ["cls", "mean"], batch_size: 4 }],
    invalid: [{ config: { model: dir, pooling: ["median"] }, code: "BDC_CONFIG_VALUE", path: "pooling[0]" }],
    contract: { config: { model: dir, threads: 1 }, slot: encoderContract },
  });

  test("preflight names a missing ONNX file and the pull command", async () => {
    const bare = path.join(tmp, "bare");
    fs.mkdirSync(bare, { recursive: true });
    fs.writeFileSync(path.join(bare, "config.json"), "{}");
    const problems = [...(await plugin.preflight!(new PluginTester(plugin).decode({ model: bare }) as never, { instance: "enc", baseDir: tmp, env: {} }))];
    assert.deepEqual(
      problems.map((p) => [p.code, p.path?.join(".")]),
      [["BDC_MODEL_FILE_MISSING", "model"], ["BDC_MODEL_FILE_MISSING", "model"]],
    );
    assert.match(problems[0]!.hint ?? "", /models pull .* --onnx/);
  });

  test("an instance embeds and releases its session on close", async () => {
    const enc = await new PluginTester(plugin).make<Encoder & { close(): Promise<void>; stats(): Record<string, number> }>({ model: dir, threads: 1 }, {}, { instance: "code", baseDir: tmp });
    assert.equal(enc.dimension, H);
    assert.equal((await enc.embed(["a", "b"])).length, 2);
    assert.deepEqual(enc.stats(), { texts: 2, calls: 1 });
    await enc.close();
  });
});
