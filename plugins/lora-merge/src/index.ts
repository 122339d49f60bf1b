/**
 * @bdc/lora-merge: static merges of LoRA adapters in the full delta space - one generalised core
 * (merge-core.ts) with the methods as presets (presets.ts) and thin plugins (plugins/), truncated
 * SVD re-factorisation (linalg.ts), Twin-Merging (twin.ts), merged checkpoints (run-merge.ts).
 */
export * from "./linalg.ts";
export * from "./merge-core.ts";
export * from "./merge.ts";
export * from "./presets.ts";
export * from "./run-merge.ts";
export * from "./twin.ts";
export { openTwinComposer, type TwinManifest } from "./twin-composer.ts";
export type { Merger } from "./merger.ts";
