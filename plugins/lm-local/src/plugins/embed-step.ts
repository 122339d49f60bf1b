/**
 * step/embed: one embedding per item, from an `encoder` instance (encoder/local, ...).
 *
 * Which items: the step's `for_each` in the workflow, as for every per-item step - a dataset
 * instance (`for_each: problems`) or an earlier step, whose outputs are then the items
 * (`for_each: solve`). Each finished item is one row of the step's outputs.jsonl, so `--resume`
 * skips the items already embedded.
 *
 * Which text: `field` is a dot path into the item's data (`text`, `problem.statement`,
 * `tests.0.input`), or a template with `{dot.path}` placeholders (`"{question}\n{solution}"`):
 * any `field` containing a `{name}` placeholder is a template, each placeholder replaced by
 * that value. Values must be strings (numbers and booleans are written as they are); a missing
 * value, null, a list or a mapping fails the item, naming the field.
 *
 * Output per item: `{id, row, dimension, model, file}`: the encoder's (unit-length) vector is
 * row `row` of the binary vectors file `file` in the step's directory (vectors.ts: float32 rows,
 * appended as items finish), not JSON numbers. When the step ends it also writes
 * `embeddings.safetensors`: one [items, dimension] tensor "embeddings" in item order, the ids in
 * its metadata ("ids", a JSON list).
 *
 * Batching: the engine hands a step its items one by one (`run(item)`), up to the step's
 * `concurrency` at once. Items that arrive while the encoder is busy wait in a queue and go to it
 * together, up to `batch_size` per call (the encoder pads and batches them in one forward pass);
 * so batches are as large as the step's concurrency allows (`steps.<name>.concurrency` and
 * `run.concurrency`, default 4).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Schema } from "effect";
import { BdcError, definePlugin, option, type StepImpl } from "@bdc/core";
import { writeSafetensors } from "../checkpoint/safetensors.ts";
import { readVectorRows, VectorAppender } from "../vectors.ts";
import type { Encoder } from "@bdc/policy";

export const VECTORS_FILE = "vectors.f32";
export const EMBEDDINGS_FILE = "embeddings.safetensors";

export interface EmbedOutput {
  readonly id: string;
  /** Row of `file` (in the step's directory) holding the vector. */
  readonly row: number;
  readonly dimension: number;
  readonly model: string;
  readonly file: string;
}

const PLACEHOLDER = /\{([A-Za-z_][\w-]*(?:\.[\w-]+)*)\}/g;

/** A `field` with a `{name}` placeholder is a template; any other is a dot path. */
export const isTemplate = (field: string): boolean => new RegExp(PLACEHOLDER.source).test(field);

const describe = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "a list" : typeof v === "object" ? "a mapping" : `a ${typeof v}`);

function keysOf(v: unknown): string {
  if (typeof v !== "object" || v === null) return `the item is ${describe(v)}`;
  const keys = Array.isArray(v) ? v.map((_, i) => String(i)) : Object.keys(v);
  return keys.length === 0 ? "it has no fields" : `it has: ${keys.slice(0, 12).join(", ")}${keys.length > 12 ? ", ..." : ""}`;
}

/** The text at `dotPath` in `data`; throws BDC_ITEM_FAILED naming the path when there is none. */
export function textAt(data: unknown, dotPath: string, itemId: string): string {
  let v: unknown = data;
  let walked = "";
  for (const key of dotPath.split(".")) {
    const parent = v;
    if (Array.isArray(parent) && /^\d+$/.test(key)) v = parent[Number(key)];
    else if (typeof parent === "object" && parent !== null && !Array.isArray(parent) && Object.hasOwn(parent, key)) v = (parent as Record<string, unknown>)[key];
    else v = undefined;
    if (v === undefined) {
      throw new BdcError({
        code: "BDC_ITEM_FAILED",
        message: `item "${itemId}" has no field "${dotPath}" (${walked === "" ? "" : `${walked}: `}${keysOf(parent)})`,
        hint: "set field to the dot path of the text in the item (e.g. statement, problem.text), or a template such as \"{question}\\n{solution}\"",
      });
    }
    walked = walked === "" ? key : `${walked}.${key}`;
  }
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  throw new BdcError({
    code: "BDC_ITEM_FAILED",
    message: `item "${itemId}": field "${dotPath}" is ${describe(v)}, not text`,
    hint: "point field at a string, or join several with a template such as \"{question}\\n{solution}\"",
  });
}

/** The text of an item: the value at the dot path, or the template filled in. */
export function itemText(data: unknown, field: string, itemId: string): string {
  return isTemplate(field) ? field.replace(PLACEHOLDER, (_, p: string) => textAt(data, p, itemId)) : textAt(data, field, itemId);
}

interface Waiting {
  readonly text: string;
  readonly resolve: (v: Float32Array) => void;
  readonly reject: (e: unknown) => void;
  settled: boolean;
}

