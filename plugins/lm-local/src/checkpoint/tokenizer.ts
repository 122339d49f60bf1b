/**
 * A checkpoint's tokenizer (`tokenizer.json` + `tokenizer_config.json`) on @huggingface/tokenizers,
 * and its chat template on @huggingface/jinja, with transformers' conventions where the library's
 * differ:
 *
 * - `encode` adds no special tokens unless asked (the library adds them by default; a rendered
 *   chat template already holds its BOS, and transformers' apply_chat_template(tokenize=True)
 *   encodes without them too);
 * - `clean_up_tokenization_spaces` defaults to false as in recent transformers (the library
 *   defaults to true, which turns " ." into "." and breaks decode(encode(s)) === s);
 * - decoding an empty list gives "" (the library throws), and ids without a token (the padding
 *   rows of an embedding larger than the vocabulary) decode to nothing.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";
import { BdcError } from "@bdc/core";
import { fileInvalid, isObject, readJsonObject } from "./files.ts";

export interface ChatMessage {
  readonly role: string;
  readonly content: string;
}

export interface EncodeOptions {
  /** Add the post-processor's special tokens (e.g. Llama's BOS). Default false. */
  readonly addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave out special tokens (BOS, EOS, chat markers). Default false. */
  readonly skipSpecialTokens?: boolean;
}

export interface ChatTemplateOptions {
  /** End with the header of an assistant turn, for the model to continue. Default false. */
  readonly addGenerationPrompt?: boolean;
  /** More template variables (e.g. `tools`, `documents`), as transformers passes its kwargs. */
  readonly variables?: Readonly<Record<string, unknown>>;
}

export interface LoadedTokenizer {
  readonly dir: string;
  /** Ids the tokenizer knows, added tokens included (max id + 1); the model's vocab_size may be larger. */
  readonly vocabSize: number;
  readonly bosTokenId: number | undefined;
  /** tokenizer_config.json's eos_token as ids (the model config and generation config may name more). */
  readonly eosTokenIds: number[];
  readonly padTokenId: number | undefined;
  /** Added tokens marked special. */
  readonly specialIds: ReadonlySet<number>;
  readonly hasChatTemplate: boolean;
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: ReadonlyArray<number>, options?: DecodeOptions): string;
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  /** Renders the chat template; BDC_MODEL_NO_CHAT_TEMPLATE when the checkpoint has none. */
  applyChatTemplate(messages: ReadonlyArray<ChatMessage>, options?: ChatTemplateOptions): string;
  /** A streaming detokenizer for generated ids (see IncrementalDecoder). */
  incrementalDecoder(options?: DecodeOptions): IncrementalDecoder;
}

/** A special token in tokenizer_config.json: a string, or an AddedToken object with `content`. */
function tokenString(u: unknown): string | undefined {
  if (typeof u === "string") return u;
  if (isObject(u) && typeof u.content === "string") return u.content;
  return undefined;
}

interface ChatTemplateSource {
  readonly file: string;
  readonly source: string;
}

/** transformers' places for a chat template, newest first: chat_template.jinja, then tokenizer_config.json, then chat_template.json. */
function findChatTemplate(dir: string, config: Record<string, unknown>, configFile: string): ChatTemplateSource | undefined {
  const jinjaFile = path.join(dir, "chat_template.jinja");
  if (fs.existsSync(jinjaFile)) return { file: jinjaFile, source: fs.readFileSync(jinjaFile, "utf8") };
  const fromValue = (value: unknown, file: string): ChatTemplateSource | undefined => {
    if (value === undefined || value === null) return undefined;
    if (typeof value === "string") return { file, source: value };
    if (Array.isArray(value)) {
      // Several named templates ("default", "tool_use", "rag"): transformers renders "default".
      const named = value.filter(isObject);
      const def = named.find((t) => t.name === "default");
      if (def === undefined || typeof def.template !== "string") {
        throw fileInvalid(file, `chat_template is a list of named templates (${named.map((t) => JSON.stringify(t.name)).join(", ")}) without a "default" one`, "add a template named \"default\", or pick one into chat_template as a string");
      }
      return { file, source: def.template };
    }
    throw fileInvalid(file, `chat_template is ${typeof value}, not a string or a list of {name, template}`);
  };
  const fromConfig = fromValue(config.chat_template, configFile);
  if (fromConfig !== undefined) return fromConfig;
  const jsonFile = path.join(dir, "chat_template.json");
  const json = readJsonObject(jsonFile, "the chat template", true);
  return json === undefined ? undefined : fromValue(json.chat_template, jsonFile);
}

