/**
 * A sentence-embedding model exported to ONNX, as Hugging Face repositories ship them
 * (sentence-transformers repos with an `onnx/` folder, the ONNX ports transformers.js uses):
 *
 *   <dir>/onnx/model.onnx (+ model.onnx_data)   the transformer, or the whole pipeline
 *   <dir>/tokenizer.json (+ tokenizer_config.json)
 *   <dir>/1_Pooling/config.json                  how token states become one vector
 *   <dir>/sentence_bert_config.json              max_seq_length
 *   <dir>/modules.json                           the pipeline's modules (Dense layers are refused)
 *
 * The graph's inputs are fed by name (input_ids, attention_mask, token_type_ids, position_ids,
 * in the integer type the graph declares). Its output is `sentence_embedding` when the export
 * includes pooling, else the token states (`last_hidden_state`, `token_embeddings`, or the one
 * rank-3 output), pooled here exactly as sentence-transformers' Pooling module does (cls, mean,
 * max, mean_sqrt_len, weightedmean, lasttoken; several modes are concatenated in its order).
 * Every vector is L2-normalised. Texts are sorted by length before batching, so padding stays
 * small; results come back in input order.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import { float16ArrayToFloat32, openSession, ort, type DeviceOptions } from "@bdc/onnx-graph";
import { fileInvalid, isObject, readJsonObject } from "../checkpoint/files.ts";
import { loadTokenizer, type LoadedTokenizer } from "../checkpoint/tokenizer.ts";
import { DEFAULT_ONNX_FILES, POOLING_CONFIG } from "./sentence-layout.ts";

/** sentence-transformers' pooling modes, in the order its Pooling module concatenates them. */
export const POOLING_MODES = ["cls", "max", "mean", "mean_sqrt_len", "weightedmean", "lasttoken"] as const;
export type PoolingMode = (typeof POOLING_MODES)[number];

/** The key of each mode in 1_Pooling/config.json. */
const POOLING_KEYS: Record<PoolingMode, string> = {
  cls: "pooling_mode_cls_token",
  max: "pooling_mode_max_tokens",
  mean: "pooling_mode_mean_tokens",
  mean_sqrt_len: "pooling_mode_mean_sqrt_len_tokens",
  weightedmean: "pooling_mode_weightedmean_tokens",
  lasttoken: "pooling_mode_lasttoken",
};


export interface SentenceEncoderOptions extends DeviceOptions {
  /** The .onnx file, relative to the folder (default: onnx/model.onnx, else model.onnx). */
  readonly onnxFile?: string | undefined;
  /** Overrides 1_Pooling/config.json. */
  readonly pooling?: ReadonlyArray<PoolingMode> | undefined;
  /** Overrides sentence_bert_config.json's max_seq_length. */
  readonly maxTokens?: number | undefined;
  /** Batch texts of similar length together (default true; false: in input order, for the benchmark). */
  readonly sortByLength?: boolean | undefined;
}

export interface SentenceEncoder {
  readonly dir: string;
  readonly onnxFile: string;
  readonly pooling: ReadonlyArray<PoolingMode> | "in-graph";
  readonly maxTokens: number;
  readonly dimension: number;
  readonly tokenizer: LoadedTokenizer;
  embed(texts: ReadonlyArray<string>, batchSize: number): Promise<Float32Array[]>;
  close(): Promise<void>;
}

/** The .onnx files of a folder (for the error that says which to pick). */
function onnxFilesIn(dir: string): string[] {
  const out: string[] = [];
  for (const sub of ["", "onnx"]) {
    try {
      for (const f of fs.readdirSync(path.join(dir, sub))) if (f.endsWith(".onnx")) out.push(sub === "" ? f : `${sub}/${f}`);
    } catch {
      // no such folder
    }
  }
  return out;
}

