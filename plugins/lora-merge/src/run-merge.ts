/**
 * One merge from adapter folders to an output folder, shared by `bdc lora merge` and
 * step/merge-lora:
 *
 * - `adapter`: a PEFT folder (the merged update re-factorised by truncated SVD to `rank`, the
 *   energy kept in merge_report.json; `cat` is exact at the sum of the ranks);
 * - `checkpoint`: the base model with W + dW written into its weights (exact: the full merged
 *   update, no rank truncation; float32 by default, or the base's dtype, rounding as
 *   merge_and_unload does), a checkpoint folder every loader of the project reads.
 *
 * Twin-Merging writes its parts too (shared/, exclusive-<k>/, twin.json) beside the static adapter.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import { INDEX_FILE, openCheckpointWeights, projectionDims, readModelConfig, readPeftAdapter, writePeftAdapter, writeSafetensors, type LoraAdapter, type LoraTarget, type ModelConfig, type TensorToWrite } from "@bdc/lm-local";
import { concatenate, loraDelta, mergedDeltas, mergeFactors, mergeToAdapter, type MergeReport, type NamedAdapter } from "./merge.ts";
import { specOf, type MethodName, type MethodOptions } from "./presets.ts";
import { routedAdapter, twinParts } from "./twin.ts";

export interface MergeRequest {
  /** The base model's checkpoint folder (its config; its weights for `checkpoint`). */
  readonly model: string;
  /** PEFT adapter folders. */
  readonly adapters: ReadonlyArray<string>;
  readonly method: MethodName;
  readonly options: MethodOptions;
  /** Output rank of an adapter (default: the largest input rank; cat: the sum). */
  readonly rank?: number | undefined;
  /** Delta space (default) or factor space (labelled option; not for cat/twin). */
  readonly space?: "delta" | "factors" | undefined;
  readonly output: "adapter" | "checkpoint";
  /** Checkpoint output: float32 (exact, default) or the base's dtype. */
  readonly dtype?: "float32" | "base" | undefined;
  readonly out: string;
  readonly seed: number;
  /** Twin: rank of the shared and exclusive parts (default: the largest input rank). */
  readonly twin?: { readonly sharedRank?: number | undefined; readonly exclusiveRank?: number | undefined } | undefined;
}

export interface MergeSummary {
  readonly out: string;
  readonly output: "adapter" | "checkpoint";
  readonly method: MethodName;
  readonly rank: number | null;
  readonly energy_kept: number;
  readonly notes: ReadonlyArray<string>;
}

export const MERGE_REPORT = "merge_report.json";

const ATTENTION = new Set(["q_proj", "k_proj", "v_proj", "o_proj"]);
const tensorName = (layer: number, target: LoraTarget) => `model.layers.${layer}.${ATTENTION.has(target) ? "self_attn" : "mlp"}.${target}.weight`;

export function loadExperts(model: ModelConfig, dirs: ReadonlyArray<string>): NamedAdapter[] {
  return dirs.map((dir) => ({ name: dir, adapter: readPeftAdapter(dir, model) }));
}

export function runMerge(req: MergeRequest): MergeSummary {
  const model = readModelConfig(req.model);
  const experts = loadExperts(model, req.adapters);
  if (experts.length < 2 && req.method !== "linear") throw new BdcError({ code: "BDC_MERGE_INPUT", message: `${req.method} needs at least two adapters (got ${experts.length})`, hint: "give --adapters A,B[,...]" });
  if (req.space === "factors" && (req.method === "cat" || req.method === "twin")) throw new BdcError({ code: "BDC_CONFIG_VALUE", message: `space: factors applies to linear, task-arithmetic, ties and dare, not ${req.method}` });
  const maxRank = Math.max(...experts.map((e) => e.adapter.config.rank));
  fs.mkdirSync(req.out, { recursive: true });

  if (req.output === "checkpoint") {
    const deltas = new Map<string, Float32Array>();
    const dims = projectionDims(model);
    let notes: ReadonlyArray<string> = [];
    if (req.method === "cat" || req.method === "twin" || req.space === "factors") {
      const merged = adapterOf(req, experts, model, maxRank);
      notes = merged.report.notes;
      for (const [key, m] of merged.adapter.modules) {
        const [layer, target] = [Number(key.split(".")[0]), key.split(".")[1] as LoraTarget];
        const [inDim, outDim] = dims[target];
        deltas.set(tensorName(layer, target), Float32Array.from(loraDelta(m, merged.adapter.config.rank, inDim, outDim, merged.adapter.config.alpha / merged.adapter.config.rank)));
      }
    } else {
      for (const m of mergedDeltas(experts, model, { method: req.method, spec: specOf(req.method, experts.length, req.options), seed: req.seed })) deltas.set(tensorName(m.layer, m.target), Float32Array.from(m.delta));
    }
    writeMergedCheckpoint(req.model, req.out, deltas, req.dtype ?? "float32");
    const report = { method: req.method, output: "checkpoint", dtype: req.dtype ?? "float32", adapters: req.adapters, options: req.options, modules: [...deltas.keys()], notes };
    fs.writeFileSync(path.join(req.out, MERGE_REPORT), `${JSON.stringify(report, null, 2)}\n`);
    return { out: req.out, output: "checkpoint", method: req.method, rank: null, energy_kept: 1, notes };
  }

  const merged = adapterOf(req, experts, model, maxRank);
  writePeftAdapter(req.out, merged.adapter, model);
  fs.writeFileSync(path.join(req.out, MERGE_REPORT), `${JSON.stringify({ ...merged.report, adapters: req.adapters, options: req.options }, null, 2)}\n`);
  return { out: req.out, output: "adapter", method: req.method, rank: merged.report.rank, energy_kept: merged.report.energyKept, notes: merged.report.notes };
}

