/**
 * Every gradient rule against central finite differences. The graphs run in float64 on ONNX
 * Runtime, so a difference quotient with h = 1e-5 is accurate to ~1e-10 and the analytic
 * gradient must match it to 1e-7 (relative to max(1, |gradient|)). Each case builds y = op(...)
 * and differentiates L = sum(y * w) for a random w, with respect to every float input.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BdcError } from "@bdc/core";
import { DIFFERENTIABLE_OPS, gradients } from "./autodiff.ts";
import { GraphBuilder } from "./builder.ts";
import type { Shape } from "./dims.ts";
import type { Value } from "./graph.ts";
import { serializeInline } from "./onnx-writer.ts";
import { openSession, ort } from "./session.ts";

const H = 1e-5;
const TOL = 1e-7;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Fed {
  readonly value: Value;
  /** Runtime shape (symbolic dims resolved). */
  readonly dims: number[];
  readonly data: Float64Array | BigInt64Array | Uint8Array;
}

interface Case {
  readonly inputs: Fed[];
  readonly y: Value;
  /** The runtime shape of y. */
  readonly yDims: number[];
}

/** Random float64 input: uniform in [lo, hi). */
function floatIn(g: GraphBuilder, name: string, shape: Shape, dims: number[], r: () => number, lo = -1, hi = 1): Fed {
  const n = dims.reduce((a, b) => a * b, 1);
  return { value: g.input(name, "float64", shape), dims, data: Float64Array.from({ length: n }, () => lo + (hi - lo) * r()) };
}

function intIn(g: GraphBuilder, name: string, dims: number[], values: number[]): Fed {
  return { value: g.input(name, "int64", dims), dims, data: BigInt64Array.from(values.map(BigInt)) };
}

async function check(name: string, build: (g: GraphBuilder, r: () => number) => Case, h = H, tol = TOL): Promise<void> {
  const seed = 1;
  const r = rng(seed);
  const g = new GraphBuilder(name);
  const c = build(g, r);
  const yCount = c.yDims.reduce((a, b) => a * b, 1);
  const w = g.input("w", c.y.dtype, c.y.shape);
  const loss = g.reduceSum(g.mul(c.y, w), c.y.shape.map((_, i) => i), false);
  g.output(loss, "loss");
  const wrt = c.inputs.filter((f) => f.value.dtype === "float64");
  const grads = gradients(g, { loss, wrt: wrt.map((f) => f.value) });
  grads.forEach((gr, i) => {
    assert.deepEqual(gr.shape, wrt[i]!.value.shape, `${name}: gradient shape of ${wrt[i]!.value.name}`);
    g.output(gr, `grad.${wrt[i]!.value.name}`);
  });
  const session = await openSession(serializeInline(g.build()), { device: "cpu", threads: 1 });
  try {
    const wData = Float64Array.from({ length: yCount }, () => r() * 2 - 1);
    const feeds = (override?: { index: number; data: Float64Array }) => {
      const f: Record<string, ort.Tensor> = { w: new ort.Tensor(c.y.dtype === "float64" ? "float64" : "float32", c.y.dtype === "float64" ? wData : Float32Array.from(wData), c.yDims) };
      c.inputs.forEach((x, k) => {
        const data = override?.index === k ? override.data : x.data;
        f[x.value.name] = new ort.Tensor(x.value.dtype === "float64" ? "float64" : x.value.dtype === "bool" ? "bool" : "int64", data, x.dims);
      });
      return f;
    };
    const out = await session.run(feeds());
    for (const [k, f] of c.inputs.entries()) {
      if (f.value.dtype !== "float64") continue;
      const analytic = out[`grad.${f.value.name}`]!.data as Float64Array;
      const x = f.data as Float64Array;
      assert.equal(analytic.length, x.length, `${name}: gradient of ${f.value.name} has ${analytic.length} values, the input ${x.length}`);
      for (let i = 0; i < x.length; i++) {
        const plus = x.slice();
        plus[i]! += h;
        const minus = x.slice();
        minus[i]! -= h;
        const lp = (await session.run(feeds({ index: k, data: plus })))["loss"]!.data[0] as number;
        const lm = (await session.run(feeds({ index: k, data: minus })))["loss"]!.data[0] as number;
        const fd = (lp - lm) / (2 * h);
        const a = analytic[i]!;
        assert.ok(Math.abs(fd - a) <= tol * Math.max(1, Math.abs(fd)), `${name}: d/d ${f.value.name}[${i}]: analytic ${a}, finite difference ${fd}`);
      }
    }
  } finally {
    await session.release();
  }
}

