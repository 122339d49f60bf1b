/** The element types the builder knows, with their ONNX TensorProto codes and byte sizes. */
export type DType = "float32" | "float16" | "bfloat16" | "float64" | "int64" | "int32" | "bool";

export const ONNX_DTYPE: Readonly<Record<DType, number>> = { float32: 1, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11, bfloat16: 16 };
export const DTYPE_BYTES: Readonly<Record<DType, number>> = { float32: 4, float16: 2, bfloat16: 2, float64: 8, int64: 8, int32: 4, bool: 1 };

/** float64 is for checks (finite differences need its precision); models compute in the others. */
export const isFloat = (t: DType): boolean => t === "float32" || t === "float16" || t === "bfloat16" || t === "float64";

/** The typed array holding a tensor's elements in memory (16-bit floats as raw bits). */
export type TensorData = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;
