/**
 * ONNX Runtime sessions on the device the user asked for: the CPU provider; the WebGPU provider
 * that onnxruntime-node bundles for linux-x64 (Dawn over Vulkan: any GPU vendor, no CUDA
 * toolkit); or the CUDA provider, which the npm package does not ship.
 * A missing provider or GPU is found before any work and explained; a session is never moved to
 * another device than the one asked for.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createRequire } from "node:module";
import ort from "onnxruntime-node";
import { BdcError } from "@bdc/core";
import { identityModel } from "./identity-model.ts";

export type Device = "cpu" | "cuda" | "webgpu";
export const DEVICES: ReadonlyArray<Device> = ["cpu", "webgpu", "cuda"];

export interface DeviceOptions {
  readonly device: Device;
  /** CUDA device ordinal (WebGPU: ONNX Runtime 1.30 takes no adapter choice; only 0 is accepted). */
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
  /**
   * Outputs left on the device (WebGPU): they come back as tensors holding a GPU buffer, to be
   * fed to a later run without a copy (a KV cache, uploaded weights). Their data cannot be read
   * in JS (onnxruntime-node 1.30 does not download GPU buffers). Ignored on other devices.
   */
  readonly outputsOnDevice?: ReadonlyArray<string> | undefined;
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

export const WEBGPU_INSTALL_HINT = [
  "ONNX Runtime's WebGPU provider (bundled with onnxruntime-node) reaches the GPU through Vulkan on Linux:",
  "install the Vulkan loader (Debian/Ubuntu: apt install libvulkan1) and the GPU's Vulkan driver (NVIDIA: the proprietary driver with libglvnd0, libegl1 and libglx0;",
  "AMD/Intel: apt install mesa-vulkan-drivers), check with `vulkaninfo --summary`; software Vulkan (lavapipe) is not enough for Dawn; or use device: cpu",
].join("\n");

let loaderCheck: { reason: string | undefined } | undefined;

/** Why WebGPU cannot be used here, from what can be checked without opening a session (the loader, the platform); once per process. */
export function webgpuUnavailableReasonSync(): string | undefined {
  loaderCheck ??= { reason: loaderReason() };
  return loaderCheck.reason;
}

function loaderReason(): string | undefined {
  const bundled = ort.listSupportedBackends?.() ?? [];
  if (!bundled.some((b) => b.name === "webgpu" && b.bundled)) return `this build of onnxruntime-node (${os.platform()}-${os.arch()}) has no WebGPU provider`;
  if (os.platform() === "linux" && findSharedLibrary("libvulkan.so.1") === undefined) return "the Vulkan loader libvulkan.so.1 is not installed (searched LD_LIBRARY_PATH and the system library folders)";
  return undefined;
}

let webgpuProbe: Promise<string | undefined> | undefined;

/**
 * Why WebGPU cannot be used here, or undefined when a GPU adapter was found: opens a one-node
 * model on the WebGPU provider once per process (Dawn enumerates adapters on first use).
 */
export function webgpuUnavailableReason(): Promise<string | undefined> {
  webgpuProbe ??= (async () => {
    const quick = webgpuUnavailableReasonSync();
    if (quick !== undefined) return quick;
    try {
      const session = await ort.InferenceSession.create(identityModel("float32", 1), { executionProviders: [{ name: "webgpu" }], logSeverityLevel: 3 });
      await session.release();
      return undefined;
    } catch (e) {
      return webgpuFailure(e);
    }
  })();
  return webgpuProbe;
}

/** ORT's WebGPU errors as a sentence: the adapter search failing is the common one. */
export function webgpuFailure(cause: unknown): string {
  const message = ((cause as Error).message ?? String(cause)).trim();
  const adapter = /Failed to get a WebGPU adapter:\s*(.*)$/m.exec(message);
  if (adapter !== null) return `ONNX Runtime's WebGPU provider found no GPU adapter (Dawn: "${adapter[1]!.trim()}")`;
  return `ONNX Runtime's WebGPU provider failed to start: ${message.split("\n")[0]}`;
}

/** Why `device` cannot be used here (undefined: it can). WebGPU is probed by opening a tiny session. */
export async function deviceUnavailableReason(device: Device, deviceId = 0): Promise<string | undefined> {
  if (device === "cuda") return cudaUnavailableReason();
  if (device === "webgpu") return deviceId !== 0 ? WEBGPU_DEVICE_ID : await webgpuUnavailableReason();
  return undefined;
}

export const WEBGPU_DEVICE_ID = "device_id is for CUDA: onnxruntime-node 1.30 lets no one choose the WebGPU adapter (Dawn takes the first high-performance one); leave device_id at 0, and to use another GPU run where Vulkan sees only that one (a container given one GPU; Mesa drivers: MESA_VK_DEVICE_SELECT)";

/** The install hint for a device that is not available. */
export function deviceInstallHint(device: Device): string {
  return device === "cuda" ? CUDA_INSTALL_HINT : device === "webgpu" ? WEBGPU_INSTALL_HINT : "";
}

function findSharedLibrary(name: string): string | undefined {
  const dirs = [...(process.env["LD_LIBRARY_PATH"] ?? "").split(":").filter((d) => d.length > 0), "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib", "/usr/local/lib"];
  for (const dir of dirs) if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  try {
    const cache = fs.readFileSync("/etc/ld.so.cache");
    if (cache.includes(Buffer.from(name))) return name;
  } catch {
    // no loader cache: only the folders above count
  }
  return undefined;
}

export function sessionOptions(options: DeviceOptions): ort.InferenceSession.SessionOptions {
  const threads = options.threads ?? os.availableParallelism();
  const onDevice = options.device === "webgpu" && options.outputsOnDevice !== undefined && options.outputsOnDevice.length > 0;
  return {
    executionProviders: options.device === "cuda" ? [{ name: "cuda", deviceId: options.deviceId ?? 0 }] : options.device === "webgpu" ? [{ name: "webgpu" }] : ["cpu"],
    ...(onDevice ? { preferredOutputLocation: Object.fromEntries(options.outputsOnDevice!.map((n) => [n, "gpu-buffer" as const])) } : {}),
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
  if (options.device !== "cpu") {
    const reason = options.device === "cuda" ? cudaUnavailableReason() : options.deviceId !== undefined && options.deviceId !== 0 ? WEBGPU_DEVICE_ID : webgpuUnavailableReasonSync();
    if (reason !== undefined) throw new BdcError({ code: "BDC_DEVICE_UNAVAILABLE", message: `device: ${options.device} was asked for ${where}, but ${reason}`, hint: deviceInstallHint(options.device) });
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
    if (options.device === "webgpu") {
      const reason = webgpuFailure(cause);
      const noAdapter = reason.includes("found no GPU adapter");
      throw new BdcError({
        code: noAdapter ? "BDC_DEVICE_UNAVAILABLE" : "BDC_ONNX_SESSION",
        message: noAdapter ? `device: webgpu was asked for ${where}, but ${reason}` : `device: webgpu could not open ${where}: ${reason}`,
        hint: noAdapter ? WEBGPU_INSTALL_HINT : "the model opens on device: cpu? then the WebGPU provider lacks something this graph needs: report it with the message above; or use device: cpu",
        cause,
      });
    }
    throw new BdcError({ code: "BDC_ONNX_SESSION", message: `ONNX Runtime could not open ${where}: ${message.split("\n")[0]}`, hint: "delete the cached model folder to have it rebuilt; if it persists, report it with the model's config.json", cause });
  }
}

export { ort };