const covered = new Set<string>();
function rule(op: string, title: string, build: (g: GraphBuilder, r: () => number) => Case, h = H, tol = TOL): void {
  covered.add(op);
  test(`gradient of ${op}: ${title}`, () => check(`${op}-${title}`, build, h, tol));
}

const unary = (op: string, f: (g: GraphBuilder, x: Value) => Value, lo = -1, hi = 1) =>
  rule(op, "element-wise", (g, r) => {
    const x = floatIn(g, "x", [2, 3], [2, 3], r, lo, hi);
    return { inputs: [x], y: f(g, x.value), yDims: [2, 3] };
  });

rule("Add", "broadcast over leading and size-1 axes", (g, r) => {
  const a = floatIn(g, "a", [2, 3, 4], [2, 3, 4], r);
  const b = floatIn(g, "b", [3, 1], [3, 1], r);
  return { inputs: [a, b], y: g.add(a.value, b.value), yDims: [2, 3, 4] };
});
rule("Add", "symbolic batch axes against a vector", (g, r) => {
  const a = floatIn(g, "a", ["B", "S", 4], [2, 3, 4], r);
  const b = floatIn(g, "b", [4], [4], r);
  return { inputs: [a, b], y: g.add(b.value, a.value), yDims: [2, 3, 4] };
});
rule("Sub", "broadcast", (g, r) => {
  const a = floatIn(g, "a", [4], [4], r);
  const b = floatIn(g, "b", [2, 4], [2, 4], r);
  return { inputs: [a, b], y: g.sub(a.value, b.value), yDims: [2, 4] };
});
rule("Mul", "broadcast both ways", (g, r) => {
  const a = floatIn(g, "a", [2, 1, 4], [2, 1, 4], r);
  const b = floatIn(g, "b", [3, 1], [3, 1], r);
  return { inputs: [a, b], y: g.mul(a.value, b.value), yDims: [2, 3, 4] };
});
rule("Mul", "the same value on both sides", (g, r) => {
  const a = floatIn(g, "a", [5], [5], r);
  return { inputs: [a], y: g.mul(a.value, a.value), yDims: [5] };
});
rule("Div", "broadcast divisor", (g, r) => {
  const a = floatIn(g, "a", [2, 3], [2, 3], r);
  const b = floatIn(g, "b", [2, 1], [2, 1], r, 0.5, 2);
  return { inputs: [a, b], y: g.div(a.value, b.value), yDims: [2, 3] };
});
rule("Sum", "three operands with broadcasting", (g, r) => {
  const a = floatIn(g, "a", [2, 3], [2, 3], r);
  const b = floatIn(g, "b", [3], [3], r);
  const c = floatIn(g, "c", [2, 1], [2, 1], r);
  return { inputs: [a, b, c], y: g.sum([a.value, b.value, c.value]), yDims: [2, 3] };
});
rule("Pow", "constant exponent (the RMSNorm square)", (g, r) => {
  const x = floatIn(g, "x", [2, 3], [2, 3], r);
  return { inputs: [x], y: g.add(g.pow(x.value, g.scalar(2, "float64")), g.pow(x.value, g.scalar(3, "float64"))), yDims: [2, 3] };
});
unary("Neg", (g, x) => g.neg(x));
unary("Sqrt", (g, x) => g.sqrt(x), 0.5, 2);
unary("Reciprocal", (g, x) => g.reciprocal(x), 0.5, 2);
unary("Exp", (g, x) => g.exp(x));
unary("Log", (g, x) => g.log(x), 0.5, 2);
unary("Sigmoid", (g, x) => g.sigmoid(x), -3, 3);
unary("Cos", (g, x) => g.cos(x), -3, 3);
unary("Sin", (g, x) => g.sin(x), -3, 3);
unary("Identity", (g, x) => g.node("Identity", [x], [{ dtype: x.dtype, shape: x.shape }])[0]!);
rule("Relu", "away from the kink", (g, r) => {
  const x = floatIn(g, "x", [2, 4], [2, 4], r);
  const d = x.data as Float64Array;
  d.forEach((v, i) => (d[i] = v < 0 ? v - 0.1 : v + 0.1));
  return { inputs: [x], y: g.relu(x.value), yDims: [2, 4] };
});
// The path is linear, so a large step is exact but for float32 rounding (~3e-6 relative at h = 0.01 on values ~1).
rule(
  "Cast",
  "float64 -> float32 -> float64 (h = 1e-2, tolerance 1e-4)",
  (g, r) => {
    const x = floatIn(g, "x", [3], [3], r);
    return { inputs: [x], y: g.cast(g.cast(x.value, "float32"), "float64"), yDims: [3] };
  },
  1e-2,
  1e-4,
);
rule("Where", "both branches broadcast", (g, r) => {
  const c: Fed = { value: g.input("c", "bool", [2, 3]), dims: [2, 3], data: Uint8Array.from([1, 0, 1, 0, 0, 1]) };
  const a = floatIn(g, "a", [2, 3], [2, 3], r);
  const b = floatIn(g, "b", [3], [3], r);
  return { inputs: [c, a, b], y: g.where(c.value, a.value, b.value), yDims: [2, 3] };
});
rule("Expand", "a column to a matrix", (g, r) => {
  const x = floatIn(g, "x", [2, 1], [2, 1], r);
  const like = floatIn(g, "like", [2, 3], [2, 3], r);
  return { inputs: [x, like], y: g.add(g.expandLike(x.value, like.value), like.value), yDims: [2, 3] };
});