function adapterOf(req: MergeRequest, experts: NamedAdapter[], model: ModelConfig, maxRank: number): { adapter: LoraAdapter; report: MergeReport } {
  const weights = req.options.weights ?? experts.map(() => 1);
  if (req.method === "cat") return concatenate(experts, model, weights);
  if (req.method === "twin") {
    const sharedRank = req.twin?.sharedRank ?? maxRank;
    const exclusiveRank = req.twin?.exclusiveRank ?? maxRank;
    const parts = twinParts(experts, model, { shared: specOf("ties", experts.length, req.options), sharedRank, exclusiveRank, seed: req.seed });
    writePeftAdapter(path.join(req.out, "shared"), parts.shared, model);
    parts.exclusive.forEach((a, k) => writePeftAdapter(path.join(req.out, `exclusive-${k}`), a, model));
    fs.writeFileSync(
      path.join(req.out, "twin.json"),
      `${JSON.stringify({ experts: parts.experts, shared: "shared", exclusive: parts.exclusive.map((_, k) => `exclusive-${k}`), shared_rank: sharedRank, exclusive_rank: exclusiveRank, shared_energy_kept: parts.sharedEnergyKept, exclusive_energy_kept: parts.exclusiveEnergyKept, router: { kind: "centroid-softmax", temperature: 0.1 } }, null, 2)}\n`,
    );
    const uniform = experts.map(() => 1 / experts.length);
    const adapter = routedAdapter(parts, model, uniform);
    return {
      adapter,
      report: {
        method: "twin",
        space: "concat",
        rank: adapter.config.rank,
        modules: [...adapter.modules.keys()].map((module) => ({ module, from: experts.map((e) => e.name), energyKept: parts.sharedEnergyKept })),
        energyKept: parts.sharedEnergyKept,
        notes: [`static Twin-Merging: the router's weights fixed to uniform (1/${experts.length}); the parts for per-input routing are in shared/ and exclusive-<k>/ (twin.json)`],
      },
    };
  }
  const spec = specOf(req.method, experts.length, req.options);
  if (req.space === "factors") return mergeFactors(experts, model, { method: req.method, spec, seed: req.seed });
  return mergeToAdapter(experts, model, { method: req.method, spec, rank: req.rank ?? maxRank, seed: req.seed });
}

/**
 * The base checkpoint with `deltas` (by tensor name, [out, in]) added to its weights: the other
 * files copied, each safetensors shard rewritten under its own name (one shard in memory at a time).
 */
export function writeMergedCheckpoint(baseDir: string, out: string, deltas: ReadonlyMap<string, Float32Array>, dtype: "float32" | "base"): void {
  fs.mkdirSync(out, { recursive: true });
  for (const f of fs.readdirSync(baseDir)) {
    const from = path.join(baseDir, f);
    if (fs.statSync(from).isFile() && !f.endsWith(".safetensors") && f !== INDEX_FILE) fs.copyFileSync(from, path.join(out, f));
  }
  const weights = openCheckpointWeights(baseDir);
  try {
    const byFile = new Map<string, string[]>();
    for (const name of weights.names()) {
      const file = path.basename(weights.info(name).file);
      byFile.set(file, [...(byFile.get(file) ?? []), name]);
    }
    let total = 0;
    for (const [file, names] of byFile) {
      const tensors: TensorToWrite[] = names.map((name) => {
        const info = weights.info(name);
        const data = weights.readFloat32(name);
        const d = deltas.get(name);
        if (d !== undefined) {
          if (d.length !== data.length) throw new BdcError({ code: "BDC_MERGE_INPUT", message: `${name}: the merged update has ${d.length} values, the base weight ${data.length}` });
          for (let i = 0; i < data.length; i++) data[i] = Math.fround(data[i]! + d[i]!);
        }
        const out = dtype === "float32" ? ("F32" as const) : (info.dtype as "F32" | "F16" | "BF16");
        total += data.length * (out === "F32" ? 4 : 2);
        return { name, dtype: out, shape: info.shape, data };
      });
      writeSafetensors(path.join(out, file), tensors);
    }
    const index = path.join(baseDir, INDEX_FILE);
    if (fs.existsSync(index)) {
      const json = JSON.parse(fs.readFileSync(index, "utf8")) as { metadata?: Record<string, unknown>; weight_map: Record<string, string> };
      fs.writeFileSync(path.join(out, INDEX_FILE), `${JSON.stringify({ ...json, metadata: { ...json.metadata, total_size: total } }, null, 2)}\n`);
    }
    if (dtype === "float32") {
      const configFile = path.join(out, "config.json");
      const config = JSON.parse(fs.readFileSync(configFile, "utf8")) as Record<string, unknown>;
      fs.writeFileSync(configFile, `${JSON.stringify({ ...config, torch_dtype: "float32" }, null, 2)}\n`);
    }
  } finally {
    weights.close();
  }
}
