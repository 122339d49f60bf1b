/**
 * GraphBuilder: emits ONNX nodes with their output types worked out and checked as they are
 * added. Names are deterministic (scope path + op + counter), so the same model always gives
 * the same ONNX file and a failing node can be found by name.
 */
import { BdcError } from "@bdc/core";
import { canonical, dimEquals, dimProduct, shapeToString, type Dim, type Shape } from "./dims.ts";
import { isFloat, ONNX_DTYPE, type DType, type TensorData } from "./dtypes.ts";
import { float32ArrayToFloat16 } from "./half.ts";
import type { AttributeValue, Graph, GraphNode, Initializer, Value } from "./graph.ts";
import * as infer from "./shape-inference.ts";

export const OPSET = 17;
/** Slice's "to the end" (INT64_MAX in ONNX; numbers here, so the largest safe integer). */
export const END = Number.MAX_SAFE_INTEGER;

export class GraphBuilder {
  private readonly nodes: GraphNode[] = [];
  private readonly inputs: Value[] = [];
  private readonly outputs: Value[] = [];
  private readonly initializers: Initializer[] = [];
  private readonly initializerByName = new Map<string, Initializer>();
  private readonly names = new Set<string>();
  private readonly scopes: string[] = [];
  private readonly counters = new Map<string, number>();
  /** Node outputs that are graph outputs, by their generated name -> the output's name. */
  private readonly renames = new Map<string, string>();

  constructor(readonly name: string) {}