function findOnnxFile(dir: string, asked: string | undefined): string {
  const candidates = asked === undefined ? DEFAULT_ONNX_FILES : [asked];
  const found = candidates.find((f) => fs.existsSync(path.join(dir, f)));
  if (found !== undefined) return found;
  const has = onnxFilesIn(dir);
  throw new BdcError({
    code: "BDC_MODEL_FILE_MISSING",
    message: `${dir}: no ${candidates.join(" or ")}${has.length > 0 ? ` (it has ${has.join(", ")})` : " (and no other .onnx file)"}`,
    hint:
      has.length > 0
        ? `pick one with onnx_file: ${has[0]}`
        : "pull a repository that ships ONNX weights with `pnpm bdc models pull org/name --onnx`, or export one with optimum: `optimum-cli export onnx --model org/name --task feature-extraction DIR`",
  });
}

/** The pooling modes 1_Pooling/config.json turns on; mean with a note when the file is absent. */
export function readPooling(dir: string): { modes: PoolingMode[]; from: string | undefined } {
  const file = path.join(dir, POOLING_CONFIG);
  const config = readJsonObject(file, "the pooling of a sentence-transformers model", true);
  if (config === undefined) return { modes: ["mean"], from: undefined };
  const modes = POOLING_MODES.filter((m) => config[POOLING_KEYS[m]] === true);
  if (modes.length === 0) throw fileInvalid(file, `turns no pooling mode on (${Object.values(POOLING_KEYS).join(", ")})`, "set one of them to true, or give pooling: in the encoder's config");
  return { modes, from: file };
}

/** max_seq_length of sentence_bert_config.json, else the tokenizer's truncation, else 512. */
function readMaxTokens(dir: string): number {
  const st = readJsonObject(path.join(dir, "sentence_bert_config.json"), "the sentence-transformers config", true);
  if (typeof st?.max_seq_length === "number" && st.max_seq_length > 0) return st.max_seq_length;
  const tok = readJsonObject(path.join(dir, "tokenizer.json"), "the tokenizer", true);
  const trunc = tok?.truncation;
  if (isObject(trunc) && typeof trunc.max_length === "number" && trunc.max_length > 0) return trunc.max_length;
  return 512;
}

/** Modules after pooling that an ONNX transformer does not hold (Dense projections) make its vectors wrong: refused. */
function checkModules(dir: string, poolingInGraph: boolean): void {
  const file = path.join(dir, "modules.json");
  if (!fs.existsSync(file)) return;
  let modules: unknown;
  try {
    modules = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw fileInvalid(file, `is not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(modules)) throw fileInvalid(file, "is not a list of modules");
  const dense = modules.filter((m) => isObject(m) && typeof m.type === "string" && /Dense$/.test(m.type));
  if (dense.length > 0 && !poolingInGraph) {
    throw new BdcError({
      code: "BDC_MODEL_UNSUPPORTED",
      message: `${file}: the model has ${dense.length} Dense module(s) after pooling (${dense.map((m) => (m as { path?: unknown }).path).join(", ")}), which the ONNX transformer's token states do not include`,
      hint: "export the whole pipeline (sentence-transformers: model.save(dir) after SentenceTransformer(..., backend=\"onnx\"), whose graph outputs sentence_embedding), or pick another model",
    });
  }
}

type IntType = "int64" | "int32";

interface Feed {
  readonly name: string;
  readonly kind: "input_ids" | "attention_mask" | "token_type_ids" | "position_ids";
  readonly type: IntType;
}

function feedsOf(session: ort.InferenceSession, file: string): Feed[] {
  return session.inputMetadata.map((m) => {
    const kind = (["input_ids", "attention_mask", "token_type_ids", "position_ids"] as const).find((k) => m.name === k);
    if (kind === undefined) {
      throw new BdcError({ code: "BDC_MODEL_UNSUPPORTED", message: `${file}: the graph wants an input "${m.name}"; only input_ids, attention_mask, token_type_ids and position_ids can be fed`, hint: "export the model for feature-extraction without past key values" });
    }
    const type = m.isTensor && m.type === "int32" ? "int32" : "int64";
    return { name: m.name, kind, type };
  });
}

