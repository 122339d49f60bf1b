export * from "./dims.ts";
export * from "./dtypes.ts";
export * from "./half.ts";
export type * from "./graph.ts";
export { END, GraphBuilder, OPSET } from "./builder.ts";
export { DIFFERENTIABLE_OPS, gradients, type GradientRequest } from "./autodiff.ts";
export { serializeInline, writeModel, type WrittenModel } from "./onnx-writer.ts";
export * from "./session.ts";
