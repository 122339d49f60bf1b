/**
 * PEFT adapter folders, read and written symmetrically: `adapter_config.json` +
 * `adapter_model.safetensors` as `PeftModel.save_pretrained` writes them (tensor names
 * `base_model.model.model.layers.<i>.<self_attn|mlp>.<proj>.lora_A.weight` / `.lora_B.weight`),
 * to and from the one LoraAdapter type. What `writePeftAdapter` writes, PEFT's
 * `PeftModel.from_pretrained` and `readPeftAdapter` load.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import type { ModelConfig } from "../checkpoint/config.ts";
import { openSafetensorsFile, safetensorsBytes, type TensorToWrite } from "../checkpoint/safetensors.ts";
import { writeFileDurably } from "../durable-files.ts";
import { checkLoraAdapter, LORA_TARGETS, moduleKey, projectionDims, type LoraAdapter, type LoraConfig, type LoraModule, type LoraTarget } from "./adapter.ts";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";

const invalid = (file: string, message: string, hint = "an adapter saved by PEFT (save_pretrained) for a LoRA of this model") =>
  new BdcError({ code: "BDC_ADAPTER_INVALID", message: `${file}: ${message}`, hint });

/** `model.layers.3.self_attn.q_proj` (after PEFT's `base_model.model.` prefix) -> [3, "q_proj"]. */
const MODULE = /(?:^|\.)layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])(?:\.default)?\.weight$/;

const ATTENTION: ReadonlySet<LoraTarget> = new Set(["q_proj", "k_proj", "v_proj", "o_proj"]);
const moduleOf = (target: LoraTarget): string => (ATTENTION.has(target) ? "self_attn" : "mlp");

/** PEFT's tensor names for one adapted projection. */
export function peftTensorNames(layer: number, target: LoraTarget): { A: string; B: string } {
  const prefix = `base_model.model.model.layers.${layer}.${moduleOf(target)}.${target}`;
  return { A: `${prefix}.lora_A.weight`, B: `${prefix}.lora_B.weight` };
}

export function hasPeftAdapter(dir: string): boolean {
  return fs.existsSync(path.join(dir, ADAPTER_CONFIG)) && fs.existsSync(path.join(dir, ADAPTER_WEIGHTS));
}

