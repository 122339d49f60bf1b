/**
 * Reverse-mode automatic differentiation over the builder's graph: `gradients` appends the
 * backward nodes, in standard ONNX ops, to the same builder, so one ONNX Runtime session computes
 * the loss and its gradients. ONNX Runtime has no training API in Node; this is what stands in.
 *
 * - What is differentiated with respect to is any set of values, usually graph INPUTS (LoRA A/B,
 *   per-input gates): weights stay frozen initializers that the backward pass reads in place
 *   (dX = dY W^T is a Gemm with transB, never a transposed copy of W).
 * - The start is a scalar loss (seed 1) or seed gradients fed from outside, so gradients chain
 *   across graphs: dL/dG computed by one graph is the seed of another that produced G.
 * - Broadcasting is undone through the symbolic shapes: a gradient is summed over the axes its
 *   operand was broadcast along, decided when the graph is built.
 * - Only nodes on a path from a `wrt` value to the loss get backward nodes.
 *
 * One rule per op (RULES below); an op without a rule on a differentiated path is an error
 * naming the node. Every rule is checked against finite differences in autodiff.test.ts.
 */
import { BdcError } from "@bdc/core";
import type { GraphBuilder } from "./builder.ts";
import { END } from "./builder.ts";
import { dimProduct, isStatic, shapeToString } from "./dims.ts";
import type { GraphNode, Value } from "./graph.ts";

export interface GradientRequest {
  /** A scalar (shape [] or [1]) to differentiate: its gradient seed is 1. */
  readonly loss?: Value;
  /** Incoming gradients [value, d(objective)/d(value)], e.g. a gradient computed by another graph and fed as an input. */
  readonly seeds?: ReadonlyArray<readonly [Value, Value]>;
  /** The values to differentiate with respect to, usually graph inputs. */
  readonly wrt: ReadonlyArray<Value>;
}

/** A gradient for one axis-range of a value, from a Slice: pieces that tile an axis are concatenated, not padded and summed. */
interface SlicePiece {
  readonly piece: true;
  readonly grad: Value;
  readonly axis: number;
  readonly start: number;
  readonly end: number;
}
type Contribution = Value | SlicePiece;
const isPiece = (c: Contribution): c is SlicePiece => "piece" in c;

interface RuleContext {
  readonly g: GraphBuilder;
  readonly node: GraphNode;
  /** The gradient of the node's (first) output. */
  readonly dy: Value;
  /** Which inputs need a gradient (they depend on a `wrt` value). */
  readonly needs: ReadonlyArray<boolean>;
}
type Rule = (c: RuleContext) => ReadonlyArray<Contribution | undefined>;

function fail(node: GraphNode | undefined, message: string): never {
  throw new BdcError({
    code: "BDC_GRAPH_GRADIENT",
    message: node === undefined ? message : `gradient through ${node.name} (${node.op}): ${message}`,
    hint: "a bug in the code that builds this graph, or an op on the differentiated path that autodiff.ts has no rule for",
  });
}

/**
 * Appends the backward pass to `g` and returns d(objective)/d(w) for each `wrt` value, in order,
 * each with its value's shape. A `wrt` value the objective does not depend on gets zeros.
 */