/**
 * Streams text out of generated ids: `push` returns the text that the new ids complete. A token
 * may end inside a UTF-8 character (byte-level BPE splits emoji), so text is held back while it
 * ends in U+FFFD. The method is the one of text-generation-inference: decode a short window
 * (the ids since the last emitted boundary) twice, with and without the newest ids, and emit the
 * difference; each push costs a decode of a few tokens, not of everything generated.
 */
export class IncrementalDecoder {
  private readonly ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;
  private emitted = "";

  constructor(
    private readonly tokenizer: Pick<LoadedTokenizer, "decode">,
    private readonly options: DecodeOptions = {},
  ) {}

  /** Adds generated ids; returns the newly completed text ("" while a character is incomplete). */
  push(ids: number | ReadonlyArray<number>): string {
    if (typeof ids === "number") this.ids.push(ids);
    else this.ids.push(...ids);
    const prefixText = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset), this.options);
    const newText = this.tokenizer.decode(this.ids.slice(this.prefixOffset), this.options);
    if (newText.length > prefixText.length && !newText.endsWith("\uFFFD")) {
      const delta = newText.slice(prefixText.length);
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      this.emitted += delta;
      return delta;
    }
    return "";
  }

  /** Whatever is held back (an incomplete character decodes as U+FFFD), e.g. at the end of generation. */
  flush(): string {
    const prefixText = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset), this.options);
    const newText = this.tokenizer.decode(this.ids.slice(this.prefixOffset), this.options);
    const delta = newText.slice(prefixText.length);
    this.prefixOffset = this.readOffset = this.ids.length;
    this.emitted += delta;
    return delta;
  }

  /** All text emitted so far. */
  get text(): string {
    return this.emitted;
  }

  get tokenIds(): readonly number[] {
    return this.ids;
  }
}

