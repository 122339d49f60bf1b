/**
 * Host tensors copied onto the device once, to be fed to many runs without an upload per run
 * (LoRA factors of an adapter, a stack of experts). onnxruntime-node has no API to create a GPU
 * tensor from data, so a one-node session does it: its input comes from the host and its output
 * stays on the device. On the CPU the "upload" is a copy, which lets the same code be tested here.
 */
import type { DType } from "./dtypes.ts";
import { identityModel } from "./identity-model.ts";
import { openSession, ort, type DeviceOptions } from "./session.ts";

export class DeviceUploader {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();
  private readonly uploaded = new Set<ort.Tensor>();

  constructor(private readonly options: DeviceOptions) {}

  /** `tensor`'s copy on the device (a GPU-buffer tensor on WebGPU), owned by this uploader until it is disposed. */
  async upload(tensor: ort.Tensor): Promise<ort.Tensor> {
    const dtype = tensor.type as DType;
    const key = `${dtype}:${tensor.dims.length}`;
    let session = this.sessions.get(key);
    if (session === undefined) {
      session = openSession(identityModel(dtype, tensor.dims.length), { ...this.options, threads: 1, outputsOnDevice: ["y"] });
      this.sessions.set(key, session);
    }
    const out = (await (await session).run({ x: tensor }))["y"]!;
    this.uploaded.add(out);
    return out;
  }

  /** Frees every device copy made here, then the one-node sessions. */
  async dispose(): Promise<void> {
    for (const t of this.uploaded) t.dispose();
    this.uploaded.clear();
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}
