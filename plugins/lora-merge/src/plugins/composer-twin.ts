/**
 * composer/twin: Twin-Merging routed per request for policy/local's composer - the shared part
 * plus the exclusive parts weighted by the centroid-cosine router (twin-composer.ts).
 *
 *   student: { use: policy/local, with: { model: ..., composer: twin } }
 *   twin: { use: composer/twin, with: { twin: runs/m/steps/merge/merged, centroids: runs/x/steps/cluster/centroids.safetensors, model: ... } }
 */
import { Schema } from "effect";
import { definePlugin, FilePath, optional, PathOrName, required } from "@bdc/core";
import { resolveModelDir } from "@bdc/lm-local";
import type { Encoder } from "@bdc/policy";
import { openTwinComposer } from "../twin-composer.ts";

export default definePlugin({
  id: "composer/twin",
  version: "0.1.0",
  description: "Twin-Merging routed per input: the shared part plus each expert's exclusive part weighted by the router (cosines to the cluster centroids, softmax over a temperature)",
  config: Schema.Struct({
    twin: required(FilePath, "the folder merge/twin wrote (twin.json, shared/, exclusive-<k>/)"),
    centroids: required(FilePath, "centroids.safetensors of the clustering the experts were trained on"),
    model: required(PathOrName, "the base model (folder or pulled hub id)"),
    temperature: optional(Schema.Number.pipe(Schema.positive()), "the router's softmax temperature (default: twin.json's, else 0.1)"),
  }),
  requires: { encoder: { slot: "encoder", description: "the encoder the clusters were made with" } },
  make(config, deps, kernel) {
    const composer = openTwinComposer({ dir: config.twin, centroids: config.centroids, model: resolveModelDir(config.model, kernel.baseDir), temperature: config.temperature, name: kernel.instance }, deps.encoder as Encoder);
    kernel.log(`${kernel.instance}: shared + ${composer.stack.experts.length - 1} exclusive parts of rank ${composer.stack.rank}`);
    return composer;
  },
});
