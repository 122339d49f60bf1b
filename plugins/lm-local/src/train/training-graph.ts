/**
 * The training graph of a Llama-family model: the same decoder stack as inference (no KV cache),
 * ending in the token cross-entropy instead of logits, plus the backward pass (onnx-graph's
 * `gradients`) for every LoRA input. One ONNX Runtime run gives the loss and all LoRA gradients;
 * the frozen weights are initializers that the backward pass reads in place.
 *
 * Inputs: input_ids, position_ids [B, S]; attn_bias [B, 1, S, S] (0 or a large negative number:
 * causality, padding and packed-sequence boundaries are the caller's); loss_index [N] (flat
 * positions b*S+s whose next token is scored: the usual shift), labels [N, 1] (that next token),
 * loss_weight [N, 1]; the LoRA slots (lora.<layer>.<target>.A/B, lora.scale, and with dropout
 * lora.<layer>.<target>.dropout [B, S, in], with gates lora.<layer>.<target>.G [B, 1, R]).
 * Outputs: loss [] = -sum(loss_weight * log p(label)) (weights of 1/count make it the mean), and
 * grad.<input> for each A and B, or for each G when the slots are gated.
 */
import { gradients, GraphBuilder, openSession, type Device, type Graph, type ort } from "@bdc/onnx-graph";
import type { ModelConfig } from "../checkpoint/config.ts";
import { openCheckpointWeights, type CheckpointWeights } from "../checkpoint/safetensors.ts";
import { defaultOnnxCache } from "../model/causal-lm.ts";
import { compiledKey, compiledModel } from "../model/compiled-cache.ts";
import { inputNames, llamaDecoder } from "../model/llama-graph.ts";
import { loraInputNames, slotLayers, type LoraSlots } from "../model/lora-slots.ts";

export const trainingInputNames = {
  ids: inputNames.ids,
  positions: inputNames.positions,
  bias: inputNames.bias,
  lossIndex: "loss_index",
  labels: "labels",
  lossWeight: "loss_weight",
} as const;

export const LOSS_OUTPUT = "loss";
export const gradOutputName = (input: string): string => `grad.${input}`;

export interface TrainingGraph {
  readonly graph: Graph;
  /** The differentiated inputs (every slot's A and B, or G), in slot order. */
  readonly trainable: ReadonlyArray<string>;
}

/**
 * The differentiated graph inputs, in slot order: every slot's A and B (LoRA training), or with
 * gated slots every slot's gates G (the hypernetwork's training: the experts stay frozen).
 */
export function trainableInputs(config: ModelConfig, slots: LoraSlots): string[] {
  return slotLayers(slots, config.numLayers).flatMap((layer) =>
    slots.targets.flatMap((target) => {
      const names = loraInputNames(layer, target);
      return slots.gates === true ? [names.gates] : [names.a, names.b];
    }),
  );
}

export function buildLlamaTrainingGraph(config: ModelConfig, weights: CheckpointWeights, slots: LoraSlots): TrainingGraph {
  const g = new GraphBuilder(`${config.arch}-${config.numLayers}x${config.hiddenSize}-train`);
  const ids = g.input(trainingInputNames.ids, "int64", ["B", "S"]);
  const positions = g.input(trainingInputNames.positions, "int64", ["B", "S"]);
  const bias = g.input(trainingInputNames.bias, "float32", ["B", 1, "S", "S"]);
  const lossIndex = g.input(trainingInputNames.lossIndex, "int64", ["N"]);
  const labels = g.input(trainingInputNames.labels, "int64", ["N", 1]);
  const weight = g.input(trainingInputNames.lossWeight, "float32", ["N", 1]);
  const decoder = llamaDecoder(g, config, weights, { dtype: "float32", lora: slots, ids, positions, bias, kvCache: false });

  const loss = g.scope("loss", () => {
    // Only the scored positions go through the vocabulary projection, the largest matmul.
    const picked = g.gather(g.flatten(decoder.hidden, -1), lossIndex, 0);
    const logp = g.logSoftmax(g.matMul(picked, decoder.lmHead), -1);
    const tokenLogp = g.gatherElements(logp, labels, 1);
    return g.neg(g.reduceSum(g.mul(tokenLogp, weight), [0, 1], false));
  });
  g.output(loss, LOSS_OUTPUT);

  const trainable = trainableInputs(config, slots);
  const wrt = trainable.map((name) => decoder.loraInputs.get(name)!);
  const grads = gradients(g, { loss, wrt });
  grads.forEach((grad, i) => g.output(grad, gradOutputName(trainable[i]!)));
  return { graph: g.build(), trainable };
}

/**
 * A session on the training graph of `modelDir` with these slots, built once per checkpoint and
 * slot layout and cached like the inference graph. The frozen weights are its initializers: on a
 * GPU they are uploaded once and never leave it; each step moves only the LoRA tensors in and the
 * loss and their gradients out. Weight pre-packing is off on the CPU: it kept extra copies of the
 * frozen weights in the training session (-390 MB on the 0.5B shape, same speed).
 */
export async function openTrainingSession(
  modelDir: string,
  model: ModelConfig,
  slots: LoraSlots,
  options: { readonly cacheDir?: string | undefined; readonly threads: number; readonly device?: Device | undefined; readonly deviceId?: number | undefined; readonly log?: ((line: string) => void) | undefined },
): Promise<ort.InferenceSession> {
  const modelPath = compiledTrainingGraph(modelDir, model, slots, options);
  return openSession(modelPath, { device: options.device ?? "cpu", deviceId: options.deviceId, threads: options.threads, prepack: false });
}

/** The training graph's model file in the cache, built when it is not there yet. */
export function compiledTrainingGraph(modelDir: string, model: ModelConfig, slots: LoraSlots, options: { readonly cacheDir?: string | undefined; readonly log?: ((line: string) => void) | undefined }): string {
  let weights: CheckpointWeights | undefined;
  let compiled: { modelPath: string; built: boolean };
  try {
    compiled = compiledModel(options.cacheDir ?? defaultOnnxCache(), compiledKey(modelDir, { train: true, slots }), () => {
      options.log?.(`building the training graph of ${modelDir} (${model.numLayers} layers, ${slots.gates === true ? "gated " : ""}LoRA slots on ${slots.targets.join(", ")})`);
      weights = openCheckpointWeights(modelDir);
      return buildLlamaTrainingGraph(model, weights, slots).graph;
    });
  } finally {
    weights?.close();
  }
  return compiled.modelPath;
}