  /** Runs `fn` with `name` appended to the naming scope ("layers.3/attn/..."). */
  scope<T>(name: string, fn: () => T): T {
    this.scopes.push(name);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  input(name: string, dtype: DType, shape: Shape): Value {
    const v = this.value(name, dtype, shape);
    this.inputs.push(v);
    return v;
  }

  /** A named initializer (a weight); `data` may be a function called when the model is written. */
  weight(name: string, dtype: DType, shape: ReadonlyArray<number>, data: TensorData | (() => TensorData)): Value {
    const v = this.value(name, dtype, shape);
    const init = { value: v, data };
    this.initializers.push(init);
    this.initializerByName.set(name, init);
    return v;
  }

  /** A small constant tensor, named after the scope. */
  constant(dtype: DType, shape: ReadonlyArray<number>, values: ReadonlyArray<number>): Value {
    const n = shape.reduce((p, d) => p * d, 1);
    if (values.length !== n) this.fail("Constant", `${values.length} values for shape ${shapeToString(shape)}`);
    const data: TensorData =
      dtype === "int64"
        ? BigInt64Array.from(values.map((x) => BigInt(x)))
        : dtype === "int32"
          ? Int32Array.from(values)
          : dtype === "float32"
            ? Float32Array.from(values)
            : dtype === "float64"
              ? Float64Array.from(values)
              : dtype === "float16"
                ? float32ArrayToFloat16(Float32Array.from(values))
                : this.fail("Constant", `constants of ${dtype} are not supported`);
    return this.weight(this.uniqueName("const"), dtype, shape, data);
  }

  scalar(value: number, dtype: DType = "float32"): Value {
    return this.constant(dtype, [], [value]);
  }

  /**
   * Marks `value` as a graph output called `name`. A node's output is renamed (no copy: an
   * Identity node would copy, e.g., the whole KV cache each step); an input, a weight or a value
   * already output under another name goes through an Identity node.
   */
  output(value: Value, name: string): Value {
    const produced = this.nodes.some((n) => n.outputs.includes(value));
    if (value.name !== name && produced && !this.renames.has(value.name)) {
      if (this.names.has(name)) this.fail("output", `the name "${name}" is used twice`);
      this.names.add(name);
      this.renames.set(value.name, name);
      const out = { ...value, name };
      this.outputs.push(out);
      return out;
    }
    const out = value.name === name ? value : this.node("Identity", [value], [{ dtype: value.dtype, shape: value.shape }], {}, name)[0]!;
    this.outputs.push(out);
    return out;
  }

  /** The data of a constant (an initializer whose data is in memory), or undefined. */
  constantData(v: Value): TensorData | undefined {
    const data = this.initializerByName.get(v.name)?.data;
    return typeof data === "function" ? undefined : data;
  }

  /** The nodes added so far, in order (a topological order: a node only reads values made before it). */
  get nodeList(): ReadonlyArray<GraphNode> {
    return this.nodes;
  }

  build(): Graph {
    const r = (v: Value): Value => {
      const to = this.renames.get(v.name);
      return to === undefined ? v : { ...v, name: to };
    };
    const nodes = this.nodes.map((n) => ({ ...n, inputs: n.inputs.map(r), outputs: n.outputs.map(r) }));
    return { name: this.name, inputs: [...this.inputs], outputs: [...this.outputs], nodes, initializers: [...this.initializers], opset: OPSET };
  }

  // ---- element-wise ----
  add(a: Value, b: Value): Value {
    return this.binary("Add", a, b);
  }
  sub(a: Value, b: Value): Value {
    return this.binary("Sub", a, b);
  }
  mul(a: Value, b: Value): Value {
    return this.binary("Mul", a, b);
  }
  div(a: Value, b: Value): Value {
    return this.binary("Div", a, b);
  }
  pow(x: Value, exponent: Value): Value {
    this.requireFloat("Pow", x);
    return this.one("Pow", [x, exponent], x.dtype, this.shapes("Pow", () => infer.broadcast(x.shape, exponent.shape), x, exponent));
  }
  neg(x: Value): Value {
    return this.unary("Neg", x);
  }
  sqrt(x: Value): Value {
    return this.unary("Sqrt", x, true);
  }
  reciprocal(x: Value): Value {
    return this.unary("Reciprocal", x, true);
  }
  exp(x: Value): Value {
    return this.unary("Exp", x, true);
  }
  log(x: Value): Value {
    return this.unary("Log", x, true);
  }
  sigmoid(x: Value): Value {
    return this.unary("Sigmoid", x, true);
  }
  cos(x: Value): Value {
    return this.unary("Cos", x, true);
  }
  sin(x: Value): Value {
    return this.unary("Sin", x, true);
  }
  cast(x: Value, to: DType): Value {
    return this.one("Cast", [x], to, x.shape, { to: ONNX_DTYPE[to] });
  }
  where(condition: Value, a: Value, b: Value): Value {
    if (condition.dtype !== "bool") this.fail("Where", `the condition is ${condition.dtype}, not bool`);
    this.sameType("Where", a, b);
    return this.one("Where", [condition, a, b], a.dtype, this.shapes("Where", () => infer.broadcast(infer.broadcast(condition.shape, a.shape), b.shape)));
  }

  equal(a: Value, b: Value): Value {
    this.sameType("Equal", a, b);
    return this.one("Equal", [a, b], "bool", this.shapes("Equal", () => infer.broadcast(a.shape, b.shape), a, b));
  }
  /** Index of the largest value along `axis` (int64). */
  argMax(x: Value, axis: number, keepDims = false): Value {
    return this.one("ArgMax", [x], "int64", this.shapes("ArgMax", () => infer.reduce(x.shape, [axis], keepDims), x), { axis, keepdims: keepDims ? 1 : 0 });
  }
  /** [0, 1, ..., n-1] for a scalar int64 `n` (runtime), as `length` symbolically. */
  range(n: Value, length: Dim): Value {
    if (n.dtype !== "int64" || n.shape.length !== 0) this.fail("Range", `the limit must be an int64 scalar, got ${n.dtype} ${shapeToString(n.shape)}`);
    return this.one("Range", [this.constant("int64", [], [0]), n, this.constant("int64", [], [1])], "int64", [length]);
  }
  relu(x: Value): Value {
    return this.unary("Relu", x, true);
  }
  greater(a: Value, b: Value): Value {
    this.sameType("Greater", a, b);
    return this.one("Greater", [a, b], "bool", this.shapes("Greater", () => infer.broadcast(a.shape, b.shape), a, b));
  }
  /** Element-wise sum of any number of tensors (broadcasting). */
  sum(xs: ReadonlyArray<Value>): Value {
    if (xs.length === 1) return xs[0]!;
    xs.slice(1).forEach((x) => this.sameType("Sum", xs[0]!, x));
    return this.one("Sum", xs, xs[0]!.dtype, this.shapes("Sum", () => xs.slice(1).reduce<Shape>((s, x) => infer.broadcast(s, x.shape), xs[0]!.shape), ...xs));
  }

  // ---- linear algebra and layout ----
  /** alpha * op(a) op(b) (+ beta * c) on 2-D operands, op = transpose when asked: no copy of a transposed weight. */
  gemm(a: Value, b: Value, options: { transA?: boolean; transB?: boolean; alpha?: number; c?: Value; beta?: number } = {}): Value {
    this.sameType("Gemm", a, b);
    const shape = this.shapes("Gemm", () => infer.gemm(a.shape, b.shape, options.transA === true, options.transB === true), a, b);
    const attributes: Record<string, AttributeValue> = { transA: options.transA === true ? 1 : 0, transB: options.transB === true ? 1 : 0 };
    if (options.alpha !== undefined) attributes["alpha"] = { float: options.alpha };
    if (options.beta !== undefined) attributes["beta"] = { float: options.beta };
    return this.one("Gemm", options.c === undefined ? [a, b] : [a, b, options.c], a.dtype, shape, attributes);
  }
  /** [d0..d(axis-1), d(axis)..] -> 2-D [product of the first, product of the rest]. */
  flatten(x: Value, axis: number): Value {
    const a = axis < 0 ? axis + x.shape.length : axis;
    if (a < 0 || a > x.shape.length) this.fail("Flatten", `axis ${axis} is out of range for ${shapeToString(x.shape)}`);
    return this.one("Flatten", [x], x.dtype, [dimProduct(x.shape.slice(0, a)), dimProduct(x.shape.slice(a))], { axis: a });
  }
  /** The runtime shape of `x` as an int64 vector. */
  shapeOf(x: Value): Value {
    return this.one("Shape", [x], "int64", [x.shape.length]);
  }
  /** `x` broadcast to the runtime shape of `like` (which must be what x broadcasts to). */
  expandLike(x: Value, like: Value): Value {
    this.shapes("Expand", () => infer.broadcast(x.shape, like.shape), x, like);
    return this.one("Expand", [x, this.shapeOf(like)], x.dtype, like.shape);
  }
  /** Zeros of `like`'s dtype and runtime shape. */
  zerosLike(like: Value): Value {
    return this.expandLike(this.constant(like.dtype, [], [0]), like);
  }
  /**
   * `x` reshaped to `like`'s shape (same element count): with a static target (ONNX's 0 and -1)
   * when the symbolic dims allow it, else through `like`'s runtime shape.
   */
  reshapeLike(x: Value, like: Value): Value {
    if (x.shape.length === like.shape.length && x.shape.every((d, i) => dimEquals(d, like.shape[i]!))) return x;
    const target: number[] = like.shape.map((d, i) => (typeof d === "number" ? d : x.shape[i] !== undefined && dimEquals(x.shape[i]!, d) ? 0 : -1));
    if (target.filter((t) => t === -1).length <= 1) {
      try {
        const inferred = infer.reshape(x.shape, target);
        if (inferred.every((d, i) => dimEquals(d, like.shape[i]!))) return this.reshape(x, target);
      } catch (e) {
        if (!(e instanceof infer.ShapeError)) throw e;
      }
    }
    if (!dimEquals(dimProduct(x.shape), dimProduct(like.shape))) this.fail("Reshape", `cannot reshape ${shapeToString(x.shape)} to ${shapeToString(like.shape)}`);
    return this.one("Reshape", [x, this.shapeOf(like)], x.dtype, like.shape);
  }
  matMul(a: Value, b: Value): Value {
    this.sameType("MatMul", a, b);
    return this.one("MatMul", [a, b], a.dtype, this.shapes("MatMul", () => infer.matMul(a.shape, b.shape), a, b));
  }
  reshape(x: Value, shape: ReadonlyArray<number>): Value {
    const out = this.shapes("Reshape", () => infer.reshape(x.shape, shape), x);
    return this.one("Reshape", [x, this.constant("int64", [shape.length], shape)], x.dtype, out);
  }
  transpose(x: Value, perm: ReadonlyArray<number>): Value {
    return this.one("Transpose", [x], x.dtype, this.shapes("Transpose", () => infer.transpose(x.shape, perm), x), { perm });
  }
  concat(xs: ReadonlyArray<Value>, axis: number): Value {
    xs.slice(1).forEach((x) => this.sameType("Concat", xs[0]!, x));
    return this.one("Concat", xs, xs[0]!.dtype, this.shapes("Concat", () => infer.concat(xs.map((x) => x.shape), axis), ...xs), { axis });
  }
  /** Static slice: `starts`/`ends` per axis in `axes` (END = to the end). */
  slice(x: Value, starts: ReadonlyArray<number>, ends: ReadonlyArray<number>, axes: ReadonlyArray<number>): Value {
    const out = this.shapes("Slice", () => infer.slice(x.shape, starts, ends, axes), x);
    const c = (v: ReadonlyArray<number>) => this.constant("int64", [v.length], v.map((e) => Math.min(e, END)));
    return this.one("Slice", [x, c(starts), c(ends), c(axes)], x.dtype, out);
  }
  gather(data: Value, indices: Value, axis = 0): Value {
    if (indices.dtype !== "int64" && indices.dtype !== "int32") this.fail("Gather", `indices are ${indices.dtype}, not int64/int32`);
    return this.one("Gather", [data, indices], data.dtype, this.shapes("Gather", () => infer.gather(data.shape, indices.shape, axis), data, indices), { axis });
  }
  gatherElements(data: Value, indices: Value, axis: number): Value {
    if (indices.dtype !== "int64" && indices.dtype !== "int32") this.fail("GatherElements", `indices are ${indices.dtype}, not int64/int32`);
    if (indices.shape.length !== data.shape.length) this.fail("GatherElements", `indices ${shapeToString(indices.shape)} and data ${shapeToString(data.shape)} differ in rank`);
    return this.one("GatherElements", [data, indices], data.dtype, indices.shape, { axis });
  }
  /** `data` with `updates` written (or added, reduction "add") at `indices` along `axis`. */
  scatterElements(data: Value, indices: Value, updates: Value, axis: number, reduction: "none" | "add" = "none"): Value {
    this.sameType("ScatterElements", data, updates);
    return this.one("ScatterElements", [data, indices, updates], data.dtype, data.shape, { axis, reduction });
  }
  /** `data` with `updates` written (or added) at the index tuples of `indices` [..., k]. */
  scatterND(data: Value, indices: Value, updates: Value, reduction: "none" | "add" = "none"): Value {
    this.sameType("ScatterND", data, updates);
    return this.one("ScatterND", [data, indices, updates], data.dtype, data.shape, { reduction });
  }
  /** Zero padding: `begins[i]` / `ends[i]` elements before / after axis i. */
  pad(x: Value, begins: ReadonlyArray<number>, ends: ReadonlyArray<number>): Value {
    if (begins.length !== x.shape.length || ends.length !== x.shape.length) this.fail("Pad", `pads for ${begins.length} axes, ${shapeToString(x.shape)} has ${x.shape.length}`);
    const shape = x.shape.map((d, i) => (begins[i] === 0 && ends[i] === 0 ? d : typeof d === "number" ? d + begins[i]! + ends[i]! : this.fail("Pad", `padding the symbolic dimension ${d}`)));
    return this.one("Pad", [x, this.constant("int64", [2 * begins.length], [...begins, ...ends])], x.dtype, shape, { mode: "constant" });
  }
  unsqueeze(x: Value, axes: ReadonlyArray<number>): Value {
    const out = this.shapes("Unsqueeze", () => infer.unsqueeze(x.shape, axes), x);
    return this.one("Unsqueeze", [x, this.constant("int64", [axes.length], axes)], x.dtype, out);
  }
  squeeze(x: Value, axes: ReadonlyArray<number>): Value {
    const out = this.shapes("Squeeze", () => infer.squeeze(x.shape, axes), x);
    return this.one("Squeeze", [x, this.constant("int64", [axes.length], axes)], x.dtype, out);
  }

  // ---- reductions and normalisations ----
  reduceMean(x: Value, axes: ReadonlyArray<number>, keepDims = true): Value {
    this.requireFloat("ReduceMean", x);
    // opset 17: ReduceMean takes axes as an attribute (an input from opset 18).
    return this.one("ReduceMean", [x], x.dtype, this.shapes("ReduceMean", () => infer.reduce(x.shape, axes, keepDims), x), { axes, keepdims: keepDims ? 1 : 0 });
  }
  reduceSum(x: Value, axes: ReadonlyArray<number>, keepDims = true): Value {
    const out = this.shapes("ReduceSum", () => infer.reduce(x.shape, axes, keepDims), x);
    return this.one("ReduceSum", [x, this.constant("int64", [axes.length], axes)], x.dtype, out, { keepdims: keepDims ? 1 : 0 });
  }
  reduceMax(x: Value, axes: ReadonlyArray<number>, keepDims = true): Value {
    return this.one("ReduceMax", [x], x.dtype, this.shapes("ReduceMax", () => infer.reduce(x.shape, axes, keepDims), x), { axes, keepdims: keepDims ? 1 : 0 });
  }
  reduceProd(x: Value, axes: ReadonlyArray<number>, keepDims = true): Value {
    return this.one("ReduceProd", [x], x.dtype, this.shapes("ReduceProd", () => infer.reduce(x.shape, axes, keepDims), x), { axes, keepdims: keepDims ? 1 : 0 });
  }
  softmax(x: Value, axis = -1): Value {
    this.requireFloat("Softmax", x);
    return this.one("Softmax", [x], x.dtype, x.shape, { axis });
  }
  logSoftmax(x: Value, axis = -1): Value {
    this.requireFloat("LogSoftmax", x);
    return this.one("LogSoftmax", [x], x.dtype, x.shape, { axis });
  }

  // ---- plumbing ----
  private binary(op: string, a: Value, b: Value): Value {
    this.sameType(op, a, b);
    return this.one(op, [a, b], a.dtype, this.shapes(op, () => infer.broadcast(a.shape, b.shape), a, b));
  }

  private unary(op: string, x: Value, float = false): Value {
    if (float) this.requireFloat(op, x);
    return this.one(op, [x], x.dtype, x.shape);
  }

  private one(op: string, inputs: ReadonlyArray<Value>, dtype: DType, shape: Shape, attributes: Record<string, AttributeValue> = {}): Value {
    return this.node(op, inputs, [{ dtype, shape }], attributes)[0]!;
  }

  /** Adds a node of any op (a contrib op via `domain`); output types are the caller's word. */
  node(op: string, inputs: ReadonlyArray<Value>, outputs: ReadonlyArray<{ dtype: DType; shape: Shape }>, attributes: Record<string, AttributeValue> = {}, outputName?: string, domain?: string): Value[] {
    const name = this.uniqueName(op);
    const outs = outputs.map((o, i) => this.value(outputName !== undefined && i === 0 ? outputName : outputs.length === 1 ? `${name}:out` : `${name}:out${i}`, o.dtype, o.shape));
    this.nodes.push({ name, op, inputs, outputs: outs, attributes, ...(domain === undefined ? {} : { domain }) });
    return outs;
  }

  private value(name: string, dtype: DType, shape: Shape): Value {
    if (this.names.has(name)) throw new BdcError({ code: "BDC_GRAPH_NAME", message: `graph "${this.name}": the name "${name}" is used twice`, hint: "give every input and weight its own name" });
    this.names.add(name);
    return { name, dtype, shape: shape.map((d: Dim) => canonical(d)) };
  }

  private uniqueName(base: string): string {
    const prefix = [...this.scopes, base].join("/");
    const n = this.counters.get(prefix) ?? 0;
    this.counters.set(prefix, n + 1);
    return n === 0 ? prefix : `${prefix}_${n}`;
  }

  private shapes(op: string, f: () => Shape, ...operands: Value[]): Shape {
    try {
      return f();
    } catch (e) {
      if (!(e instanceof infer.ShapeError)) throw e;
      const inputs = operands.map((v) => `${v.name} ${shapeToString(v.shape)}`).join(", ");
      return this.fail(op, `${e.message}${inputs === "" ? "" : ` (inputs: ${inputs})`}`);
    }
  }

  private sameType(op: string, a: Value, b: Value): void {
    if (a.dtype !== b.dtype) this.fail(op, `operands have different dtypes: ${a.name} is ${a.dtype}, ${b.name} is ${b.dtype}`);
  }

  private requireFloat(op: string, x: Value): void {
    if (!isFloat(x.dtype)) this.fail(op, `${x.name} is ${x.dtype}; ${op} needs a float tensor`);
  }

  private fail(op: string, message: string): never {
    const where = [...this.scopes, op].join("/");
    throw new BdcError({ code: "BDC_GRAPH_SHAPE", message: `graph "${this.name}", ${where}: ${message}`, hint: "a bug in the code that builds this graph (or a model config whose sizes do not fit together)" });
  }
}