export function readPeftAdapter(dir: string, model: ModelConfig): LoraAdapter {
  const configFile = path.join(dir, ADAPTER_CONFIG);
  const weightsFile = path.join(dir, ADAPTER_WEIGHTS);
  for (const f of [configFile, weightsFile]) {
    if (!fs.existsSync(f)) throw new BdcError({ code: "BDC_ADAPTER_NOT_FOUND", message: `${f} does not exist`, hint: "give the folder PEFT's save_pretrained (or `bdc lm train`) wrote: adapter_config.json, adapter_model.safetensors" });
  }
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(configFile, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw invalid(configFile, `not JSON (${(e as Error).message})`);
  }
  if (raw["peft_type"] !== "LORA") throw invalid(configFile, `peft_type is ${JSON.stringify(raw["peft_type"])}; only LORA adapters are supported`);
  const rank = raw["r"];
  const alpha = raw["lora_alpha"] ?? rank;
  if (typeof rank !== "number" || !Number.isInteger(rank) || rank < 1 || typeof alpha !== "number") throw invalid(configFile, "r must be a positive integer and lora_alpha a number");
  for (const key of ["rank_pattern", "alpha_pattern"]) {
    const v = raw[key];
    if (v !== undefined && v !== null && Object.keys(v as object).length > 0) throw invalid(configFile, `${key} (per-module ranks or alphas) is not supported`);
  }
  if (raw["fan_in_fan_out"] === true) throw invalid(configFile, "fan_in_fan_out is for GPT-2-style Conv1D layers; Llama-family projections are Linear");
  if (raw["use_dora"] === true) throw invalid(configFile, "DoRA adapters (use_dora) are not supported");
  const dropout = typeof raw["lora_dropout"] === "number" ? raw["lora_dropout"] : 0;

  const weights = openSafetensorsFile(weightsFile);
  try {
    const found = new Map<string, { layer: number; target: LoraTarget; A?: Float32Array; B?: Float32Array }>();
    for (const name of weights.names()) {
      const m = MODULE.exec(name);
      if (m === null) {
        if (/lora_(A|B|embedding)/.test(name)) throw invalid(weightsFile, `tensor ${name} is not a LoRA of a decoder projection (${LORA_TARGETS.join(", ")})`);
        continue;
      }
      const layer = Number(m[1]);
      const target = m[2] as LoraTarget;
      if (!LORA_TARGETS.includes(target)) throw invalid(weightsFile, `tensor ${name}: ${target} is not one of ${LORA_TARGETS.join(", ")}`);
      if (layer >= model.numLayers) throw invalid(weightsFile, `tensor ${name}: layer ${layer}, but the model has ${model.numLayers} layers`, "the adapter was trained for another model");
      const shape = weights.info(name).shape;
      if (shape.length !== 2 || (m[3] === "A" ? shape[0] : shape[1]) !== rank) throw invalid(weightsFile, `tensor ${name} has shape [${shape.join(", ")}]; rank ${rank} expected`);
      const key = moduleKey(layer, target);
      const entry = found.get(key) ?? { layer, target };
      if (m[3] === "A") entry.A = weights.readFloat32(name);
      else entry.B = weights.readFloat32(name);
      found.set(key, entry);
    }
    if (found.size === 0) throw invalid(weightsFile, "no LoRA tensors (lora_A / lora_B of decoder projections)");
    const targets = LORA_TARGETS.filter((t) => [...found.values()].some((e) => e.target === t));
    const layers = [...new Set([...found.values()].map((e) => e.layer))].sort((a, b) => a - b);
    const modules = new Map<string, LoraModule>();
    for (const layer of layers) {
      for (const target of targets) {
        const e = found.get(moduleKey(layer, target));
        if (e?.A === undefined || e.B === undefined) throw invalid(weightsFile, `layer ${layer} ${target}: lora_A and lora_B must both be present for every adapted layer and module`);
        modules.set(moduleKey(layer, target), { A: e.A, B: e.B });
      }
    }
    const config: LoraConfig = {
      rank,
      alpha,
      rslora: raw["use_rslora"] === true,
      dropout,
      targets,
      layers,
      baseModel: typeof raw["base_model_name_or_path"] === "string" ? raw["base_model_name_or_path"] : undefined,
    };
    const adapter = { config, modules };
    try {
      checkLoraAdapter(adapter, model, weightsFile);
    } catch (e) {
      throw e instanceof BdcError && e.code === "BDC_ADAPTER_INVALID" ? e : invalid(weightsFile, (e as Error).message);
    }
    return adapter;
  } finally {
    weights.close();
  }
}

/** adapter_config.json as PEFT writes it for a LoRA of a causal LM. */
export function peftConfigJson(config: LoraConfig, numLayers: number): Record<string, unknown> {
  const allLayers = config.layers.length === numLayers && config.layers.every((l, i) => l === i);
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: config.baseModel ?? null,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: allLayers ? null : "layers",
    layers_to_transform: allLayers ? null : [...config.layers],
    lora_alpha: config.alpha,
    lora_dropout: config.dropout,
    modules_to_save: null,
    peft_type: "LORA",
    r: config.rank,
    rank_pattern: {},
    revision: null,
    target_modules: [...config.targets],
    task_type: "CAUSAL_LM",
    use_dora: false,
    use_rslora: config.rslora,
  };
}

/** The adapter's tensors under PEFT's names. */
export function peftTensors(adapter: LoraAdapter, model: ModelConfig): TensorToWrite[] {
  const dims = projectionDims(model);
  const r = adapter.config.rank;
  const out: TensorToWrite[] = [];
  for (const layer of adapter.config.layers) {
    for (const target of adapter.config.targets) {
      const m = adapter.modules.get(moduleKey(layer, target))!;
      const names = peftTensorNames(layer, target);
      const [inDim, outDim] = dims[target];
      out.push({ name: names.A, dtype: "F32", shape: [r, inDim], data: m.A }, { name: names.B, dtype: "F32", shape: [outDim, r], data: m.B });
    }
  }
  return out;
}

/**
 * Writes `dir/adapter_config.json` and `dir/adapter_model.safetensors`, each to a temporary
 * file first, flushed and renamed into place: a reader never sees a half-written file.
 */
export function writePeftAdapter(dir: string, adapter: LoraAdapter, model: ModelConfig): void {
  checkLoraAdapter(adapter, model);
  fs.mkdirSync(dir, { recursive: true });
  writeFileDurably(path.join(dir, ADAPTER_WEIGHTS), safetensorsBytes(peftTensors(adapter, model)));
  writeFileDurably(path.join(dir, ADAPTER_CONFIG), `${JSON.stringify(peftConfigJson(adapter.config, model.numLayers), null, 2)}\n`);
}