function pickOutput(session: ort.InferenceSession, file: string): { name: string; pooled: boolean } {
  const names = session.outputNames;
  if (names.includes("sentence_embedding")) return { name: "sentence_embedding", pooled: true };
  for (const n of ["last_hidden_state", "token_embeddings"]) if (names.includes(n)) return { name: n, pooled: false };
  const rank3 = session.outputMetadata.filter((m) => m.isTensor && m.shape.length === 3);
  if (rank3.length === 1) return { name: rank3[0]!.name, pooled: false };
  throw new BdcError({
    code: "BDC_MODEL_UNSUPPORTED",
    message: `${file}: no sentence_embedding, last_hidden_state or token_embeddings output (it has ${names.join(", ")})`,
    hint: "export the model for feature-extraction (optimum-cli export onnx --task feature-extraction)",
  });
}

/** Pools one row's token states [seq, H] over its first `n` (unpadded) tokens, concatenating the modes. */
export function poolTokens(states: Float32Array, offset: number, n: number, hidden: number, modes: ReadonlyArray<PoolingMode>): Float32Array {
  const out = new Float32Array(hidden * modes.length);
  modes.forEach((mode, k) => {
    const v = out.subarray(k * hidden, (k + 1) * hidden);
    if (mode === "cls" || mode === "lasttoken") {
      v.set(states.subarray(offset + (mode === "cls" ? 0 : n - 1) * hidden, offset + (mode === "cls" ? 1 : n) * hidden));
    } else if (mode === "max") {
      v.fill(-Infinity);
      for (let s = 0; s < n; s++) for (let j = 0; j < hidden; j++) v[j] = Math.max(v[j]!, states[offset + s * hidden + j]!);
    } else {
      // mean, mean_sqrt_len: equal weights; weightedmean: position s+1 (sentence-transformers' weights).
      let total = 0;
      for (let s = 0; s < n; s++) {
        const w = mode === "weightedmean" ? s + 1 : 1;
        total += w;
        for (let j = 0; j < hidden; j++) v[j]! += w * states[offset + s * hidden + j]!;
      }
      const div = mode === "mean_sqrt_len" ? Math.sqrt(n) : total;
      for (let j = 0; j < hidden; j++) v[j]! /= div;
    }
  });
  return out;
}

export function l2Normalize(v: Float32Array): Float32Array {
  let sq = 0;
  for (const x of v) sq += x * x;
  const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
  for (let j = 0; j < v.length; j++) v[j]! *= inv;
  return v;
}

const floats = (t: ort.Tensor, what: string): Float32Array => {
  if (t.type === "float32") return t.data as Float32Array;
  if (t.type === "float16") return float16ArrayToFloat32(t.data as Uint16Array);
  throw new BdcError({ code: "BDC_MODEL_UNSUPPORTED", message: `${what} is ${t.type}; float32 or float16 was expected` });
};

/**
 * Token ids with the special tokens the tokenizer's post-processor adds ([CLS] ... [SEP],
 * <s> ... </s>), cut to `max` by dropping content tokens, never the specials around them.
 */
export function encodeTruncated(tokenizer: LoadedTokenizer, text: string, max: number): number[] {
  const ids = tokenizer.encode(text, { addSpecialTokens: true });
  if (ids.length <= max) return ids;
  let head = 0;
  while (head < ids.length && tokenizer.specialIds.has(ids[head]!)) head++;
  let tail = 0;
  while (tail < ids.length - head && tokenizer.specialIds.has(ids[ids.length - 1 - tail]!)) tail++;
  const keep = Math.max(0, max - head - tail);
  return [...ids.slice(0, head), ...ids.slice(head, head + keep), ...ids.slice(ids.length - tail)];
}