/** Loads `tokenizer.json` and `tokenizer_config.json` (and the chat template) of a checkpoint directory. */
export function loadTokenizer(dir: string): LoadedTokenizer {
  const tokenizerFile = path.join(dir, "tokenizer.json");
  const json = readJsonObject(tokenizerFile, "the tokenizer (Hugging Face tokenizers format)");
  const configFile = path.join(dir, "tokenizer_config.json");
  const config = readJsonObject(configFile, "the tokenizer config", true) ?? {};
  const additional = Array.isArray(config.additional_special_tokens) ? config.additional_special_tokens.map(tokenString).filter((t): t is string => t !== undefined) : [];
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(
      { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, added_tokens: [], ...json },
      { ...config, additional_special_tokens: additional, clean_up_tokenization_spaces: config.clean_up_tokenization_spaces ?? false },
    );
  } catch (e) {
    throw fileInvalid(tokenizerFile, `the tokenizer cannot be built: ${(e as Error).message}`);
  }

  const vocab = tok.get_vocab(true);
  let maxId = -1;
  for (const id of vocab.values()) maxId = Math.max(maxId, id);
  const specialIds = new Set<number>();
  for (const [id, token] of tok.get_added_tokens_decoder()) if (token.special) specialIds.add(id);
  const idOf = (key: string): number | undefined => {
    const token = tokenString(config[key]);
    if (token === undefined) return undefined;
    const id = tok.token_to_id(token);
    if (id === undefined) throw fileInvalid(configFile, `${key} ${JSON.stringify(token)} is not a token of ${tokenizerFile}`);
    return id;
  };
  const bosTokenId = idOf("bos_token");
  const eosTokenId = idOf("eos_token");
  const padTokenId = idOf("pad_token");
  const specialStrings: Record<string, unknown> = {};
  for (const key of ["bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"]) {
    const token = tokenString(config[key]);
    if (token !== undefined) specialStrings[key] = token;
  }
  specialStrings.additional_special_tokens = additional;

  const templateSource = findChatTemplate(dir, config, configFile);
  let template: Template | undefined;
  const compiled = (): Template => {
    if (templateSource === undefined) {
      throw new BdcError({
        code: "BDC_MODEL_NO_CHAT_TEMPLATE",
        message: `${configFile}: the tokenizer has no chat_template (nor chat_template.jinja / chat_template.json in ${dir}): the model is not a chat model`,
        hint: "pass plain prompts to this model (a completion, not messages), or use its -Instruct / -Chat variant",
      });
    }
    if (template === undefined) {
      try {
        template = new Template(templateSource.source);
      } catch (e) {
        throw templateError(templateSource.file, `does not parse: ${(e as Error).message}`);
      }
    }
    return template;
  };

  const decode = (ids: ReadonlyArray<number>, options: DecodeOptions = {}): string => {
    const known = ids.filter((id) => Number.isInteger(id) && id >= 0 && tok.id_to_token(id) !== undefined);
    if (known.length === 0) return "";
    return tok.decode(known, { skip_special_tokens: options.skipSpecialTokens ?? false });
  };

  const loaded: LoadedTokenizer = {
    dir,
    vocabSize: maxId + 1,
    bosTokenId,
    eosTokenIds: eosTokenId === undefined ? [] : [eosTokenId],
    padTokenId,
    specialIds,
    hasChatTemplate: templateSource !== undefined,
    encode(text, options = {}) {
      // Pieces without a token map to unk_token's id, undefined when there is none.
      const ids: Array<number | undefined> = tok.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids;
      if (ids.some((id) => id === undefined)) {
        throw new BdcError({
          code: "BDC_MODEL_TOKENIZER",
          message: `${tokenizerFile}: text ${JSON.stringify(text.slice(0, 40))} has pieces the vocabulary cannot encode and there is no unk_token`,
          hint: "the tokenizer.json is incomplete; download the checkpoint again",
        });
      }
      return ids as number[];
    },
    decode,
    idToToken: (id) => tok.id_to_token(id),
    tokenToId: (token) => tok.token_to_id(token),
    applyChatTemplate(messages, options = {}) {
      const t = compiled();
      for (const [i, m] of messages.entries()) {
        if (typeof m?.role !== "string" || typeof m.content !== "string") {
          throw new BdcError({ code: "BDC_MODEL_CHAT_TEMPLATE", message: `chat message ${i} is not {role: string, content: string}` });
        }
      }
      try {
        return t.render({
          ...specialStrings,
          ...withoutGlobals(options.variables),
          messages: messages.map((m) => ({ ...m })),
          add_generation_prompt: options.addGenerationPrompt ?? false,
          // raise_exception and strftime_now are the library's globals (it refuses to have them
          // redefined); its raise_exception throws an Error with the template's message.
        });
      } catch (e) {
        if (e instanceof BdcError) throw e;
        throw templateError(templateSource!.file, `failed to render: ${(e as Error).message}`);
      }
    },
    incrementalDecoder: (options) => new IncrementalDecoder({ decode }, options),
  };
  return loaded;
}

/** The library's own globals cannot be passed as variables (it throws "Variable already declared"). */
const JINJA_GLOBALS = new Set(["raise_exception", "strftime_now", "range", "true", "false", "none", "True", "False", "None"]);

function withoutGlobals(variables: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(variables ?? {}).filter(([k]) => !JINJA_GLOBALS.has(k)));
}

function templateError(file: string, message: string): BdcError {
  return new BdcError({
    code: "BDC_MODEL_CHAT_TEMPLATE",
    message: `${file}: the chat template ${message}`,
    hint: "check the messages against what the model's template accepts (roles, their order, a system message)",
  });
}
