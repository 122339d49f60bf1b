/**
 * One loaded model per (checkpoint, device, options) in a process: two policy instances or a
 * policy and an encoder on the same checkpoint share its weights. Adapters are not part of the
 * key (they are fed per call), so instances that differ only in their adapter share one session.
 * Each holder takes a lease and releases it when it closes; the model is disposed when the last
 * lease goes. Calls into one model run one at a time - the cores are already busy inside each call.
 */
import * as path from "node:path";
import { CausalLM, type LoadOptions } from "./causal-lm.ts";

interface Entry {
  readonly model: Promise<CausalLM>;
  tail: Promise<unknown>;
  leases: number;
}

export interface ModelLease {
  /** The loaded model (shared: use `run` for calls, so that they queue). */
  readonly lm: CausalLM;
  /** Runs `f` with the model once the calls queued before it have finished. */
  run<T>(f: (lm: CausalLM) => Promise<T>): Promise<T>;
  /** Gives the lease back; the last one disposes the model. Idempotent. */
  release(): Promise<void>;
}

const pool = new Map<string, Entry>();

function keyOf(dir: string, options: LoadOptions): string {
  const { onProgress: _ignored, ...keyed } = options;
  return JSON.stringify([path.resolve(dir), keyed]);
}

/** A lease on the shared model of `dir` with `options`, loading it on first use. */
export async function leaseModel(dir: string, options: LoadOptions = {}): Promise<ModelLease> {
  const key = keyOf(dir, options);
  let entry = pool.get(key);
  if (entry === undefined) {
    const model = CausalLM.load(dir, options);
    const created: Entry = { model, tail: Promise.resolve(), leases: 0 };
    model.catch(() => {
      if (pool.get(key) === created) pool.delete(key);
    });
    pool.set(key, created);
    entry = created;
  }
  const held = entry;
  held.leases++;
  let lm: CausalLM;
  try {
    lm = await held.model;
  } catch (e) {
    held.leases--;
    throw e;
  }
  let released = false;
  return {
    lm,
    run<T>(f: (lm: CausalLM) => Promise<T>): Promise<T> {
      const run = held.tail.then(() => f(lm));
      held.tail = run.catch(() => undefined);
      return run;
    },
    async release() {
      if (released) return;
      released = true;
      held.leases--;
      if (held.leases > 0) return;
      if (pool.get(key) === held) pool.delete(key);
      await held.tail;
      await lm.dispose();
    },
  };
}

/** How many models are loaded now (for tests and diagnostics). */
export function loadedModels(): number {
  return pool.size;
}
