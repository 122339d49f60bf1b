/**
 * Training data for supervised fine-tuning, in the formats TRL's SFTTrainer takes, turned into
 * token ids with a mask of the tokens that carry loss:
 *
 * - `{"messages": [{role, content}, ...]}` (what step/export-pairs writes): rendered with the
 *   model's chat template; loss on the assistant turns only (TRL's assistant-only loss), each
 *   turn's text from the template's end of the previous part to the end of the turn (its end
 *   marker included, so the model learns to stop). The turns are tokenised part by part, so the
 *   prompt is tokenised exactly as at generation time.
 * - `{"prompt": "...", "completion": "..."}`: prompt tokens (with the tokenizer's special tokens,
 *   e.g. BOS) then completion tokens and EOS; loss on the completion and EOS. `prompt` and
 *   `completion` may also be message lists (TRL's conversational prompt-completion): loss on the
 *   completion's assistant turns.
 * - `{"text": "..."}`: language modelling, loss on every token.
 *
 * Rows longer than `maxLength` tokens are cut (their end is dropped, as TRL does) and counted; a
 * row left without any loss token is dropped and counted. Problems are errors naming the file
 * and line (all of them at once, up to 20).
 */
import * as fs from "node:fs";
import { BdcError } from "@bdc/core";
import type { ChatMessage, LoadedTokenizer } from "../checkpoint/tokenizer.ts";

export interface TrainingExample {
  /** Token ids of the row (after truncation). */
  readonly ids: ReadonlyArray<number>;
  /** lossMask[t] = 1 when token t is a completion token (predicted from the tokens before it). */
  readonly lossMask: Uint8Array;
  /** "file:line" */
  readonly source: string;
  /** The row's input as text (`inputText`): what an input-aware composer embeds. */
  readonly input: string;
}

export interface DataReport {
  readonly file: string;
  readonly rows: number;
  readonly examples: number;
  readonly truncated: number;
  /** Rows dropped because truncation left them without a completion token. */
  readonly droppedNoCompletion: number;
  readonly tokens: number;
  readonly completionTokens: number;
  readonly formats: Readonly<Record<string, number>>;
}

export interface LoadedData {
  readonly examples: ReadonlyArray<TrainingExample>;
  readonly report: DataReport;
}

const MAX_PROBLEMS = 20;

interface Part {
  readonly text: string;
  readonly loss: boolean;
  /** Encode with the tokenizer's special tokens (the start of a plain prompt). */
  readonly special?: boolean;
}

class RowError extends Error {}

function messagesOf(value: unknown, key: string): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) throw new RowError(`"${key}" must be a non-empty list of {"role", "content"}`);
  return value.map((m, i) => {
    if (typeof m !== "object" || m === null || typeof (m as ChatMessage).role !== "string" || typeof (m as ChatMessage).content !== "string") {
      throw new RowError(`${key}[${i}] is not {"role": string, "content": string}`);
    }
    return { role: (m as ChatMessage).role, content: (m as ChatMessage).content };
  });
}

/**
 * The parts of a conversation: template text between assistant turns (no loss) and each
 * assistant turn with loss where `lossFrom` allows (message index >= lossFrom).
 */
function chatParts(tokenizer: LoadedTokenizer, messages: ReadonlyArray<ChatMessage>, lossFrom: number): Part[] {
  const parts: Part[] = [];
  let done = "";
  const take = (rendered: string, loss: boolean, what: string) => {
    if (!rendered.startsWith(done)) {
      throw new RowError(
        `the chat template does not render this conversation prefix by prefix (${what} does not start with the text rendered before it), so the assistant turns cannot be located; use {"prompt", "completion"} rows instead`,
      );
    }
    if (rendered.length > done.length) parts.push({ text: rendered.slice(done.length), loss });
    done = rendered;
  };
  let sawLoss = false;
  messages.forEach((m, i) => {
    if (m.role !== "assistant" || i < lossFrom) return;
    take(tokenizer.applyChatTemplate(messages.slice(0, i), { addGenerationPrompt: true }), false, `the prompt before message ${i}`);
    take(tokenizer.applyChatTemplate(messages.slice(0, i + 1)), true, `message ${i}`);
    sawLoss = true;
  });
  if (!sawLoss) throw new RowError(lossFrom === 0 ? "the conversation has no assistant turn to learn from" : "the completion has no assistant turn to learn from");
  take(tokenizer.applyChatTemplate(messages), false, "the whole conversation");
  return parts;
}

/**
 * The input of a conversation as one text: its user turns, joined by a blank line (no system
 * prompt, no assistant turn). The hypernetwork embeds this at training time (the rows' prompts)
 * and at generation time (the request's messages), so both see the same text.
 */
export function inputText(messages: ReadonlyArray<ChatMessage>): string {
  const user = messages.filter((m) => m.role === "user").map((m) => m.content);
  return user.length > 0 ? user.join("\n\n") : messages.map((m) => m.content).join("\n\n");
}

