/**
 * Graph -> ONNX ModelProto (onnx-proto). Weights go either inline (small test graphs, loaded
 * from a buffer) or to an external-data file next to the model: protobuf cannot hold a message
 * over 2 GB, which a 0.5B-parameter fp32 model already exceeds. Tensors in the data file start
 * at page-aligned offsets so ONNX Runtime can map them; tiny tensors (shapes, axes) stay inline.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import onnxProto from "onnx-proto";
import type { onnx as P } from "onnx-proto";
import { BdcError } from "@bdc/core";
// onnx-proto is CommonJS: its namespace is a property of the default export.
const { onnx } = onnxProto;
import { ONNX_DTYPE, type TensorData } from "./dtypes.ts";
import type { AttributeValue, Graph, Value } from "./graph.ts";

const IR_VERSION = 8;
const ALIGN = 4096;
/** Smaller tensors (shapes, axes, scalars) stay inline: ONNX shape inference must read them. */
const INLINE_BELOW_BYTES = 1024;

function valueInfo(v: Value): P.IValueInfoProto {
  return {
    name: v.name,
    type: { tensorType: { elemType: ONNX_DTYPE[v.dtype], shape: { dim: v.shape.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: String(d) })) } } },
  };
}

function attribute(name: string, v: AttributeValue): P.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === "number") return Number.isInteger(v) ? { name, type: T.INT, i: v } : { name, type: T.FLOAT, f: v };
  if (typeof v === "string") return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if ("float" in v) return { name, type: T.FLOAT, f: v.float };
  if ("floats" in v) return { name, type: T.FLOATS, floats: [...v.floats] };
  return { name, type: T.INTS, ints: [...(v as ReadonlyArray<number>)] };
}

function bytesOf(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function resolveData(graph: Graph, i: number): TensorData {
  const init = graph.initializers[i]!;
  const data = typeof init.data === "function" ? init.data() : init.data;
  const expected = init.value.shape.reduce<number>((p, d) => p * (d as number), 1);
  if (data.length !== expected) {
    throw new BdcError({ code: "BDC_GRAPH_SHAPE", message: `graph "${graph.name}": weight ${init.value.name} has ${data.length} elements, its shape [${init.value.shape.join(", ")}] needs ${expected}`, hint: "the checkpoint's tensor does not match the model config" });
  }
  return data;
}

function modelProto(graph: Graph, initializer: P.ITensorProto[]): Uint8Array {
  if (os.endianness() !== "LE") throw new BdcError({ code: "BDC_INTERNAL", message: "ONNX raw data is little-endian; this machine is big-endian" });
  const model: P.IModelProto = {
    irVersion: IR_VERSION,
    producerName: "bdc",
    opsetImport: [{ domain: "", version: graph.opset }, ...(graph.nodes.some((n) => n.domain === "com.microsoft") ? [{ domain: "com.microsoft", version: 1 }] : [])],
    graph: {
      name: graph.name,
      node: graph.nodes.map((n) => ({
        name: n.name,
        opType: n.op,
        ...(n.domain === undefined ? {} : { domain: n.domain }),
        input: n.inputs.map((v) => v.name),
        output: n.outputs.map((v) => v.name),
        attribute: Object.entries(n.attributes).map(([k, v]) => attribute(k, v)),
      })),
      initializer,
      input: graph.inputs.map(valueInfo),
      output: graph.outputs.map(valueInfo),
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

function tensorHeader(graph: Graph, i: number): P.ITensorProto {
  const v = graph.initializers[i]!.value;
  return { name: v.name, dims: v.shape.map(Number), dataType: ONNX_DTYPE[v.dtype] };
}

/** The whole model with weights inline, for InferenceSession.create(buffer). Small graphs only. */
export function serializeInline(graph: Graph): Uint8Array {
  return modelProto(
    graph,
    graph.initializers.map((_, i) => ({ ...tensorHeader(graph, i), rawData: bytesOf(resolveData(graph, i)) })),
  );
}

export interface WrittenModel {
  readonly modelPath: string;
  readonly dataPath: string;
  readonly dataBytes: number;
}

/**
 * Writes `<dir>/<name>` and `<dir>/<name>.data`. Weights are produced and written one at a time;
 * `onWeight` reports progress. Both files appear under their final names only when complete.
 */
export function writeModel(graph: Graph, dir: string, name = "model.onnx", onWeight?: (done: number, total: number) => void): WrittenModel {
  fs.mkdirSync(dir, { recursive: true });
  const modelPath = path.join(dir, name);
  const dataName = `${name}.data`;
  const dataPath = path.join(dir, dataName);
  const tmpData = `${dataPath}.${process.pid}.tmp`;
  const fd = fs.openSync(tmpData, "w");
  const tensors: P.ITensorProto[] = [];
  let offset = 0;
  try {
    for (let i = 0; i < graph.initializers.length; i++) {
      const bytes = bytesOf(resolveData(graph, i));
      if (bytes.length < INLINE_BELOW_BYTES) {
        tensors.push({ ...tensorHeader(graph, i), rawData: bytes });
        onWeight?.(i + 1, graph.initializers.length);
        continue;
      }
      offset = Math.ceil(offset / ALIGN) * ALIGN;
      let written = 0;
      while (written < bytes.length) written += fs.writeSync(fd, bytes, written, bytes.length - written, offset + written);
      tensors.push({
        ...tensorHeader(graph, i),
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: "location", value: dataName },
          { key: "offset", value: String(offset) },
          { key: "length", value: String(bytes.length) },
        ],
      });
      offset += bytes.length;
      onWeight?.(i + 1, graph.initializers.length);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const tmpModel = `${modelPath}.${process.pid}.tmp`;
  fs.writeFileSync(tmpModel, modelProto(graph, tensors));
  fs.renameSync(tmpData, dataPath);
  fs.renameSync(tmpModel, modelPath);
  return { modelPath, dataPath, dataBytes: offset };
}