rule("MatMul", "activations x a 2-D weight (the Gemm path)", (g, r) => {
  const a = floatIn(g, "a", ["B", 3, 4], [2, 3, 4], r);
  const b = floatIn(g, "b", [4, 5], [4, 5], r);
  return { inputs: [a, b], y: g.matMul(a.value, b.value), yDims: [2, 3, 5] };
});
rule("MatMul", "batched both sides", (g, r) => {
  const a = floatIn(g, "a", [2, 3, 4], [2, 3, 4], r);
  const b = floatIn(g, "b", [2, 4, 5], [2, 4, 5], r);
  return { inputs: [a, b], y: g.matMul(a.value, b.value), yDims: [2, 3, 5] };
});
rule("MatMul", "broadcast batch axes on both operands", (g, r) => {
  const a = floatIn(g, "a", [2, 1, 3, 4], [2, 1, 3, 4], r);
  const b = floatIn(g, "b", [3, 4, 2], [3, 4, 2], r);
  return { inputs: [a, b], y: g.matMul(a.value, b.value), yDims: [2, 3, 3, 2] };
});
rule("MatMul", "2-D left operand, batched right", (g, r) => {
  const a = floatIn(g, "a", [3, 4], [3, 4], r);
  const b = floatIn(g, "b", [2, 4, 5], [2, 4, 5], r);
  return { inputs: [a, b], y: g.matMul(a.value, b.value), yDims: [2, 3, 5] };
});
for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
  rule("Gemm", `transA=${transA} transB=${transB}, alpha, beta and a broadcast C`, (g, r) => {
    const a = floatIn(g, "a", transA ? [4, 3] : [3, 4], transA ? [4, 3] : [3, 4], r);
    const b = floatIn(g, "b", transB ? [5, 4] : [4, 5], transB ? [5, 4] : [4, 5], r);
    const c = floatIn(g, "c", [5], [5], r);
    return { inputs: [a, b, c], y: g.gemm(a.value, b.value, { transA, transB, alpha: 0.7, beta: 1.3, c: c.value }), yDims: [3, 5] };
  });
}
rule("Transpose", "a permutation of three axes", (g, r) => {
  const x = floatIn(g, "x", [2, 3, 4], [2, 3, 4], r);
  return { inputs: [x], y: g.transpose(x.value, [1, 2, 0]), yDims: [3, 4, 2] };
});
rule("Reshape", "symbolic batch, 0 and -1", (g, r) => {
  const x = floatIn(g, "x", ["B", 6], [2, 6], r);
  return { inputs: [x], y: g.reshape(x.value, [0, 2, -1]), yDims: [2, 2, 3] };
});
rule("Flatten", "to rows", (g, r) => {
  const x = floatIn(g, "x", ["B", 3, 2], [2, 3, 2], r);
  return { inputs: [x], y: g.flatten(x.value, 1), yDims: [2, 6] };
});
rule("Unsqueeze", "a new middle axis", (g, r) => {
  const x = floatIn(g, "x", [2, 3], [2, 3], r);
  return { inputs: [x], y: g.unsqueeze(x.value, [1]), yDims: [2, 1, 3] };
});
rule("Squeeze", "a size-1 axis", (g, r) => {
  const x = floatIn(g, "x", [2, 1, 3], [2, 1, 3], r);
  return { inputs: [x], y: g.squeeze(x.value, [1]), yDims: [2, 3] };
});
rule("Concat", "three parts along the last axis", (g, r) => {
  const a = floatIn(g, "a", ["B", 2], [2, 2], r);
  const b = floatIn(g, "b", ["B", 1], [2, 1], r);
  return { inputs: [a, b], y: g.concat([a.value, b.value, a.value], -1), yDims: [2, 5] };
});
rule("Slice", "pieces that tile an axis (fused q/k/v): one Concat", (g, r) => {
  const x = floatIn(g, "x", ["B", 6], [2, 6], r);
  const q = g.slice(x.value, [0], [3], [1]);
  const k = g.slice(x.value, [3], [4], [1]);
  const v = g.slice(x.value, [4], [6], [1]);
  return { inputs: [x], y: g.concat([g.mul(v, v), q, g.exp(k)], 1), yDims: [2, 6] };
});
rule("Slice", "gaps, negative starts, overlaps and several axes", (g, r) => {
  const x = floatIn(g, "x", [3, 6], [3, 6], r);
  const a = g.slice(x.value, [1], [3], [1]);
  const b = g.slice(x.value, [-2], [6], [1]);
  const c = g.slice(x.value, [2], [5], [1]);
  const d = g.slice(x.value, [1, 0], [3, 2], [0, 1]);
  return { inputs: [x], y: g.add(g.concat([a, g.mul(b, b), c], 1), g.reduceSum(g.mul(d, d), [0, 1], true)), yDims: [3, 7] };
});
rule("Gather", "rows of a table, one row twice", (g, r) => {
  const table = floatIn(g, "table", [5, 3], [5, 3], r);
  const ids = intIn(g, "ids", [2, 2], [4, 1, 1, 0]);
  return { inputs: [table, ids], y: g.gather(table.value, ids.value, 0), yDims: [2, 2, 3] };
});
rule("GatherElements", "the label's log-probability per row", (g, r) => {
  const x = floatIn(g, "x", [3, 5], [3, 5], r);
  const labels = intIn(g, "labels", [3, 1], [4, 0, 2]);
  return { inputs: [x, labels], y: g.gatherElements(x.value, labels.value, 1), yDims: [3, 1] };
});
rule("ReduceSum", "keepdims and not", (g, r) => {
  const x = floatIn(g, "x", [2, 3, 4], [2, 3, 4], r);
  return { inputs: [x], y: g.add(g.reduceSum(x.value, [1], false), g.squeeze(g.reduceSum(x.value, [1, 2], true), [2])), yDims: [2, 4] };
});
rule("ReduceMean", "a static axis (RMSNorm)", (g, r) => {
  const x = floatIn(g, "x", [2, 3, 4], [2, 3, 4], r);
  return { inputs: [x], y: g.reduceMean(x.value, [-1]), yDims: [2, 3, 1] };
});
rule("ReduceMean", "a symbolic axis: the count is read at run time", (g, r) => {
  const x = floatIn(g, "x", [2, "S"], [2, 5], r);
  return { inputs: [x], y: g.reduceMean(x.value, [1], false), yDims: [2] };
});
rule("Softmax", "last axis", (g, r) => {
  const x = floatIn(g, "x", [2, 5], [2, 5], r, -2, 2);
  return { inputs: [x], y: g.softmax(x.value, -1), yDims: [2, 5] };
});
rule("LogSoftmax", "axis 1 of three", (g, r) => {
  const x = floatIn(g, "x", [2, 4, 3], [2, 4, 3], r, -2, 2);
  return { inputs: [x], y: g.logSoftmax(x.value, 1), yDims: [2, 4, 3] };
});

