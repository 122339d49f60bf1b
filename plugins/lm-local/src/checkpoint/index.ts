/**
 * The checkpoint side of the in-process LLM: Hugging Face checkpoints of the Llama family
 * (config, safetensors weights, tokenizer and chat template), random tiny ones for tests, and an
 * independent reference forward pass to check a runtime against.
 */
export {
  DTYPE_BYTES,
  INDEX_FILE,
  openCheckpointWeights,
  openSafetensorsFile,
  readSafetensorsHeader,
  shardFileName,
  SINGLE_FILE,
  writeCheckpointWeights,
  safetensorsBytes,
  writeSafetensors,
} from "./safetensors.ts";
export type { CheckpointWeights, FloatDtype, SafetensorsDtype, TensorInfo, TensorToWrite } from "./safetensors.ts";
export { inMemoryWeights } from "./memory-weights.ts";
export type { MemoryTensor } from "./memory-weights.ts";
export { readModelConfig, ropeInverseFrequencies, SUPPORTED_ARCHITECTURES } from "./config.ts";
export type { ModelArch, ModelConfig, RopeScaling } from "./config.ts";
export { IncrementalDecoder, loadTokenizer } from "./tokenizer.ts";
export type { ChatMessage, ChatTemplateOptions, DecodeOptions, EncodeOptions, LoadedTokenizer } from "./tokenizer.ts";
export { CHAT_TEMPLATES, CHATML_TEMPLATE, LLAMA3_TEMPLATE, MISTRAL_TEMPLATE } from "./chat-templates.ts";
export { BYTES_TO_UNICODE, trainByteLevelBpe } from "./bpe-trainer.ts";
export type { TrainedBpe } from "./bpe-trainer.ts";
export { FAMILY_TOKENS } from "./tiny-tokenizer.ts";
export { writeTinyCheckpoint } from "./make-tiny.ts";
export type { TinyCheckpointOptions, TinyCheckpointSummary, TinyDtype } from "./make-tiny.ts";
export { logSoftmax, referenceForward } from "./reference-forward.ts";
export type { ReferenceForwardOptions, ReferenceForwardResult, Vector } from "./reference-forward.ts";
export { GET_A_CHECKPOINT_HINT } from "./files.ts";
export { gaussian, mixSeed, mulberry32 } from "./random.ts";
