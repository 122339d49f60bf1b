/**
 * Weights held in memory behind the same interface as a checkpoint on disk: for tests that
 * derive weights from a checkpoint (e.g. grouped-query attention expanded to one kv head per
 * query head) and run them through code that takes a CheckpointWeights.
 */
import { BdcError } from "@bdc/core";
import type { CheckpointWeights, TensorInfo } from "./safetensors.ts";

export interface MemoryTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export function inMemoryWeights(tensors: ReadonlyArray<MemoryTensor>, source = "<memory>"): CheckpointWeights {
  const byName = new Map<string, MemoryTensor>();
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new BdcError({ code: "BDC_INTERNAL", message: `${source}: tensor "${t.name}" has shape [${t.shape.join(", ")}] (${n} values) but ${t.data.length} values` });
    byName.set(t.name, t);
  }
  const get = (name: string): MemoryTensor => {
    const t = byName.get(name);
    if (t === undefined) throw new BdcError({ code: "BDC_MODEL_TENSOR_MISSING", message: `${source}: no tensor "${name}"` });
    return t;
  };
  return {
    source,
    names: () => [...byName.keys()],
    has: (name) => byName.has(name),
    info(name): TensorInfo {
      const t = get(name);
      return { name, dtype: "F32", shape: [...t.shape], file: source, byteOffset: 0, byteLength: t.data.byteLength };
    },
    readFloat32: (name) => get(name).data.slice(),
    readBytes(name) {
      const d = get(name).data.slice();
      return new Uint8Array(d.buffer);
    },
    metadata: () => ({ format: "pt" }),
    close() {},
  };
}