test("every op with a rule has a finite-difference case above", () => {
  const missing = DIFFERENTIABLE_OPS.filter((op) => !covered.has(op));
  assert.deepEqual(missing, []);
});

test("composite: RMSNorm, attention with a causal bias, and masked token cross-entropy", () =>
  check("composite", (g, r) => {
    const S = 4;
    const D = 6;
    const V = 7;
    const x = floatIn(g, "x", [1, S, D], [1, S, D], r);
    const gain = floatIn(g, "gain", [D], [D], r, 0.5, 1.5);
    const wq = floatIn(g, "wq", [D, D], [D, D], r);
    const head = floatIn(g, "head", [D, V], [D, V], r);
    const normed = g.mul(g.div(x.value, g.sqrt(g.add(g.reduceMean(g.pow(x.value, g.scalar(2, "float64")), [-1]), g.scalar(1e-6, "float64")))), gain.value);
    const q = g.matMul(normed, wq.value);
    const bias = g.constant("float64", [S, S], Array.from({ length: S * S }, (_, i) => (i % S <= Math.floor(i / S) ? 0 : -1e9)));
    const probs = g.softmax(g.add(g.mul(g.matMul(q, g.transpose(normed, [0, 2, 1])), g.scalar(0.4, "float64")), bias), -1);
    const ctx = g.add(g.matMul(probs, normed), normed);
    const picked = g.gather(g.flatten(ctx, -1), g.constant("int64", [3], [0, 2, 3]), 0);
    const logp = g.logSoftmax(g.matMul(picked, head.value), -1);
    const labels = g.constant("int64", [3, 1], [1, 6, 3]);
    const token = g.gatherElements(logp, labels, 1);
    return { inputs: [x, gain, wq, head], y: g.neg(token), yDims: [3, 1] };
  }));

