/** The config keys every plugin running the local model shares: which checkpoint, on what. */
import * as fs from "node:fs";
import * as path from "node:path";
import { Schema } from "effect";
import { BdcError, FilePath, option, optional, type KernelServices, type PreflightProblem } from "@bdc/core";
import { deviceInstallHint, deviceUnavailableReason, WEBGPU_DEVICE_ID, type Device } from "@bdc/onnx-graph";
import { readModelConfig } from "../checkpoint/config.ts";
import { resolveModelDir } from "../hub/pull-model.ts";
import type { LoraAdapter } from "../lora/adapter.ts";
import type { Composer } from "../lora/composer.ts";
import type { LoraSlots } from "../model/lora-slots.ts";
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, readPeftAdapter } from "../lora/peft.ts";
import { defaultOnnxCache, type LoadOptions } from "../model/causal-lm.ts";
import { leaseModel, type ModelLease } from "../model/model-pool.ts";

/** `device` and `device_id`, shared by every plugin that opens an ONNX Runtime session. */
export const placementFields = {
  device: option(
    Schema.Literal("cpu", "webgpu", "cuda"),
    "cpu",
    "where the model runs: cpu; webgpu (any GPU through the WebGPU provider bundled with onnxruntime-node; needs the Vulkan loader and driver on Linux); or cuda (needs the separately installed ONNX Runtime CUDA provider). Never falls back to the CPU",
  ),
  device_id: option(Schema.Int.pipe(Schema.nonNegative()), 0, "CUDA device ordinal (webgpu takes only 0: ONNX Runtime 1.30 offers no adapter choice)"),
} as const;

export const deviceFields = {
  ...placementFields,
  dtype: option(Schema.Literal("float32", "float16"), "float32", "compute type; float16 only on a GPU (webgpu, cuda)"),
  kv_cache: optional(Schema.Literal("resident", "host"), "where the KV cache lives between decode steps: resident (default on webgpu: GPU buffers fed back, never copied) or host (default elsewhere: JS buffers fed every step)"),
  threads: optional(Schema.Int.pipe(Schema.positive()), "CPU threads per operator (default: every core)"),
  onnx_cache: optional(FilePath, "where the built ONNX model is kept (default: .cache/bdc/onnx under the project root)"),
  adapter: optional(FilePath, "a PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) applied to every call"),
} as const;

export const MODEL_DOC = "a Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer.json), or a hub id pulled with `pnpm bdc models pull <id>`";

export interface DeviceConfig {
  readonly device: Device;
  readonly device_id: number;
  readonly dtype: "float32" | "float16";
  readonly kv_cache?: "resident" | "host" | undefined;
  readonly threads?: number | undefined;
  readonly onnx_cache?: string | undefined;
  readonly adapter?: string | undefined;
}

/** The device can be used here: its provider is installed (CUDA) or a GPU adapter answers (WebGPU, probed once per process). */
export async function deviceProblems(config: { readonly device: Device; readonly device_id: number }): Promise<PreflightProblem[]> {
  const reason = await deviceUnavailableReason(config.device, config.device_id);
  if (reason === undefined) return [];
  return [{ code: "BDC_DEVICE_UNAVAILABLE", path: [reason === WEBGPU_DEVICE_ID ? "device_id" : "device"], message: `device: ${config.device}, but ${reason}`, hint: deviceInstallHint(config.device) }];
}

/** Checks that need no model loading: the checkpoint is there and supported, the device exists. */
export async function modelProblems(model: string, config: DeviceConfig, baseDir: string): Promise<PreflightProblem[]> {
  const problems: PreflightProblem[] = [];
  try {
    readModelConfig(resolveModelDir(model, baseDir));
  } catch (e) {
    if (!(e instanceof BdcError)) throw e;
    problems.push({ code: e.code, path: ["model"], message: e.message, ...(e.hint === undefined ? {} : { hint: e.hint }) });
  }
  if (config.adapter !== undefined) {
    for (const file of [ADAPTER_CONFIG, ADAPTER_WEIGHTS]) {
      const f = path.join(config.adapter, file);
      if (!fs.existsSync(f)) problems.push({ code: "BDC_ADAPTER_NOT_FOUND", path: ["adapter"], message: `${f} does not exist`, hint: "give the folder PEFT's save_pretrained wrote (adapter_config.json, adapter_model.safetensors)" });
    }
  }
  if (config.device === "cpu" && config.dtype === "float16") {
    problems.push({ code: "BDC_CONFIG_VALUE", path: ["dtype"], message: "dtype: float16 is for a GPU (on the CPU, float32 is ONNX Runtime's fast path)", hint: "remove dtype, or set device: webgpu or cuda" });
  }
  problems.push(...(await deviceProblems(config)));
  return problems;
}

/**
 * The instance's model, loaded now (shared with other instances on the same checkpoint and LoRA
 * slots), so that a broken checkpoint stops the run before any work, not on the first call. The
 * instance gives the lease back when it closes. Its adapter, if any, is read here and fed per call.
 */
export async function loadInstanceModel(model: string, config: DeviceConfig, kernel: KernelServices, composer?: Composer, attention: "ops" | "fused" = "ops"): Promise<{ dir: string; lease: ModelLease; adapter: LoraAdapter | undefined }> {
  const dir = resolveModelDir(model, kernel.baseDir);
  if (composer !== undefined && config.adapter !== undefined) {
    throw new BdcError({ code: "BDC_CONFIG_VALUE", message: `instance "${kernel.instance}" has both an adapter (${config.adapter}) and a composer ("${composer.name}")`, hint: "give one: adapter for a static or merged adapter, composer for per-input composition of experts" });
  }
  const adapter = config.adapter === undefined ? undefined : readPeftAdapter(config.adapter, readModelConfig(dir));
  const slots: LoraSlots | undefined = composer !== undefined ? { targets: composer.stack.targets, layers: composer.stack.layers, gates: true } : adapter === undefined ? undefined : { targets: adapter.config.targets, layers: adapter.config.layers };
  const options: LoadOptions = {
    device: config.device,
    deviceId: config.device_id,
    dtype: config.dtype,
    ...(config.kv_cache === undefined ? {} : { kvCache: config.kv_cache }),
    threads: config.threads,
    cacheDir: config.onnx_cache ?? defaultOnnxCache(kernel.baseDir),
    lora: slots,
    ...(attention === "fused" ? { attention } : {}),
    onProgress: (line) => kernel.log(line),
  };
  return { dir, lease: await leaseModel(dir, options), adapter };
}
