/**
 * A tiny sentence-transformers folder with random weights, for tests: a BERT-like ONNX graph
 * (token + type embeddings, one masked self-attention layer with a residual; H = 8) beside a
 * WordPiece tokenizer.json in the BERT layout, 1_Pooling/config.json, sentence_bert_config.json
 * and modules.json. Small enough that a test can redo its arithmetic in plain JS.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { GraphBuilder, writeModel } from "@bdc/onnx-graph";
import { mulberry32 } from "../checkpoint/random.ts";

const SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"];
const WORDS = ["sort", "the", "list", "binary", "search", "##ing", "graph", "def", "add", "a", "b", "(", ")", ",", ":", "return", "+", "print", "dynamic", "programming", "over", "answer", "x"];
/** The vocabulary of the default folder (ids as tokenizer.json has them). */
export const VOCAB = [...SPECIAL, ...WORDS];
/** The default hidden size. */
export const H = 8;
const DEFAULT_H = H;

/** The BERT layout of tokenizer.json: BertNormalizer (lower case), BertPreTokenizer, WordPiece, [CLS] $A [SEP]. */
function tokenizerJson(vocab: ReadonlyArray<string>): unknown {
  const special = (id: number) => ({ id, content: vocab[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: "1.0",
    truncation: { direction: "Right", max_length: 128, strategy: "LongestFirst", stride: 0 },
    padding: null,
    added_tokens: [0, 1, 2, 3].map(special),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }, { SpecialToken: { id: "[SEP]", type_id: 1 } }],
      special_tokens: { "[CLS]": { id: "[CLS]", ids: [2], tokens: ["[CLS]"] }, "[SEP]": { id: "[SEP]", ids: [3], tokens: ["[SEP]"] } },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab: Object.fromEntries(vocab.map((t, i) => [t, i])) },
  };
}

export interface Weights {
  readonly E: Float32Array; // [V, H]
  readonly T: Float32Array; // [2, H]
}

function randomWeights(seed: number, V: number, H: number): Weights {
  const rand = mulberry32(seed);
  const r = (n: number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);
  return { E: r(V * H), T: r(2 * H) };
}

export interface FolderOptions {
  readonly pooling?: Partial<Record<string, boolean>>;
  /** The graph outputs a pooled, unnormalised "sentence_embedding" (mean) instead of token states; its inputs are int32, without token_type_ids. */
  readonly pooledInGraph?: boolean;
  readonly onnxFile?: string;
  readonly modules?: unknown;
  readonly maxSeqLength?: number;
  /** Hidden size (default H = 8); a benchmark makes it realistic. */
  readonly hidden?: number;
  /** Words w0, w1, ... added to the vocabulary (default none). */
  readonly extraWords?: number;
}

/** Writes the folder; returns its weights. */
export function writeTinySentenceModel(dir: string, o: FolderOptions = {}, seed = 1): Weights {
  const H = o.hidden ?? DEFAULT_H;
  const vocab = [...VOCAB, ...Array.from({ length: o.extraWords ?? 0 }, (_, i) => `w${i}`)];
  const V = vocab.length;
  const w = randomWeights(seed, V, H);
  const g = new GraphBuilder("tiny-bert");
  const int = o.pooledInGraph === true ? "int32" : "int64";
  const ids = g.input("input_ids", int, ["B", "S"]);
  const mask = g.input("attention_mask", int, ["B", "S"]);
  let h0 = g.gather(g.weight("E", "float32", [V, H], w.E), ids);
  if (o.pooledInGraph !== true) h0 = g.add(h0, g.gather(g.weight("T", "float32", [2, H], w.T), g.input("token_type_ids", "int64", ["B", "S"])));
  const maskF = g.cast(mask, "float32");
  // scores[b,q,k] = h0[b,q].h0[b,k] / sqrt(H) - 1e4 (1 - mask[b,k])
  const scores = g.sub(g.mul(g.matMul(h0, g.transpose(h0, [0, 2, 1])), g.scalar(1 / Math.sqrt(H))), g.mul(g.sub(g.scalar(1), g.unsqueeze(maskF, [1])), g.scalar(1e4)));
  const states = g.add(h0, g.matMul(g.softmax(scores, -1), h0));
  if (o.pooledInGraph === true) {
    const m = g.unsqueeze(maskF, [2]);
    g.output(g.div(g.reduceSum(g.mul(states, m), [1], false), g.reduceSum(m, [1], false)), "sentence_embedding");
  } else g.output(states, "last_hidden_state");
  const file = o.onnxFile ?? "onnx/model.onnx";
  writeModel(g.build(), path.join(dir, path.dirname(file)), path.basename(file));
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(tokenizerJson(vocab)));
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify({ pad_token: "[PAD]", cls_token: "[CLS]", sep_token: "[SEP]", unk_token: "[UNK]", do_lower_case: true, model_max_length: 512 }));
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ model_type: "bert", hidden_size: H, vocab_size: V }));
  fs.mkdirSync(path.join(dir, "1_Pooling"), { recursive: true });
  fs.writeFileSync(path.join(dir, "1_Pooling", "config.json"), JSON.stringify({ word_embedding_dimension: H, pooling_mode_cls_token: false, pooling_mode_mean_tokens: true, pooling_mode_max_tokens: false, pooling_mode_mean_sqrt_len_tokens: false, pooling_mode_weightedmean_tokens: false, pooling_mode_lasttoken: false, include_prompt: true, ...o.pooling }));
  fs.writeFileSync(path.join(dir, "sentence_bert_config.json"), JSON.stringify({ max_seq_length: o.maxSeqLength ?? 64, do_lower_case: false }));
  fs.writeFileSync(
    path.join(dir, "modules.json"),
    JSON.stringify(o.modules ?? [
      { idx: 0, name: "0", path: "", type: "sentence_transformers.models.Transformer" },
      { idx: 1, name: "1", path: "1_Pooling", type: "sentence_transformers.models.Pooling" },
      { idx: 2, name: "2", path: "2_Normalize", type: "sentence_transformers.models.Normalize" },
    ]),
  );
  return w;
}