function rowParts(tokenizer: LoadedTokenizer, row: Record<string, unknown>): { parts: Part[]; format: string; eos: boolean; input: string } {
  if ("messages" in row) {
    const messages = messagesOf(row["messages"], "messages");
    const firstAnswer = messages.findIndex((m) => m.role === "assistant");
    return { parts: chatParts(tokenizer, messages, 0), format: "messages", eos: false, input: inputText(messages.slice(0, firstAnswer < 0 ? messages.length : firstAnswer)) };
  }
  if ("prompt" in row || "completion" in row) {
    const { prompt, completion } = row as { prompt?: unknown; completion?: unknown };
    if (typeof prompt === "string" && typeof completion === "string") {
      if (completion === "") throw new RowError(`"completion" is empty`);
      return { parts: [{ text: prompt, loss: false, special: true }, { text: completion, loss: true }], format: "prompt-completion", eos: true, input: prompt };
    }
    if (Array.isArray(prompt) && Array.isArray(completion)) {
      const p = messagesOf(prompt, "prompt");
      return { parts: chatParts(tokenizer, [...p, ...messagesOf(completion, "completion")], p.length), format: "prompt-completion (messages)", eos: false, input: inputText(p) };
    }
    throw new RowError(`"prompt" and "completion" must both be strings or both be message lists`);
  }
  if ("text" in row) {
    if (typeof row["text"] !== "string" || row["text"] === "") throw new RowError(`"text" must be a non-empty string`);
    return { parts: [{ text: row["text"], loss: true, special: true }], format: "text", eos: true, input: row["text"] };
  }
  const keys = Object.keys(row);
  throw new RowError(`a row needs "messages", "prompt" + "completion", or "text" (it has ${keys.length === 0 ? "no keys" : keys.map((k) => JSON.stringify(k)).join(", ")})`);
}

/** Reads and tokenises a training file; throws BDC_TRAIN_DATA naming every bad line. */
export function loadTrainingData(file: string, tokenizer: LoadedTokenizer, options: { readonly maxLength: number }): LoadedData {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BdcError({ code: code === "ENOENT" ? "BDC_FILE_NOT_FOUND" : "BDC_TRAIN_DATA", message: `${file}: ${code === "ENOENT" ? "not found" : (e as Error).message}`, hint: "give a JSONL file of {\"messages\": [...]} or {\"prompt\", \"completion\"} rows" });
  }
  const eos = tokenizer.eosTokenIds[0];
  const examples: TrainingExample[] = [];
  const problems: string[] = [];
  const formats: Record<string, number> = {};
  let rows = 0;
  let truncated = 0;
  let dropped = 0;
  let tokens = 0;
  let completionTokens = 0;
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    rows++;
    const where = `${file}:${i + 1}`;
    try {
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch (e) {
        throw new RowError(`not JSON (${(e as Error).message})`);
      }
      if (typeof row !== "object" || row === null || Array.isArray(row)) throw new RowError("a row must be a JSON object");
      const { parts, format, eos: addEos, input } = rowParts(tokenizer, row as Record<string, unknown>);
      formats[format] = (formats[format] ?? 0) + 1;
      const ids: number[] = [];
      const mask: number[] = [];
      for (const p of parts) {
        const t = tokenizer.encode(p.text, { addSpecialTokens: p.special === true });
        ids.push(...t);
        for (let k = 0; k < t.length; k++) mask.push(p.loss ? 1 : 0);
      }
      if (addEos) {
        if (eos === undefined) throw new RowError("the tokenizer has no EOS token to end the completion with");
        ids.push(eos);
        mask.push(1);
      }
      let cut = false;
      if (ids.length > options.maxLength) {
        ids.length = options.maxLength;
        mask.length = options.maxLength;
        cut = true;
        truncated++;
      }
      // Token 0 is never predicted (nothing before it): it carries no loss.
      mask[0] = 0;
      const lossTokens = mask.reduce((s, m) => s + m, 0);
      if (lossTokens === 0) {
        if (!cut) throw new RowError("no completion tokens");
        dropped++;
        return;
      }
      tokens += ids.length;
      completionTokens += lossTokens;
      examples.push({ ids, lossMask: Uint8Array.from(mask), source: where, input });
    } catch (e) {
      if (!(e instanceof RowError) && !(e instanceof BdcError)) throw e;
      if (problems.length < MAX_PROBLEMS) problems.push(`${where}: ${e.message}`);
      else if (problems.length === MAX_PROBLEMS) problems.push("... (more lines have problems)");
    }
  });
  if (problems.length > 0) {
    throw new BdcError({
      code: "BDC_TRAIN_DATA",
      message: `${problems.length === 1 ? "a row" : "rows"} of ${file} cannot be used:\n  ${problems.join("\n  ")}`,
      hint: 'each line is one JSON object: {"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]}, {"prompt": ..., "completion": ...} or {"text": ...}',
    });
  }
  if (examples.length === 0) {
    throw new BdcError({
      code: "BDC_TRAIN_DATA",
      message: rows === 0 ? `${file} has no rows` : `${file}: none of its ${rows} rows is left to train on (${dropped} lost every completion token to truncation at max_length ${options.maxLength})`,
      hint: rows === 0 ? "the file must hold one JSON row per line" : "raise max_length, or shorten the prompts",
    });
  }
  return { examples, report: { file, rows, examples: examples.length, truncated, droppedNoCompletion: dropped, tokens, completionTokens, formats } };
}
