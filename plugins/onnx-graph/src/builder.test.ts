import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import { GraphBuilder, END } from "./builder.ts";
import { dimAdd, dimDiv, dimEquals, dimMul } from "./dims.ts";
import { serializeInline, writeModel } from "./onnx-writer.ts";
import { cudaUnavailableReason, openSession, ort } from "./session.ts";

test("symbolic dims multiply, divide and add canonically", () => {
  assert.equal(dimMul("S", "B"), "B*S");
  assert.equal(dimMul(2, dimMul("S", 3)), "6*S");
  assert.equal(dimDiv("6*B*S", "3*S"), "2*B");
  assert.equal(dimDiv("B*S", "T"), undefined);
  assert.equal(dimAdd("P", "S"), "(P+S)");
  assert.ok(dimEquals(dimAdd("S", "P"), "(P+S)"));
  assert.equal(dimAdd(3, 4), 7);
  assert.equal(dimAdd("S", "S"), "2*S", "like terms combine");
  assert.equal(dimAdd(dimAdd("S", "P"), "S"), "(2*S+P)");
});

test("shapes are inferred through reshape(0, -1), transpose and matmul", () => {
  const g = new GraphBuilder("t");
  const x = g.input("x", "float32", ["B", "S", 8]);
  const w = g.weight("w", "float32", [8, 12], new Float32Array(96));
  const y = g.reshape(g.matMul(x, w), [0, 0, 3, -1]);
  assert.deepEqual(y.shape, ["B", "S", 3, 4]);
  const t = g.transpose(y, [0, 2, 1, 3]);
  assert.deepEqual(t.shape, ["B", 3, "S", 4]);
  const flat = g.reshape(t, [0, -1, 4]);
  assert.deepEqual(flat.shape, ["B", "3*S", 4]);
  const past = g.input("past", "float32", ["B", 3, "P", 4]);
  assert.deepEqual(g.concat([past, t], 2).shape, ["B", 3, "(P+S)", 4]);
});

test("a wrong graph fails where it is built, naming the node and the shapes", () => {
  const g = new GraphBuilder("t");
  const x = g.input("x", "float32", ["B", 8]);
  const w = g.weight("w", "float32", [7, 4], new Float32Array(28));
  assert.throws(
    () => g.scope("layers.0", () => g.scope("mlp", () => g.matMul(x, w))),
    (e: unknown) => e instanceof BdcError && e.code === "BDC_GRAPH_SHAPE" && /layers\.0\/mlp\/MatMul: MatMul inner dimensions differ: \[B, 8\] x \[7, 4\]/.test(e.message),
  );
  assert.throws(() => g.reshape(x, [3, -1]), /not divisible/);
  assert.throws(() => g.add(x, g.input("i", "int64", ["B", 8])), /different dtypes/);
  assert.throws(() => g.input("x", "float32", [1]), (e: unknown) => e instanceof BdcError && e.code === "BDC_GRAPH_NAME");
});

test("node names are deterministic: scope path, op, counter", () => {
  const names = () => {
    const g = new GraphBuilder("t");
    const x = g.input("x", "float32", [2]);
    g.scope("a", () => g.add(g.add(x, x), x));
    return g.build().nodes.map((n) => n.name);
  };
  assert.deepEqual(names(), ["a/Add", "a/Add_1"]);
  assert.deepEqual(names(), names());
});

test("a node's output becomes a graph output by renaming, not by a copying Identity node", () => {
  const g = new GraphBuilder("t");
  const x = g.input("x", "float32", [2]);
  const y = g.add(x, x);
  g.output(g.neg(y), "out");
  g.output(y, "sum");
  g.output(x, "x_again");
  const graph = g.build();
  assert.deepEqual(graph.nodes.map((n) => `${n.op}:${n.inputs.map((v) => v.name).join(",")}->${n.outputs.map((v) => v.name).join(",")}`), ["Add:x,x->sum", "Neg:sum->out", "Identity:x->x_again"]);
});

test("an inline model runs in ONNX Runtime and computes what it says", async () => {
  const g = new GraphBuilder("softmax-matmul");
  const x = g.input("x", "float32", ["B", 3]);
  const w = g.weight("w", "float32", [3, 2], Float32Array.from([1, 0, 0, 1, 1, 1]));
  const y = g.softmax(g.matMul(x, w), -1);
  const first = g.slice(y, [0], [1], [1]);
  g.output(y, "probs");
  g.output(g.squeeze(first, [1]), "first");
  const session = await openSession(serializeInline(g.build()), { device: "cpu", threads: 1 });
  const out = await session.run({ x: new ort.Tensor("float32", Float32Array.from([1, 2, 3, 0, 0, 0]), [2, 3]) });
  const probs = out["probs"]!.data as Float32Array;
  // row 0: logits [4, 5] -> softmax; row 1: [0, 0] -> 0.5/0.5
  const e = Math.exp(1);
  assert.ok(Math.abs(probs[0]! - 1 / (1 + e)) < 1e-6);
  assert.ok(Math.abs(probs[2]! - 0.5) < 1e-6);
  assert.deepEqual(out["first"]!.dims, [2]);
  assert.ok(END > 2 ** 52);
});

test("external data: weights are written beside the model at aligned offsets and load back", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-onnx-"));
  try {
    const g = new GraphBuilder("ext");
    const x = g.input("x", "float32", [1, 32]);
    let reads = 0;
    // w1 = 2 * identity (4 KiB: external), w2 = ones (128 bytes: inline).
    const w1 = g.weight("w1", "float32", [32, 32], () => {
      reads++;
      return Float32Array.from({ length: 32 * 32 }, (_, i) => (i % 33 === 0 ? 2 : 0));
    });
    const w2 = g.weight("w2", "float32", [32, 1], new Float32Array(32).fill(1));
    g.output(g.matMul(g.matMul(x, w1), w2), "y");
    const written = writeModel(g.build(), dir);
    assert.equal(reads, 1, "a lazy weight is read once, when written");
    assert.equal(written.dataBytes, 4096, "only w1 is external");
    const session = await openSession(written.modelPath, { device: "cpu", threads: 1 });
    const out = await session.run({ x: new ort.Tensor("float32", Float32Array.from({ length: 32 }, (_, i) => i), [1, 32]) });
    assert.deepEqual(Array.from(out["y"]!.data as Float32Array), [2 * (31 * 32) / 2]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("device: cuda without the provider library fails with the install hint, never runs on CPU", async (t) => {
  const reason = cudaUnavailableReason();
  if (reason === undefined) {
    t.skip("the CUDA provider is installed on this machine; the missing-provider path cannot be exercised");
    return;
  }
  const g = new GraphBuilder("c");
  g.output(g.neg(g.input("x", "float32", [1])), "y");
  await assert.rejects(openSession(serializeInline(g.build()), { device: "cuda" }), (e: unknown) => {
    assert.ok(e instanceof BdcError);
    assert.equal(e.code, "BDC_DEVICE_UNAVAILABLE");
    assert.match(e.message, /libonnxruntime_providers_cuda\.so/);
    assert.match(e.hint ?? "", /ONNXRUNTIME_NODE_INSTALL=cuda12/);
    return true;
  });
});
