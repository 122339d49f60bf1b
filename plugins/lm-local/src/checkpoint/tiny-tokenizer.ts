/**
 * The tokenizer of a tiny checkpoint: a real byte-level BPE `tokenizer.json` (the format of
 * GPT-2, Qwen2 and Llama 3) trained on the built-in corpus, with each family's special tokens,
 * and a `tokenizer_config.json` with its chat template.
 *
 * Ids: the 256 byte symbols, then the learned merges, then the special tokens. When the corpus
 * supports fewer merges than the vocab budget allows, the special tokens follow the last merge
 * and the ids above them stay unused: the model's vocab_size is still the one asked for, as real
 * checkpoints pad their embeddings to a round size (Qwen2.5: 151,665 tokens, 151,936 rows).
 */
import { BdcError } from "@bdc/core";
import { trainByteLevelBpe, type TrainedBpe } from "./bpe-trainer.ts";
import { CHAT_TEMPLATES } from "./chat-templates.ts";
import type { ModelArch } from "./config.ts";
import { TINY_CORPUS } from "./tiny-corpus.ts";

interface FamilyTokens {
  /** Added special tokens, in id order. */
  readonly special: readonly string[];
  /** tokenizer_config.json's roles. */
  readonly bos: string | null;
  readonly eos: string;
  readonly pad: string | null;
  /** config.json's bos_token_id / eos_token_id, and generation_config.json's eos_token_id. */
  readonly configBos: string;
  readonly configEos: readonly string[];
  readonly generationEos: readonly string[];
  /** The post-processor prepends BOS (Llama, Mistral), or adds nothing (Qwen2). */
  readonly prependBos: boolean;
}

/** Each family's special tokens and who uses which, as in the instruct checkpoints. */
export const FAMILY_TOKENS: Readonly<Record<ModelArch, FamilyTokens>> = {
  llama: {
    special: ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    bos: "<|begin_of_text|>",
    eos: "<|eot_id|>",
    pad: null,
    configBos: "<|begin_of_text|>",
    configEos: ["<|end_of_text|>", "<|eot_id|>"],
    generationEos: ["<|end_of_text|>", "<|eot_id|>"],
    prependBos: true,
  },
  qwen2: {
    special: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    bos: null,
    eos: "<|im_end|>",
    pad: "<|endoftext|>",
    configBos: "<|endoftext|>",
    configEos: ["<|im_end|>"],
    generationEos: ["<|im_end|>", "<|endoftext|>"],
    prependBos: false,
  },
  mistral: {
    special: ["<s>", "</s>", "[INST]", "[/INST]"],
    bos: "<s>",
    eos: "</s>",
    pad: null,
    configBos: "<s>",
    configEos: ["</s>"],
    generationEos: ["</s>"],
    prependBos: true,
  },
};

const trained = new Map<number, TrainedBpe>();

/** Training is deterministic, so one run per budget serves every tiny checkpoint of a process. */
function trainedFor(maxTokens: number): TrainedBpe {
  let t = trained.get(maxTokens);
  if (t === undefined) {
    t = trainByteLevelBpe(TINY_CORPUS, maxTokens);
    trained.set(maxTokens, t);
  }
  return t;
}

export interface TinyTokenizer {
  readonly tokenizerJson: Record<string, unknown>;
  readonly tokenizerConfig: Record<string, unknown>;
  /** Token string -> id, for the special tokens. */
  readonly specialIds: Readonly<Record<string, number>>;
  readonly configBosId: number;
  readonly configEosIds: number[];
  readonly generationEosIds: number[];
  /** Ids in use (the model's vocab_size may be larger). */
  readonly usedIds: number;
}

export function buildTinyTokenizer(arch: ModelArch, vocabSize: number, maxPositions: number): TinyTokenizer {
  const family = FAMILY_TOKENS[arch];
  const needed = 256 + family.special.length;
  if (vocabSize < needed) {
    throw new BdcError({
      code: "BDC_CONFIG_VALUE",
      message: `tiny checkpoint: vocab ${vocabSize} is too small for a byte-level tokenizer (256 byte symbols + ${family.special.length} special tokens = ${needed})`,
      hint: `pass a vocab of at least ${needed}`,
    });
  }
  const bpe = trainedFor(vocabSize - family.special.length);
  const vocab: Record<string, number> = {};
  bpe.vocab.forEach((token, id) => (vocab[token] = id));
  const specialIds: Record<string, number> = {};
  family.special.forEach((token, i) => (specialIds[token] = bpe.vocab.length + i));
  const added = family.special.map((content) => ({ id: specialIds[content]!, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  const bos = family.bos;
  const postProcessor =
    family.prependBos && bos !== null
      ? {
          type: "TemplateProcessing",
          single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
          pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
          special_tokens: { [bos]: { id: bos, ids: [specialIds[bos]!], tokens: [bos] } },
        }
      : { type: "ByteLevel", ...byteLevel, trim_offsets: false, use_regex: false };
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    // No NFC normaliser (Qwen2 has one): without it decode(encode(s)) === s for every string.
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", ...byteLevel },
    post_processor: postProcessor,
    decoder: { type: "ByteLevel", ...byteLevel },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      // "a b" strings: every tokenizers version reads them (pairs need >= 0.20); byte-level symbols hold no space.
      merges: bpe.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const tokenizerConfig = {
    added_tokens_decoder: Object.fromEntries(added.map(({ id, ...rest }) => [String(id), rest])),
    bos_token: family.bos,
    chat_template: CHAT_TEMPLATES[arch],
    clean_up_tokenization_spaces: false,
    eos_token: family.eos,
    model_input_names: ["input_ids", "attention_mask"],
    model_max_length: maxPositions,
    pad_token: family.pad,
    tokenizer_class: "PreTrainedTokenizerFast",
    unk_token: null,
  };
  return {
    tokenizerJson,
    tokenizerConfig,
    specialIds,
    configBosId: specialIds[family.configBos]!,
    configEosIds: family.configEos.map((t) => specialIds[t]!),
    generationEosIds: family.generationEos.map((t) => specialIds[t]!),
    usedIds: bpe.vocab.length + family.special.length,
  };
}
