/**
 * composer/hypernet: DisenLoRA's composition for policy/local. Each request's input is embedded
 * by the encoder, the trained hypernetwork gives rank-wise gates over the experts per layer, and
 * the student answers with that composition (one ONNX Runtime session for every composition).
 *
 *   plugins:
 *     student: { use: policy/local, with: { model: ..., composer: disenlora } }
 *     disenlora: { use: composer/hypernet, with: { hypernet: runs/x/steps/hypernet/hypernet } }
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Schema } from "effect";
import { definePlugin, FilePath, optional, PathOrName, required } from "@bdc/core";
import type { Encoder } from "@bdc/policy";
import { HYPERNET_FILES } from "../hypernet.ts";
import { openHypernetComposer } from "../composer.ts";

export default definePlugin({
  id: "composer/hypernet",
  version: "0.1.0",
  description: "DisenLoRA: per-input rank-wise gates over the LoRA experts from a trained hypernetwork (for policy/local's composer)",
  config: Schema.Struct({
    hypernet: required(FilePath, "the hypernetwork folder (hypernet_config.json, hypernet.safetensors) step/train-hypernet or `bdc hypernet train` wrote"),
    experts: optional(Schema.Array(FilePath), "the expert adapter folders in gate order (default: those it was trained with)"),
    model: optional(PathOrName, "the base model the experts were trained on (default: the one it was trained with)"),
  }),
  requires: { encoder: { slot: "encoder", description: "the encoder the hypernetwork was trained with" } },
  preflight(config) {
    const missing = Object.values(HYPERNET_FILES).filter((f) => !fs.existsSync(path.join(config.hypernet, f)));
    return missing.map((f) => ({ code: "BDC_HYPERNET_INVALID", path: ["hypernet"], message: `${path.join(config.hypernet, f)} does not exist`, hint: "give the folder step/train-hypernet wrote (steps/<step>/hypernet in its run)" }));
  },
  make(config, deps, kernel) {
    const composer = openHypernetComposer({ hypernet: config.hypernet, experts: config.experts, model: config.model, baseDir: kernel.baseDir, name: kernel.instance, onTruncated: (m) => kernel.warn(m) }, deps.encoder as Encoder);
    kernel.log(`${kernel.instance}: ${composer.stack.experts.length} experts of rank ${composer.stack.rank} on ${composer.stack.targets.join("+")} of layers ${composer.stack.layers.join(",")}`);
    return Object.assign(composer, { stats: () => ({ truncated_inputs: composer.truncated() }) });
  },
});
