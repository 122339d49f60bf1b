/**
 * Where LoRA adapters plug into the graph: low-rank A/B inputs on chosen projections of chosen
 * layers. The slots are graph inputs, not weights, so one built model serves every adapter
 * (fed per call), the trainer differentiates with respect to them, and experts compose by
 * feeding tensors; a graph built without slots has no LoRA nodes at all.
 */
import { LORA_TARGETS, type LoraTarget } from "../lora/adapter.ts";

export { LORA_TARGETS, type LoraTarget };

export interface LoraSlots {
  readonly targets: ReadonlyArray<LoraTarget>;
  /** Layer indices that get slots (default: every layer). */
  readonly layers?: ReadonlyArray<number> | undefined;
  /** Training: each slot also takes a dropout mask [B, S, in] multiplied into its input (0 or 1/(1-p), as torch's dropout). */
  readonly dropout?: boolean | undefined;
  /**
   * Composition: each slot also takes rank gates G [B, 1, R] multiplied into x A^T, so that
   * y += scale * ((x A^T) * G) B^T. With experts stacked along the rank (A [K*r, in], B [out, K*r])
   * the gates weigh each expert's ranks per input: one session serves every composition, and no
   * per-input weight matrix is formed.
   */
  readonly gates?: boolean | undefined;
}

/**
 * Graph input names of a slot. A is [r, in] and B is [out, r], PEFT's lora_A.weight and
 * lora_B.weight as they are, so that y += scale * (x A^T) B^T.
 */
export const loraInputNames = (layer: number, target: LoraTarget) => ({
  a: `lora.${layer}.${target}.A`,
  b: `lora.${layer}.${target}.B`,
  dropout: `lora.${layer}.${target}.dropout`,
  gates: `lora.${layer}.${target}.G`,
});
export const LORA_SCALE_INPUT = "lora.scale";

export function slotLayers(slots: LoraSlots, numLayers: number): number[] {
  return slots.layers === undefined ? Array.from({ length: numLayers }, (_, i) => i) : [...slots.layers].sort((a, b) => a - b);
}
