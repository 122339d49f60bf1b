/**
 * Shape rules of the ops the builder emits (ONNX semantics), on symbolic dims. Each returns the
 * output shape or throws a ShapeError that says what does not fit.
 */
import { canonical, dimAdd, dimDiv, dimEquals, dimProduct, shapeToString, type Dim, type Shape } from "./dims.ts";

export class ShapeError extends Error {}

const fail = (message: string): never => {
  throw new ShapeError(message);
};

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) fail(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Numpy-style (multidirectional) broadcasting. */
export function broadcast(a: Shape, b: Shape): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x === 1) out.push(canonical(y));
    else if (y === 1 || dimEquals(x, y)) out.push(canonical(x));
    else fail(`shapes ${shapeToString(a)} and ${shapeToString(b)} do not broadcast (dimension ${x} vs ${y})`);
  }
  return out;
}

export function matMul(a: Shape, b: Shape): Dim[] {
  if (a.length < 2 || b.length < 2) fail(`MatMul needs rank >= 2 operands, got ${shapeToString(a)} and ${shapeToString(b)}`);
  const k1 = a[a.length - 1]!;
  const k2 = b[b.length - 2]!;
  if (!dimEquals(k1, k2)) fail(`MatMul inner dimensions differ: ${shapeToString(a)} x ${shapeToString(b)} (${k1} vs ${k2})`);
  const batch = broadcast(a.slice(0, -2), b.slice(0, -2));
  return [...batch, canonical(a[a.length - 2]!), canonical(b[b.length - 1]!)];
}

export function gemm(a: Shape, b: Shape, transA: boolean, transB: boolean): Dim[] {
  if (a.length !== 2 || b.length !== 2) fail(`Gemm needs 2-D operands, got ${shapeToString(a)} and ${shapeToString(b)}`);
  const [m, k1] = transA ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
  const [k2, n] = transB ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
  if (!dimEquals(k1, k2)) fail(`Gemm inner dimensions differ: ${shapeToString(a)}${transA ? "^T" : ""} x ${shapeToString(b)}${transB ? "^T" : ""} (${k1} vs ${k2})`);
  return [canonical(m), canonical(n)];
}

/** Reshape with ONNX's 0 (copy the input dimension) and -1 (infer one dimension). */
export function reshape(input: Shape, target: ReadonlyArray<number>): Dim[] {
  const out: Dim[] = target.map((t, i) => {
    if (t === 0) return input[i] ?? fail(`Reshape copies dimension ${i} (0) but the input ${shapeToString(input)} has rank ${input.length}`);
    return t;
  });
  const inferred = out.indexOf(-1);
  if (out.filter((d) => d === -1).length > 1) fail(`Reshape target [${target.join(", ")}] has more than one -1`);
  const total = dimProduct(input);
  if (inferred >= 0) {
    const known = dimProduct(out.filter((_, i) => i !== inferred));
    const rest = dimDiv(total, known);
    if (rest === undefined) fail(`cannot reshape ${shapeToString(input)} to [${target.join(", ")}]: ${total} is not divisible by ${known}`);
    out[inferred] = rest!;
  } else if (!dimEquals(total, dimProduct(out))) {
    fail(`cannot reshape ${shapeToString(input)} (${total} elements) to [${target.join(", ")}] (${dimProduct(out)} elements)`);
  }
  return out.map(canonical);
}

export function transpose(input: Shape, perm: ReadonlyArray<number>): Dim[] {
  if (perm.length !== input.length || [...perm].sort().some((p, i) => p !== i)) fail(`Transpose perm [${perm.join(", ")}] is not a permutation of the ${input.length} axes of ${shapeToString(input)}`);
  return perm.map((p) => input[p]!);
}

export function concat(inputs: ReadonlyArray<Shape>, axis: number): Dim[] {
  const rank = inputs[0]!.length;
  const a = normAxis(axis, rank);
  let along: Dim = 0;
  for (const s of inputs) {
    if (s.length !== rank) fail(`Concat inputs have different ranks: ${inputs.map(shapeToString).join(", ")}`);
    s.forEach((d, i) => {
      if (i !== a && !dimEquals(d, inputs[0]![i]!)) fail(`Concat inputs differ outside axis ${axis}: ${inputs.map(shapeToString).join(", ")}`);
    });
    along = dimAdd(along, s[a]!);
  }
  const out = [...inputs[0]!];
  out[a] = along;
  return out;
}

export function gather(data: Shape, indices: Shape, axis: number): Dim[] {
  const a = normAxis(axis, data.length);
  return [...data.slice(0, a), ...indices, ...data.slice(a + 1)];
}

export function reduce(input: Shape, axes: ReadonlyArray<number>, keepDims: boolean): Dim[] {
  const norm = new Set(axes.map((x) => normAxis(x, input.length)));
  return input.flatMap((d, i) => (norm.has(i) ? (keepDims ? [1] : []) : [d]));
}

export function unsqueeze(input: Shape, axes: ReadonlyArray<number>): Dim[] {
  const rank = input.length + axes.length;
  const norm = new Set(axes.map((x) => normAxis(x, rank)));
  const out: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(norm.has(i) ? 1 : input[j++]!);
  return out;
}

export function squeeze(input: Shape, axes: ReadonlyArray<number>): Dim[] {
  const norm = new Set(axes.map((x) => normAxis(x, input.length)));
  for (const a of norm) if (input[a] !== 1) fail(`Squeeze axis ${a} of ${shapeToString(input)} is not 1`);
  return input.filter((_, i) => !norm.has(i));
}

/** Slice with static starts/ends on each sliced axis (a symbolic axis may only be taken whole or from a start to its end). */
export function slice(input: Shape, starts: ReadonlyArray<number>, ends: ReadonlyArray<number>, axes: ReadonlyArray<number>): Dim[] {
  const out = [...input];
  axes.forEach((axis, k) => {
    const a = normAxis(axis, input.length);
    const d = input[a]!;
    const start = starts[k]!;
    const end = ends[k]!;
    if (typeof d === "number") {
      const s = Math.min(Math.max(start < 0 ? start + d : start, 0), d);
      const e = Math.min(Math.max(end < 0 ? end + d : end, 0), d);
      out[a] = Math.max(e - s, 0);
    } else if (start === 0 && end >= Number.MAX_SAFE_INTEGER) {
      out[a] = d;
    } else {
      fail(`Slice [${start}:${end}] of the symbolic dimension ${d} in ${shapeToString(input)} has no static size`);
    }
  });
  return out;
}
