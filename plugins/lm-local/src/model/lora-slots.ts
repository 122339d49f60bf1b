/**
 * Where LoRA adapters plug into the graph: low-rank A/B inputs on chosen projections of chosen
 * layers. The slots are graph inputs, not weights, so the next stage can train adapters and
 * compose experts by feeding tensors; a graph built without slots has no LoRA nodes at all.
 */
export const LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export interface LoraSlots {
  readonly targets: ReadonlyArray<LoraTarget>;
  /** Layer indices that get slots (default: every layer). */
  readonly layers?: ReadonlyArray<number> | undefined;
  /**
   * A and B carry a leading batch axis ([B, in, r], [B, r, out]): one adapter per sequence in
   * the batch, which input-aware composition (a hypernetwork's rank-wise gates) needs.
   */
  readonly perExample?: boolean | undefined;
}

/**
 * Graph input names of a slot. A is [in, r] and B is [r, out] (the transposes of PEFT's
 * lora_A.weight [r, in] and lora_B.weight [out, r]), so that y += scale * (x A) B.
 */
export const loraInputNames = (layer: number, target: LoraTarget) => ({ a: `lora.${layer}.${target}.A`, b: `lora.${layer}.${target}.B` });
export const LORA_SCALE_INPUT = "lora.scale";

export function slotLayers(slots: LoraSlots, numLayers: number): number[] {
  return slots.layers === undefined ? Array.from({ length: numLayers }, (_, i) => i) : [...slots.layers].sort((a, b) => a - b);
}
