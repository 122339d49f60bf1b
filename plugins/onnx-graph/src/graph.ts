/**
 * The typed IR: values with a dtype and a (symbolic) shape, nodes with ONNX op types and
 * attributes, and initializers whose data may be produced lazily (a 16 GB checkpoint is streamed
 * to the external-data file one tensor at a time, never held whole).
 */
import type { Shape } from "./dims.ts";
import type { DType, TensorData } from "./dtypes.ts";

export interface Value {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: Shape;
}

export type AttributeValue = number | string | ReadonlyArray<number> | { readonly float: number } | { readonly floats: ReadonlyArray<number> };

export interface GraphNode {
  readonly name: string;
  readonly op: string;
  readonly inputs: ReadonlyArray<Value>;
  readonly outputs: ReadonlyArray<Value>;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  readonly domain?: string;
}

export interface Initializer {
  readonly value: Value;
  /** The data, or a function that reads it when the model is written. */
  readonly data: TensorData | (() => TensorData);
}

export interface Graph {
  readonly name: string;
  readonly inputs: ReadonlyArray<Value>;
  readonly outputs: ReadonlyArray<Value>;
  readonly nodes: ReadonlyArray<GraphNode>;
  readonly initializers: ReadonlyArray<Initializer>;
  /** ONNX opset of the default domain the nodes follow. */
  readonly opset: number;
}