test("seed gradients chain two graphs: dL/dG from one graph, fed into the graph that made G", async () => {
  // f: G = tanh-ish(x W); second graph L = sum(softmax(G) * t). Together vs in one graph.
  const r = rng(3);
  const xData = Float64Array.from({ length: 6 }, () => r() * 2 - 1);
  const wData = Float64Array.from({ length: 12 }, () => r() * 2 - 1);
  const tData = Float64Array.from({ length: 8 }, () => r());
  const run = async (g: GraphBuilder, feeds: Record<string, ort.Tensor>) => {
    const s = await openSession(serializeInline(g.build()), { device: "cpu", threads: 1 });
    try {
      return await s.run(feeds);
    } finally {
      await s.release();
    }
  };
  const t64 = (d: Float64Array, dims: number[]) => new ort.Tensor("float64", d, dims);

  const whole = new GraphBuilder("whole");
  {
    const x = whole.input("x", "float64", [2, 3]);
    const w = whole.input("W", "float64", [3, 4]);
    const G = whole.sigmoid(whole.matMul(x, w));
    const L = whole.reduceSum(whole.mul(whole.softmax(G, -1), whole.input("t", "float64", [2, 4])), [0, 1], false);
    const [dw] = gradients(whole, { loss: L, wrt: [w] });
    whole.output(dw!, "dW");
  }
  const expected = (await run(whole, { x: t64(xData, [2, 3]), W: t64(wData, [3, 4]), t: t64(tData, [2, 4]) }))["dW"]!.data as Float64Array;

  const second = new GraphBuilder("consumer");
  {
    const G = second.input("G", "float64", [2, 4]);
    const L = second.reduceSum(second.mul(second.softmax(G, -1), second.input("t", "float64", [2, 4])), [0, 1], false);
    const [dG] = gradients(second, { loss: L, wrt: [G] });
    second.output(dG!, "dG");
  }
  const first = new GraphBuilder("producer");
  {
    const x = first.input("x", "float64", [2, 3]);
    const w = first.input("W", "float64", [3, 4]);
    const G = first.sigmoid(first.matMul(x, w));
    first.output(G, "G");
    const [dw] = gradients(first, { seeds: [[G, first.input("dG", "float64", [2, 4])]], wrt: [w] });
    first.output(dw!, "dW");
  }
  const producer = await run(first, { x: t64(xData, [2, 3]), W: t64(wData, [3, 4]), dG: t64(new Float64Array(8), [2, 4]) });
  const dG = (await run(second, { G: t64(producer["G"]!.data as Float64Array, [2, 4]), t: t64(tData, [2, 4]) }))["dG"]!.data as Float64Array;
  const chained = (await run(first, { x: t64(xData, [2, 3]), W: t64(wData, [3, 4]), dG: t64(dG, [2, 4]) }))["dW"]!.data as Float64Array;
  chained.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-12, `dW[${i}]: chained ${v}, one graph ${expected[i]}`));
});

