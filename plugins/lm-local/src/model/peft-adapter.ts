/**
 * A PEFT LoRA adapter folder (`adapter_config.json` + `adapter_model.safetensors`, as
 * `peft.PeftModel.save_pretrained` writes it) turned into the graph's LoRA slots and the tensors
 * that fill them: A and B transposed to [in, r] and [r, out], and scale = lora_alpha / r
 * (lora_alpha / sqrt(r) with use_rslora).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import { ort } from "@bdc/onnx-graph";
import { openSafetensorsFile } from "../checkpoint/safetensors.ts";
import type { ModelConfig } from "../checkpoint/config.ts";
import { LORA_SCALE_INPUT, LORA_TARGETS, loraInputNames, type LoraSlots, type LoraTarget } from "./lora-slots.ts";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";

export interface PeftAdapter {
  readonly dir: string;
  readonly rank: number;
  readonly scale: number;
  readonly slots: LoraSlots;
  /** Graph inputs: every slot's A and B, and the scale. */
  readonly feeds: Readonly<Record<string, ort.Tensor>>;
}

const invalid = (file: string, message: string, hint = "an adapter saved by PEFT (save_pretrained) for a LoRA of this model") =>
  new BdcError({ code: "BDC_ADAPTER_INVALID", message: `${file}: ${message}`, hint });

/** `model.layers.3.self_attn.q_proj` (after PEFT's `base_model.model.` prefix) -> [3, "q_proj"]. */
const MODULE = /(?:^|\.)layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])(?:\.default)?\.weight$/;

function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c]!;
  return out;
}

export function readPeftAdapter(dir: string, model: ModelConfig): PeftAdapter {
  const configFile = path.join(dir, ADAPTER_CONFIG);
  const weightsFile = path.join(dir, ADAPTER_WEIGHTS);
  for (const f of [configFile, weightsFile]) {
    if (!fs.existsSync(f)) throw new BdcError({ code: "BDC_ADAPTER_NOT_FOUND", message: `${f} does not exist`, hint: "give the folder PEFT's save_pretrained wrote (adapter_config.json, adapter_model.safetensors)" });
  }
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(fs.readFileSync(configFile, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw invalid(configFile, `not JSON (${(e as Error).message})`);
  }
  if (config["peft_type"] !== "LORA") throw invalid(configFile, `peft_type is ${JSON.stringify(config["peft_type"])}; only LORA adapters are supported`);
  const rank = config["r"];
  const alpha = config["lora_alpha"] ?? rank;
  if (typeof rank !== "number" || !Number.isInteger(rank) || rank < 1 || typeof alpha !== "number") throw invalid(configFile, "r must be a positive integer and lora_alpha a number");
  for (const key of ["rank_pattern", "alpha_pattern"]) {
    const v = config[key];
    if (v !== undefined && v !== null && Object.keys(v as object).length > 0) throw invalid(configFile, `${key} (per-module ranks or alphas) is not supported`);
  }
  if (config["fan_in_fan_out"] === true) throw invalid(configFile, "fan_in_fan_out is for GPT-2-style Conv1D layers; Llama-family projections are Linear");
  if (config["use_dora"] === true) throw invalid(configFile, "DoRA adapters (use_dora) are not supported");
  const scale = config["use_rslora"] === true ? alpha / Math.sqrt(rank) : alpha / rank;

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
      const key = `${layer}.${target}`;
      const entry = found.get(key) ?? { layer, target };
      const shape = weights.info(name).shape;
      if (shape.length !== 2 || (m[3] === "A" ? shape[0] : shape[1]) !== rank) throw invalid(weightsFile, `tensor ${name} has shape [${shape.join(", ")}]; rank ${rank} expected`);
      if (m[3] === "A") entry.A = weights.readFloat32(name);
      else entry.B = weights.readFloat32(name);
      found.set(key, entry);
    }
    if (found.size === 0) throw invalid(weightsFile, "no LoRA tensors (lora_A / lora_B of decoder projections)");
    const dims = projectionDims(model);
    const targets = new Set<LoraTarget>();
    const layers = new Set<number>();
    for (const e of found.values()) {
      targets.add(e.target);
      layers.add(e.layer);
    }
    // The graph gives every (layer, target) pair of the sets a slot; PEFT adapts exactly those.
    const feeds: Record<string, ort.Tensor> = { [LORA_SCALE_INPUT]: new ort.Tensor("float32", Float32Array.from([scale]), [1]) };
    for (const layer of layers) {
      for (const target of targets) {
        const e = found.get(`${layer}.${target}`);
        if (e?.A === undefined || e.B === undefined) throw invalid(weightsFile, `layer ${layer} ${target}: lora_A and lora_B must both be present for every adapted layer and module`);
        const [inDim, outDim] = dims[target];
        if (e.A.length !== rank * inDim || e.B.length !== outDim * rank) throw invalid(weightsFile, `layer ${layer} ${target}: A/B do not fit the model's ${inDim} -> ${outDim} projection`, "the adapter was trained for another model");
        const names = loraInputNames(layer, target);
        feeds[names.a] = new ort.Tensor("float32", transpose(e.A, rank, inDim), [inDim, rank]);
        feeds[names.b] = new ort.Tensor("float32", transpose(e.B, outDim, rank), [rank, outDim]);
      }
    }
    return { dir, rank, scale, slots: { targets: [...targets].sort(), layers: [...layers].sort((a, b) => a - b) }, feeds };
  } finally {
    weights.close();
  }
}

function projectionDims(c: ModelConfig): Readonly<Record<LoraTarget, readonly [number, number]>> {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  return { q_proj: [c.hiddenSize, q], k_proj: [c.hiddenSize, kv], v_proj: [c.hiddenSize, kv], o_proj: [q, c.hiddenSize], gate_proj: [c.hiddenSize, c.intermediateSize], up_proj: [c.hiddenSize, c.intermediateSize], down_proj: [c.intermediateSize, c.hiddenSize] };
}