export function gradients(g: GraphBuilder, request: GradientRequest): Value[] {
  const nodes = g.nodeList.slice();
  const wrt = request.wrt;
  if (wrt.length === 0) fail(undefined, "no values to differentiate with respect to (wrt is empty)");
  if (request.loss === undefined && (request.seeds ?? []).length === 0) fail(undefined, "give a loss or seed gradients");

  // Values that depend on a wrt value: only their producers need backward nodes.
  const depends = new Set(wrt.map((v) => v.name));
  for (const n of nodes) if (n.inputs.some((i) => depends.has(i.name))) for (const o of n.outputs) depends.add(o.name);

  const contributions = new Map<string, Contribution[]>();
  const add = (v: Value, c: Contribution) => {
    const list = contributions.get(v.name);
    if (list === undefined) contributions.set(v.name, [c]);
    else list.push(c);
  };
  const loss = request.loss;
  if (loss !== undefined) {
    if (!isStatic(loss.shape) || dimProduct(loss.shape) !== 1) fail(undefined, `the loss ${loss.name} has shape ${shapeToString(loss.shape)}; it must be a scalar ([] or [1])`);
    add(loss, g.scope("grad", () => g.constant(loss.dtype, loss.shape as number[], [1])));
  }
  for (const [value, grad] of request.seeds ?? []) {
    if (grad.dtype !== value.dtype) fail(undefined, `the seed gradient of ${value.name} is ${grad.dtype}, the value is ${value.dtype}`);
    add(value, grad);
  }

  const materialized = new Map<string, Value | undefined>();
  const gradientOf = (v: Value, scope: string): Value | undefined => {
    if (materialized.has(v.name)) return materialized.get(v.name);
    const list = contributions.get(v.name) ?? [];
    const result = list.length === 0 ? undefined : g.scope(scope, () => sumContributions(g, v, list));
    materialized.set(v.name, result);
    return result;
  };

  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i]!;
    const needs = node.inputs.map((v) => depends.has(v.name));
    if (!needs.some(Boolean)) continue;
    const scope = `grad/${node.name}`;
    const dys = node.outputs.map((o) => gradientOf(o, scope));
    if (dys.every((d) => d === undefined)) continue;
    if (node.outputs.length !== 1) fail(node, `ops with ${node.outputs.length} outputs have no rule`);
    const rule = RULES[node.op];
    if (rule === undefined) fail(node, `no gradient rule for ${node.op}`);
    const grads = g.scope(scope, () => rule({ g, node, dy: dys[0]!, needs }));
    grads.forEach((c, k) => {
      if (c !== undefined && needs[k]) add(node.inputs[k]!, c);
    });
  }
  return wrt.map((v) => gradientOf(v, `grad/${v.name}`) ?? g.scope(`grad/${v.name}`, () => g.zerosLike(v)));
}

/** The sum of a value's gradient contributions; slice pieces that tile an axis become one Concat. */
function sumContributions(g: GraphBuilder, v: Value, list: ReadonlyArray<Contribution>): Value {
  const whole = list.filter((c): c is Value => !isPiece(c));
  const pieces = list.filter(isPiece).sort((a, b) => a.start - b.start);
  const parts = [...whole];
  if (pieces.length > 0) {
    const axis = pieces[0]!.axis;
    const dim = v.shape[axis];
    const disjoint = pieces.every((p, k) => p.axis === axis && (k === 0 || p.start >= pieces[k - 1]!.end));
    if (disjoint && typeof dim === "number") {
      // Each piece padded up to the next one's start (the first also from 0): one Concat, no sums.
      const padded = pieces.map((p, k) => {
        const begins = v.shape.map((_, a) => (a === axis && k === 0 ? p.start : 0));
        const ends = v.shape.map((_, a) => (a === axis ? (k + 1 < pieces.length ? pieces[k + 1]!.start : dim) - p.end : 0));
        return begins.some((b) => b > 0) || ends.some((e) => e > 0) ? g.pad(p.grad, begins, ends) : p.grad;
      });
      parts.push(padded.length === 1 ? padded[0]! : g.concat(padded, axis));
    } else {
      for (const p of pieces) parts.push(padPiece(g, v, p));
    }
  }
  return g.sum(parts);
}

function padPiece(g: GraphBuilder, v: Value, p: SlicePiece): Value {
  const dim = v.shape[p.axis];
  if (typeof dim !== "number") fail(undefined, `a slice of the symbolic dimension ${dim} of ${v.name} cannot be padded back`);
  return g.pad(p.grad, v.shape.map((_, a) => (a === p.axis ? p.start : 0)), v.shape.map((_, a) => (a === p.axis ? dim - p.end : 0)));
}