test("a value the loss does not depend on gets a zero gradient; an op without a rule is named", async () => {
  const g = new GraphBuilder("t");
  const x = g.input("x", "float64", ["B", 2]);
  const unused = g.input("unused", "float64", [3]);
  const loss = g.reduceSum(g.mul(x, x), [0, 1], false);
  const [, dUnused] = gradients(g, { loss, wrt: [x, unused] });
  g.output(dUnused!, "d_unused");
  const s = await openSession(serializeInline(g.build()), { device: "cpu", threads: 1 });
  const out = await s.run({ x: new ort.Tensor("float64", new Float64Array(4), [2, 2]), unused: new ort.Tensor("float64", Float64Array.from([1, 2, 3]), [3]) });
  assert.deepEqual([...(out["d_unused"]!.data as Float64Array)], [0, 0, 0]);
  await s.release();

  const h = new GraphBuilder("t2");
  const y = h.input("y", "float64", [2, 3]);
  const m = h.scope("layers.0", () => h.reduceMax(y, [1], false));
  assert.throws(
    () => gradients(h, { loss: h.reduceSum(m, [0], false), wrt: [y] }),
    (e: unknown) => e instanceof BdcError && e.code === "BDC_GRAPH_GRADIENT" && /layers\.0\/ReduceMax \(ReduceMax\): no gradient rule for ReduceMax/.test(e.message),
  );
  assert.throws(() => gradients(h, { loss: y, wrt: [y] }), /must be a scalar/);
});

test("no backward node is added for frozen weights, and a weight is read transposed in place (Gemm transB), never copied", () => {
  const g = new GraphBuilder("t");
  const x = g.input("x", "float32", ["B", "S", 8]);
  const frozen = g.weight("frozen", "float32", [8, 8], new Float32Array(64));
  const a = g.input("A", "float32", [2, 8]);
  const h = g.add(g.matMul(x, frozen), g.matMul(g.matMul(x, g.transpose(a, [1, 0])), g.weight("B", "float32", [2, 8], new Float32Array(16))));
  const top = g.matMul(h, g.weight("top", "float32", [8, 8], new Float32Array(64)));
  const before = g.nodeList.length;
  gradients(g, { loss: g.reduceSum(top, [0, 1, 2], false), wrt: [a] });
  const backward = g.nodeList.slice(before + 1);
  const readsWeight = (name: string) => backward.filter((n) => n.inputs.some((v) => v.name === name));
  assert.deepEqual(readsWeight("frozen"), [], "the frozen weight below the LoRA branch is not on the backward path");
  assert.deepEqual(readsWeight("top").map((n) => [n.op, n.attributes["transB"]]), [["Gemm", 1]]);
  assert.ok(!backward.some((n) => n.op === "Transpose" && n.inputs.some((v) => v.name === "top")));
});
