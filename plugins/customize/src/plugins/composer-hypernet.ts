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
import { BdcError, definePlugin, FilePath, optional, PathOrName, StepName } from "@bdc/core";
import type { Encoder } from "@bdc/policy";
import { HYPERNET_DIR, HYPERNET_FILES } from "../hypernet.ts";
import { openHypernetComposer } from "../composer.ts";

export default definePlugin({
  id: "composer/hypernet",
  version: "0.1.0",
  description: "DisenLoRA: per-input rank-wise gates over the LoRA experts from a trained hypernetwork (for policy/local's composer)",
  config: Schema.Struct({
    hypernet: optional(FilePath, "the hypernetwork folder (hypernet_config.json, hypernet.safetensors) step/train-hypernet wrote"),
    from_step: optional(StepName, "instead of hypernet: the step/train-hypernet step of this run (its steps/<step>/hypernet); the steps using this composer wait for it"),
    experts: optional(Schema.Array(FilePath), "the expert adapter folders in gate order (default: those it was trained with)"),
    model: optional(PathOrName, "the base model the experts were trained on (default: the one it was trained with)"),
  }),
  requires: { encoder: { slot: "encoder", description: "the encoder the hypernetwork was trained with" } },
  preflight(config) {
    if ((config.hypernet === undefined) === (config.from_step === undefined)) {
      return [{ code: "BDC_CONFIG_VALUE", path: ["hypernet"], message: "give the hypernetwork as hypernet: (a folder) or from_step: (the step/train-hypernet step of this run), one of them", hint: "from_step: hypernet" }];
    }
    if (config.hypernet === undefined) return [];
    const missing = Object.values(HYPERNET_FILES).filter((f) => !fs.existsSync(path.join(config.hypernet!, f)));
    return missing.map((f) => ({ code: "BDC_HYPERNET_INVALID", path: ["hypernet"], message: `${path.join(config.hypernet!, f)} does not exist`, hint: "give the folder step/train-hypernet wrote (steps/<step>/hypernet in its run)" }));
  },
  make(config, deps, kernel) {
    if (config.hypernet === undefined && (config.from_step === undefined || kernel.runDir === undefined)) {
      throw new BdcError({ code: "BDC_CONFIG_VALUE", message: config.from_step === undefined ? "no hypernetwork: set hypernet: or from_step:" : `from_step: ${config.from_step} names a step of a run; outside a run give hypernet: (its folder)`, path: ["hypernet"] });
    }
    const hypernet = config.hypernet ?? path.join(kernel.runDir!, "steps", config.from_step!, HYPERNET_DIR);
    const composer = openHypernetComposer({ hypernet, experts: config.experts, model: config.model, baseDir: kernel.baseDir, name: kernel.instance, onTruncated: (m) => kernel.warn(m) }, deps.encoder as Encoder);
    kernel.log(`${kernel.instance}: ${composer.stack.experts.length} experts of rank ${composer.stack.rank} on ${composer.stack.targets.join("+")} of layers ${composer.stack.layers.join(",")}`);
    return Object.assign(composer, { stats: () => ({ truncated_inputs: composer.truncated() }) });
  },
});