/** `grad` (the shape of a broadcast result) summed back to `target`'s shape. */
function unbroadcast(g: GraphBuilder, grad: Value, target: Value): Value {
  const lead = grad.shape.length - target.shape.length;
  const axes: number[] = [];
  grad.shape.forEach((d, i) => {
    if (i < lead || (target.shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  const summed = axes.length === 0 ? grad : g.reduceSum(grad, axes, true);
  return lead > 0 || axes.length > 0 ? g.reshapeLike(summed, target) : summed;
}

/** [..., n] as the 2-D [rows, n] (a free reshape). */
const rows = (g: GraphBuilder, x: Value): Value => (x.shape.length === 2 ? x : g.flatten(x, -1));

const swapLast = (rank: number): number[] => [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];

/** Integers of a constant input (axes, starts, ...). */
function constantInts(g: GraphBuilder, node: GraphNode, input: number): number[] {
  const v = node.inputs[input];
  const data = v === undefined ? undefined : g.constantData(v);
  if (data === undefined) fail(node, `input ${input} must be a constant`);
  return Array.from(data as ArrayLike<number | bigint>, Number);
}

function scalarLike(g: GraphBuilder, v: Value, x: number): Value {
  return g.constant(v.dtype, [], [x]);
}

function reductionAxes(g: GraphBuilder, node: GraphNode, x: Value): number[] {
  const raw = node.op === "ReduceSum" ? (node.inputs.length > 1 ? constantInts(g, node, 1) : x.shape.map((_, i) => i)) : ((node.attributes["axes"] as ReadonlyArray<number> | undefined) ?? x.shape.map((_, i) => i));
  return raw.map((a) => (a < 0 ? a + x.shape.length : a)).sort((a, b) => a - b);
}

/** dy of a reduction, with the reduced axes back (size 1) and broadcast to the input's shape. */
function expandReduced(g: GraphBuilder, node: GraphNode, dy: Value, x: Value, axes: number[]): Value {
  const keep = node.attributes["keepdims"] !== 0;
  return g.expandLike(keep ? dy : g.unsqueeze(dy, axes), x);
}

const RULES: Readonly<Record<string, Rule>> = {
  Identity: ({ dy }) => [dy],
  Add: ({ g, node, dy }) => node.inputs.map((x) => unbroadcast(g, dy, x)),
  Sum: ({ g, node, dy }) => node.inputs.map((x) => unbroadcast(g, dy, x)),
  Sub: ({ g, node, dy, needs }) => [needs[0] ? unbroadcast(g, dy, node.inputs[0]!) : undefined, needs[1] ? unbroadcast(g, g.neg(dy), node.inputs[1]!) : undefined],
  Mul: ({ g, node, dy, needs }) => {
    const [a, b] = node.inputs as [Value, Value];
    return [needs[0] ? unbroadcast(g, g.mul(dy, b), a) : undefined, needs[1] ? unbroadcast(g, g.mul(dy, a), b) : undefined];
  },
  Div: ({ g, node, dy, needs }) => {
    const [a, b] = node.inputs as [Value, Value];
    const y = node.outputs[0]!;
    return [needs[0] ? unbroadcast(g, g.div(dy, b), a) : undefined, needs[1] ? unbroadcast(g, g.neg(g.div(g.mul(dy, y), b)), b) : undefined];
  },
  Neg: ({ g, dy }) => [g.neg(dy)],
  Pow: ({ g, node, dy, needs }) => {
    if (needs[1]) fail(node, "the exponent must not depend on the differentiated values");
    const [x, p] = node.inputs as [Value, Value];
    return [unbroadcast(g, g.mul(dy, g.mul(p, g.pow(x, g.sub(p, scalarLike(g, p, 1))))), x)];
  },
  Sqrt: ({ g, node, dy }) => [g.div(g.mul(dy, scalarLike(g, dy, 0.5)), node.outputs[0]!)],
  Reciprocal: ({ g, node, dy }) => {
    const y = node.outputs[0]!;
    return [g.neg(g.mul(dy, g.mul(y, y)))];
  },
  Exp: ({ g, node, dy }) => [g.mul(dy, node.outputs[0]!)],
  Log: ({ g, node, dy }) => [g.div(dy, node.inputs[0]!)],
  Sigmoid: ({ g, node, dy }) => {
    const y = node.outputs[0]!;
    return [g.mul(dy, g.mul(y, g.sub(scalarLike(g, y, 1), y)))];
  },
  Relu: ({ g, node, dy }) => {
    const x = node.inputs[0]!;
    return [g.mul(dy, g.cast(g.greater(x, scalarLike(g, x, 0)), dy.dtype))];
  },
  Cos: ({ g, node, dy }) => [g.neg(g.mul(dy, g.sin(node.inputs[0]!)))],
  Sin: ({ g, node, dy }) => [g.mul(dy, g.cos(node.inputs[0]!))],
  Cast: ({ g, node, dy }) => [g.cast(dy, node.inputs[0]!.dtype)],
  Where: ({ g, node, dy, needs }) => {
    const [c, a, b] = node.inputs as [Value, Value, Value];
    const zero = scalarLike(g, dy, 0);
    return [undefined, needs[1] ? unbroadcast(g, g.where(c, dy, zero), a) : undefined, needs[2] ? unbroadcast(g, g.where(c, zero, dy), b) : undefined];
  },
  Expand: ({ g, node, dy }) => [unbroadcast(g, dy, node.inputs[0]!)],

  MatMul: ({ g, node, dy, needs }) => {
    const [a, b] = node.inputs as [Value, Value];
    const ra = a.shape.length;
    const rb = b.shape.length;
    if (ra < 2 || rb < 2) fail(node, "MatMul of a vector has no rule");
    let da: Value | undefined;
    let db: Value | undefined;
    if (needs[0]) {
      // A 2-D right operand (a weight, LoRA's A^T) takes the gradient as one Gemm over all rows, reading it transposed in place.
      da = rb === 2 ? g.reshapeLike(g.gemm(rows(g, dy), b, { transB: true }), a) : unbroadcast(g, g.matMul(dy, g.transpose(b, swapLast(rb))), a);
    }
    if (needs[1]) {
      db = rb === 2 ? g.gemm(rows(g, a), rows(g, dy), { transA: true }) : unbroadcast(g, g.matMul(g.transpose(a, swapLast(ra)), dy), b);
    }
    return [da, db];
  },
  Gemm: ({ g, node, dy, needs }) => {
    const [a, b, c] = node.inputs as [Value, Value, Value | undefined];
    const ta = node.attributes["transA"] === 1;
    const tb = node.attributes["transB"] === 1;
    const alpha = (node.attributes["alpha"] as { float: number } | undefined)?.float ?? 1;
    const beta = (node.attributes["beta"] as { float: number } | undefined)?.float ?? 1;
    // Y = alpha op(A) op(B): d op(A) = alpha dY op(B)^T, d op(B) = alpha op(A)^T dY.
    const da = !needs[0] ? undefined : ta ? g.gemm(b, dy, { transA: tb, transB: true, alpha }) : g.gemm(dy, b, { transB: !tb, alpha });
    const db = !needs[1] ? undefined : tb ? g.gemm(dy, a, { transA: true, transB: ta, alpha }) : g.gemm(a, dy, { transA: !ta, alpha });
    const dc = c === undefined || !needs[2] ? undefined : unbroadcast(g, beta === 1 ? dy : g.mul(dy, scalarLike(g, dy, beta)), c);
    return [da, db, dc];
  },
  Transpose: ({ g, node, dy }) => {
    const perm = node.attributes["perm"] as ReadonlyArray<number>;
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [g.transpose(dy, inverse)];
  },
  Reshape: ({ g, node, dy }) => [g.reshapeLike(dy, node.inputs[0]!)],
  Flatten: ({ g, node, dy }) => [g.reshapeLike(dy, node.inputs[0]!)],
  Unsqueeze: ({ g, node, dy }) => [g.reshapeLike(dy, node.inputs[0]!)],
  Squeeze: ({ g, node, dy }) => [g.reshapeLike(dy, node.inputs[0]!)],
  Concat: ({ g, node, dy, needs }) => {
    const axis = node.attributes["axis"] as number;
    const a = axis < 0 ? axis + dy.shape.length : axis;
    let offset = 0;
    return node.inputs.map((x, k) => {
      const size = x.shape[a];
      if (typeof size !== "number") fail(node, `input ${k} has the symbolic size ${size} along the concatenated axis`);
      const start = offset;
      offset += size;
      return needs[k] ? g.slice(dy, [start], [start + size], [a]) : undefined;
    });
  },
  Slice: ({ g, node, dy }) => {
    const x = node.inputs[0]!;
    const starts = constantInts(g, node, 1);
    const ends = constantInts(g, node, 2);
    const axes = node.inputs.length > 3 ? constantInts(g, node, 3) : starts.map((_, i) => i);
    if (node.inputs.length > 4 && constantInts(g, node, 4).some((s) => s !== 1)) fail(node, "slices with steps have no rule");
    const ranges: Array<{ axis: number; start: number; end: number }> = [];
    axes.forEach((axis, k) => {
      const a = axis < 0 ? axis + x.shape.length : axis;
      const d = x.shape[a]!;
      if (typeof d !== "number") {
        if (starts[k] !== 0 || ends[k]! < END) fail(node, `a partial slice of the symbolic dimension ${d}`);
        return;
      }
      const clamp = (i: number) => Math.min(Math.max(i < 0 ? i + d : i, 0), d);
      const start = clamp(starts[k]!);
      const end = Math.max(start, clamp(ends[k]!));
      if (start !== 0 || end !== d) ranges.push({ axis: a, start, end });
    });
    if (ranges.length === 0) return [dy];
    if (ranges.length === 1) return [{ piece: true, grad: dy, ...ranges[0]! }];
    const begins = x.shape.map((_, a) => ranges.find((r) => r.axis === a)?.start ?? 0);
    const endPads = x.shape.map((d, a) => {
      const r = ranges.find((q) => q.axis === a);
      return r === undefined ? 0 : (d as number) - r.end;
    });
    return [g.pad(dy, begins, endPads)];
  },
  Gather: ({ g, node, dy }) => {
    const [data, indices] = node.inputs as [Value, Value];
    const axis = (node.attributes["axis"] as number | undefined) ?? 0;
    if (axis !== 0 && axis !== -data.shape.length) fail(node, `Gather along axis ${axis} has no rule (only axis 0)`);
    // Rows gathered twice get both gradients: scatter with addition.
    return [g.scatterND(g.zerosLike(data), g.unsqueeze(indices, [-1]), dy, "add")];
  },
  GatherElements: ({ g, node, dy }) => {
    const [data, indices] = node.inputs as [Value, Value];
    return [g.scatterElements(g.zerosLike(data), indices, dy, node.attributes["axis"] as number, "add")];
  },
  ReduceSum: ({ g, node, dy }) => {
    const x = node.inputs[0]!;
    return [expandReduced(g, node, dy, x, reductionAxes(g, node, x))];
  },
  ReduceMean: ({ g, node, dy }) => {
    const x = node.inputs[0]!;
    const axes = reductionAxes(g, node, x);
    const expanded = expandReduced(g, node, dy, x, axes);
    const count = dimProduct(axes.map((a) => x.shape[a]!));
    if (typeof count === "number") return [g.mul(expanded, scalarLike(g, dy, 1 / count))];
    const n = g.reduceProd(g.gather(g.shapeOf(x), g.constant("int64", [axes.length], axes)), [0], false);
    return [g.div(expanded, g.cast(n, dy.dtype))];
  },
  Softmax: ({ g, node, dy }) => {
    const y = node.outputs[0]!;
    const axis = (node.attributes["axis"] as number | undefined) ?? -1;
    return [g.mul(y, g.sub(dy, g.reduceSum(g.mul(dy, y), [axis], true)))];
  },
  LogSoftmax: ({ g, node, dy }) => {
    const y = node.outputs[0]!;
    const axis = (node.attributes["axis"] as number | undefined) ?? -1;
    return [g.sub(dy, g.mul(g.exp(y), g.reduceSum(dy, [axis], true)))];
  },
};

/** The ops `gradients` can differentiate through. */
export const DIFFERENTIABLE_OPS: ReadonlyArray<string> = Object.keys(RULES).sort();
