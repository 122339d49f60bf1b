/**
 * @bdc/customize: DisenLoRA's Customize stage - the input-aware hypernetwork over the cluster
 * experts, its training, composer/hypernet for composed inference, and the export of one
 * input's composed adapter.
 */
export * from "./hypernet.ts";
export * from "./train-hypernet.ts";
export { openHypernetComposer, type HypernetComposer, type HypernetComposerOptions } from "./composer.ts";
export { embedInputs } from "./embed-inputs.ts";
