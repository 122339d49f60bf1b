/**
 * ONNX Runtime sessions on the device the user asked for. The npm package ships only the CPU
 * provider; asking ORT for CUDA without its provider library throws deep inside session
 * creation, so the library is looked for first and its absence explained. A session is never
 * moved to another device than the one asked for.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createRequire } from "node:module";
import ort from "onnxruntime-node";
import { BdcError } from "@bdc/core";

export type Device = "cpu" | "cuda";

export interface DeviceOptions {
  readonly device: Device;
  /** CUDA device ordinal. */
  readonly deviceId?: number | undefined;
  /** CPU threads for one operator (default: every core). */
  readonly threads?: number | undefined;
  /**
   * Let kernels keep pre-packed copies of constant weights (default true). A training graph
   * reads each frozen weight in two layouts (forward MatMul, backward Gemm with transB), so
   * packing keeps extra copies: off, the 125M model trains at the same speed in ~390 MB less.
   */
  readonly prepack?: boolean | undefined;
  /**
   * Let idle intra-op threads spin waiting for work (ORT's default, true). Off when several
   * sessions take turns in one process: their spinning pools otherwise steal each other's cores.
   */
  readonly spin?: boolean | undefined;
}

const require = createRequire(import.meta.url);

/** The folder holding libonnxruntime.so and, when installed, the CUDA provider. */
export function ortBinaryDir(): string {
  const pkg = path.dirname(require.resolve("onnxruntime-node/package.json"));
  return path.join(pkg, "bin", "napi-v6", `${os.platform()}`, `${os.arch()}`);
}

export const CUDA_INSTALL_HINT = [
  "the npm package of onnxruntime-node holds only the CPU provider; on a machine with internet access and CUDA 12 + cuDNN 9, fetch the CUDA provider once with",
  "  (cd node_modules/.pnpm/onnxruntime-node@1.30.0/node_modules/onnxruntime-node && ONNXRUNTIME_NODE_INSTALL=cuda12 node script/install)",
  "(or set `onnxruntime-node: true` under allowBuilds in pnpm-workspace.yaml, drop `onnxruntime-node-install=skip` from .npmrc and run `ONNXRUNTIME_NODE_INSTALL=cuda12 pnpm install --force`),",
  "then copy that folder's libonnxruntime_providers_*.so to offline machines; or use device: cpu",
].join("\n");

/** Why CUDA cannot be used here, or undefined when its provider library is installed. */
export function cudaUnavailableReason(): string | undefined {
  if (os.platform() !== "linux" && os.platform() !== "win32") return `onnxruntime-node has no CUDA provider for ${os.platform()}`;
  const dir = ortBinaryDir();
  const lib = os.platform() === "win32" ? "onnxruntime_providers_cuda.dll" : "libonnxruntime_providers_cuda.so";
  if (!fs.existsSync(path.join(dir, lib))) return `the CUDA execution provider (${lib}) is not installed in ${dir}`;
  return undefined;
}

export function sessionOptions(options: DeviceOptions): ort.InferenceSession.SessionOptions {
  const threads = options.threads ?? os.availableParallelism();
  return {
    executionProviders: options.device === "cuda" ? [{ name: "cuda", deviceId: options.deviceId ?? 0 }] : ["cpu"],
    graphOptimizationLevel: "all",
    executionMode: "sequential",
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    logSeverityLevel: 3,
    ...(options.prepack === false || options.spin === false
      ? { extra: { session: { ...(options.prepack === false ? { disable_prepacking: "1" } : {}), ...(options.spin === false ? { "intra_op.allow_spinning": "0" } : {}) } } }
      : {}),
  };
}

/** Opens a model file (external data beside it) or an in-memory model on the asked device. */
export async function openSession(model: string | Uint8Array, options: DeviceOptions): Promise<ort.InferenceSession> {
  const where = typeof model === "string" ? model : "an in-memory model";
  if (options.device === "cuda") {
    const reason = cudaUnavailableReason();
    if (reason !== undefined) throw new BdcError({ code: "BDC_DEVICE_UNAVAILABLE", message: `device: cuda was asked for ${where}, but ${reason}`, hint: CUDA_INSTALL_HINT });
  }
  try {
    return typeof model === "string" ? await ort.InferenceSession.create(model, sessionOptions(options)) : await ort.InferenceSession.create(model, sessionOptions(options));
  } catch (cause) {
    const message = (cause as Error).message ?? String(cause);
    if (options.device === "cuda") {
      throw new BdcError({
        code: "BDC_DEVICE_UNAVAILABLE",
        message: `ONNX Runtime could not open ${where} on CUDA device ${options.deviceId ?? 0}: ${message.split("\n")[0]}`,
        hint: "the CUDA provider needs CUDA 12 and cuDNN 9 libraries on the library path (LD_LIBRARY_PATH) and a visible GPU (nvidia-smi); or use device: cpu",
        cause,
      });
    }
    throw new BdcError({ code: "BDC_ONNX_SESSION", message: `ONNX Runtime could not open ${where}: ${message.split("\n")[0]}`, hint: "delete the cached model folder to have it rebuilt; if it persists, report it with the model's config.json", cause });
  }
}

export { ort };
