/**
 * Where a sentence-embedding repository keeps what encoder/onnx reads (the layout of
 * sentence-transformers repositories with ONNX weights, and of the ONNX ports transformers.js
 * uses); shared by the loader and `bdc models pull --onnx`, which must fetch the same files.
 */

/** Where ONNX weights are looked for when no file is named, in order. */
export const DEFAULT_ONNX_FILES = ["onnx/model.onnx", "model.onnx"] as const;

export const POOLING_CONFIG = "1_Pooling/config.json";

/** What a sentence-transformers pipeline adds to a transformers checkpoint: the modules, the max length, the pooling. */
export const SENTENCE_FILES: ReadonlySet<string> = new Set(["modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", POOLING_CONFIG]);

/** An ONNX file's external data: `model.onnx_data` (optimum), `model.onnx_data_1`..., `model.onnx.data`. */
export const isExternalDataOf = (onnxFile: string, candidate: string): boolean => candidate.startsWith(`${onnxFile}_data`) || candidate === `${onnxFile}.data`;
