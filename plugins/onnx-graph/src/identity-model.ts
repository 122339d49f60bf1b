/** The smallest model: y = x, used to probe a provider and to copy tensors onto a device. */
import { GraphBuilder } from "./builder.ts";
import type { DType } from "./dtypes.ts";
import { serializeInline } from "./onnx-writer.ts";

const models = new Map<string, Uint8Array>();

/** An Identity model for tensors of `dtype` and `rank` (any dimensions). */
export function identityModel(dtype: DType, rank: number): Uint8Array {
  const key = `${dtype}:${rank}`;
  let model = models.get(key);
  if (model === undefined) {
    const g = new GraphBuilder("upload");
    g.output(g.input("x", dtype, Array.from({ length: rank }, (_, i) => `d${i}`)), "y");
    model = serializeInline(g.build());
    models.set(key, model);
  }
  return model;
}