/** Sends the texts queued while the encoder is busy together, up to `max` per call. */
function batcher(encoder: Encoder, max: number, signal: AbortSignal, onBatch: (n: number) => void) {
  const queue: Waiting[] = [];
  let busy = false;
  const drain = async () => {
    busy = true;
    try {
      while (queue.length > 0) {
        const batch = queue.splice(0, max).filter((w) => !w.settled);
        if (batch.length === 0) continue;
        try {
          const vectors = await encoder.embed(batch.map((w) => w.text), { signal });
          if (vectors.length !== batch.length) throw new BdcError({ code: "BDC_PLUGIN_INVALID", message: `encoder "${encoder.name}" returned ${vectors.length} vectors for ${batch.length} texts` });
          onBatch(batch.length);
          batch.forEach((w, i) => w.resolve(vectors[i]!));
        } catch (e) {
          for (const w of batch) w.reject(e);
        }
      }
    } finally {
      busy = false;
    }
  };
  return (text: string, itemSignal: AbortSignal): Promise<Float32Array> =>
    new Promise<Float32Array>((resolve, reject) => {
      itemSignal.throwIfAborted();
      const onAbort = () => w.reject(itemSignal.reason);
      const w: Waiting = {
        text,
        settled: false,
        resolve: (v) => {
          if (w.settled) return;
          w.settled = true;
          itemSignal.removeEventListener("abort", onAbort);
          resolve(v);
        },
        reject: (e) => {
          if (w.settled) return;
          w.settled = true;
          itemSignal.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      itemSignal.addEventListener("abort", onAbort, { once: true });
      queue.push(w);
      // On the next turn, so that the items the engine starts together go in one batch.
      if (!busy) {
        busy = true;
        setImmediate(() => void drain());
      }
    });
}

export default definePlugin({
  id: "step/embed",
  version: "0.1.0",
  description: "Embed a text field of each item (for_each: a dataset or an earlier step) with an encoder instance: one {id, vector, dimension, model} row per item",
  config: Schema.Struct({
    field: option(
      Schema.String.pipe(Schema.minLength(1)),
      "text",
      'the text of an item: a dot path into its data (text, problem.statement), or a template with {dot.path} placeholders ("{question}\\n{solution}")',
    ),
    batch_size: option(Schema.Int.pipe(Schema.positive()), 32, "most items per encoder call (items waiting while the encoder is busy go together; raise the step's concurrency to fill batches)"),
  }),
  requires: {
    encoder: { slot: "encoder", description: "computes the vectors (e.g. encoder/local)" },
  },
  make(config, deps, kernel): StepImpl<unknown, EmbedOutput> & { close(): void } {
    const encoder = deps.encoder as Encoder;
    let batches = 0;
    let texts = 0;
    const embed = batcher(encoder, config.batch_size, kernel.signal, (n) => {
      batches++;
      texts += n;
    });
    let store: VectorAppender | undefined;
    return {
      async run(item, ctx) {
        const text = itemText(item.data, config.field, item.id);
        const vector = await embed(text, ctx.signal);
        if (vector.length !== encoder.dimension) {
          throw new BdcError({ code: "BDC_PLUGIN_INVALID", message: `encoder "${encoder.name}" returned a vector of ${vector.length} values; it declares dimension ${encoder.dimension}` });
        }
        if (!vector.every(Number.isFinite)) throw new BdcError({ code: "BDC_ITEM_FAILED", message: `item "${item.id}": the encoder returned a vector with non-finite values`, hint: "check the item's text; a retry with --resume embeds it again" });
        if (store === undefined) {
          fs.mkdirSync(ctx.dir, { recursive: true });
          store = new VectorAppender(path.join(ctx.dir, VECTORS_FILE), encoder.dimension);
        }
        return { id: item.id, row: store.append(vector), dimension: vector.length, model: encoder.model, file: VECTORS_FILE };
      },
      summarize(results, ctx) {
        const done = results.filter((r) => r.output !== undefined).length;
        const rows = results.flatMap((r) => (r.output === undefined ? [] : [r.output]));
        if (rows.length > 0) {
          const { dim, vectors } = readVectorRows(path.join(ctx.dir, rows[0]!.file), rows.map((r) => r.row));
          writeSafetensors(path.join(ctx.dir, EMBEDDINGS_FILE), [{ name: "embeddings", dtype: "F32", shape: [rows.length, dim], data: vectors }], { ids: JSON.stringify(rows.map((r) => r.id)), model: encoder.model });
        }
        return {
          embedded: done,
          failed: results.length - done,
          dimension: encoder.dimension,
          model: encoder.model,
          // This session only (resumed items were embedded before).
          encoder_calls: batches,
          mean_batch: batches === 0 ? 0 : Math.round((texts / batches) * 100) / 100,
          ...(rows.length > 0 ? { file: EMBEDDINGS_FILE } : {}),
        };
      },
      close() {
        store?.close();
      },
    };
  },
});
