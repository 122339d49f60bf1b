/**
 * One loaded model per (checkpoint, device, options) in a process: two policy instances or a
 * policy and an encoder on the same checkpoint share its weights. Calls into one model run one
 * at a time - the cores are already busy inside each call.
 */
import * as path from "node:path";
import { CausalLM, type LoadOptions } from "./causal-lm.ts";

interface Entry {
  readonly model: Promise<CausalLM>;
  tail: Promise<unknown>;
}

const pool = new Map<string, Entry>();

function entryFor(dir: string, options: LoadOptions): Entry {
  const { onProgress: _ignored, ...keyed } = options;
  const key = JSON.stringify([path.resolve(dir), keyed]);
  let entry = pool.get(key);
  if (entry === undefined) {
    const model = CausalLM.load(dir, options);
    model.catch(() => pool.delete(key));
    entry = { model, tail: Promise.resolve() };
    pool.set(key, entry);
  }
  return entry;
}

export function sharedModel(dir: string, options: LoadOptions = {}): Promise<CausalLM> {
  return entryFor(dir, options).model;
}

/** Runs `f` with the model once the calls queued before it have finished. */
export function withModel<T>(dir: string, options: LoadOptions, f: (lm: CausalLM) => Promise<T>): Promise<T> {
  const entry = entryFor(dir, options);
  const run = entry.tail.then(async () => f(await entry.model));
  entry.tail = run.catch(() => undefined);
  return run;
}