/** Opens the model of a sentence-embedding folder; the first embedding (a probe) fixes the dimension. */
export async function openSentenceEncoder(dir: string, options: SentenceEncoderOptions): Promise<SentenceEncoder> {
  const onnxFile = findOnnxFile(dir, options.onnxFile);
  const file = path.join(dir, onnxFile);
  const tokenizer = loadTokenizer(dir);
  const maxTokens = options.maxTokens ?? readMaxTokens(dir);
  const session = await openSession(file, options);
  try {
    const feeds = feedsOf(session, file);
    if (!feeds.some((f) => f.kind === "input_ids")) throw new BdcError({ code: "BDC_MODEL_UNSUPPORTED", message: `${file}: the graph has no input_ids input (inputs: ${session.inputNames.join(", ")})` });
    const output = pickOutput(session, file);
    checkModules(dir, output.pooled);
    const modes = options.pooling ?? readPooling(dir).modes;
    const pad = tokenizer.padTokenId ?? 0;
    // One run at a time: ORT already uses every core for one, and interleaved runs only thrash.
    let queue: Promise<unknown> = Promise.resolve();

    const runBatch = async (encoded: ReadonlyArray<number[]>): Promise<Float32Array[]> => {
      const B = encoded.length;
      const S = Math.max(1, ...encoded.map((e) => e.length));
      const fill = (value: (b: number, s: number, n: number) => number, type: IntType) => {
        const data = type === "int64" ? new BigInt64Array(B * S) : new Int32Array(B * S);
        encoded.forEach((e, b) => {
          for (let s = 0; s < S; s++) {
            const x = value(b, s, e.length);
            if (data instanceof BigInt64Array) data[b * S + s] = BigInt(x);
            else data[b * S + s] = x;
          }
        });
        return new ort.Tensor(type, data, [B, S]);
      };
      const inputs: Record<string, ort.Tensor> = {};
      for (const f of feeds) {
        inputs[f.name] = fill(
          f.kind === "input_ids" ? (b, s, n) => (s < n ? encoded[b]![s]! : pad) : f.kind === "attention_mask" ? (_b, s, n) => (s < n ? 1 : 0) : f.kind === "position_ids" ? (_b, s) => s : () => 0,
          f.type,
        );
      }
      const result = await session.run(inputs, [output.name]);
      const t = result[output.name]!;
      const data = floats(t, `${file}: output ${output.name}`);
      if (output.pooled) {
        const D = Number(t.dims[t.dims.length - 1]);
        return encoded.map((_, b) => l2Normalize(data.slice(b * D, (b + 1) * D)));
      }
      const H = Number(t.dims[2]);
      return encoded.map((e, b) => l2Normalize(poolTokens(data, b * S * H, Math.max(1, e.length), H, modes)));
    };

    const embed = (texts: ReadonlyArray<string>, batchSize: number): Promise<Float32Array[]> => {
      const job = queue.then(async () => {
        const encoded = texts.map((t) => encodeTruncated(tokenizer, t, maxTokens));
        const order = encoded.map((_, i) => i);
        if (options.sortByLength !== false) order.sort((a, b) => encoded[a]!.length - encoded[b]!.length);
        const out = new Array<Float32Array>(texts.length);
        for (let i = 0; i < order.length; i += batchSize) {
          const idx = order.slice(i, i + batchSize);
          const vectors = await runBatch(idx.map((j) => encoded[j]!));
          idx.forEach((j, k) => (out[j] = vectors[k]!));
        }
        return out;
      });
      queue = job.catch(() => undefined);
      return job;
    };

    const [probe] = await embed(["dimension probe"], 1);
    return { dir, onnxFile, pooling: output.pooled ? "in-graph" : modes, maxTokens, dimension: probe!.length, tokenizer, embed, close: () => session.release() };
  } catch (e) {
    await session.release();
    throw e;
  }
}
