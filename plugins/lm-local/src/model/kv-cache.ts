/**
 * The KV cache of a CausalLM between calls: on the host (JS buffers the new rows are appended
 * to) or resident (ORT's own present tensors, GPU buffers on WebGPU, fed back as they are).
 */
import { BdcError } from "@bdc/core";
import type { ort } from "@bdc/onnx-graph";

export type CacheArray = Float32Array | Uint16Array;

/**
 * Keys and values of every layer for the `length` positions seen so far. A cache is consumed by
 * the `forward` call that extends it (which returns the longer one); `forkCache` gives a second
 * handle to continue it two ways; `releaseCache` frees one that will not be continued.
 */
export type KvCache = HostKvCache | ResidentKvCache;

/** Position-major [batch, capacity, kvH, D] JS buffers; `forward` appends to them in place. */
export interface HostKvCache {
  readonly kind: "host";
  readonly batch: number;
  readonly length: number;
  readonly capacity: number;
  readonly keys: ReadonlyArray<CacheArray>;
  readonly values: ReadonlyArray<CacheArray>;
}

/** ORT's present tensors (GPU buffers on WebGPU), [batch, length, kvH, D] or, with fused attention, [batch, kvH, length, D]; immutable and shared by forks. */
export interface ResidentKvCache {
  readonly kind: "resident";
  readonly batch: number;
  readonly length: number;
  readonly lease: CacheLease;
}

/** Whether the session that made a cache's tensors is open: a GPU buffer freed after it closed would crash ORT. */
export interface CacheOwner {
  alive: boolean;
}

/**
 * Device tensors shared by the handles (forks) of one cache: freed when the last handle is
 * consumed or released, or, for handles that were dropped, when they are garbage collected -
 * while their session is open: after it closed they are left alone (freeing a GPU buffer then
 * crashes ORT; the model's dispose frees every cache it can still reach first).
 */
export class ResidentTensors {
  private static readonly finalizer = new FinalizationRegistry<{ tensors: ReadonlyArray<ort.Tensor>; owner: CacheOwner }>(({ tensors, owner }) => {
    if (owner.alive) tensors.forEach((t) => t.dispose());
  });
  private refs = 1;
  private tensors: { keys: ReadonlyArray<ort.Tensor>; values: ReadonlyArray<ort.Tensor> } | undefined;

  constructor(keys: ReadonlyArray<ort.Tensor>, values: ReadonlyArray<ort.Tensor>, owner: CacheOwner) {
    this.tensors = { keys, values };
    ResidentTensors.finalizer.register(this, { tensors: [...keys, ...values], owner }, this);
  }

  get(): { keys: ReadonlyArray<ort.Tensor>; values: ReadonlyArray<ort.Tensor> } {
    if (this.tensors === undefined) throw new BdcError({ code: "BDC_KV_CACHE_RELEASED", message: "this KV cache was freed (every handle to it was consumed or released)" });
    return this.tensors;
  }

  retain(): void {
    this.get();
    this.refs++;
  }

  release(): void {
    if (--this.refs > 0) return;
    this.releaseAll();
  }

  releaseAll(): void {
    if (this.tensors === undefined) return;
    const { keys, values } = this.tensors;
    this.tensors = undefined;
    ResidentTensors.finalizer.unregister(this);
    for (const t of [...keys, ...values]) t.dispose();
  }
}

/** One handle's claim on shared device tensors: used once, by the call that extends it or by releaseCache. */
export class CacheLease {
  private live = true;
  constructor(private readonly tensors: ResidentTensors) {}

  /** The tensors, for a fork: the handle stays live. */
  peek(): ResidentTensors {
    if (!this.live) {
      throw new BdcError({ code: "BDC_KV_CACHE_RELEASED", message: "this KV cache was already extended by a forward call or released", hint: "a cache continues one way; forkCache(cache) first to continue it twice" });
    }
    return this.tensors;
  }

  /** The tensors, used up: the call that extends the cache, or its release. */
  take(): ResidentTensors {
    const tensors = this.peek();
    this.live = false;
    return tensors;
  }

  get isLive(): boolean {
    return this.live;
  }
}

/** The first `length` positions of each sequence: a view for one sequence, a copy for a batch. */
export function prefix(buffer: CacheArray, batch: number, capacity: number, length: number, rowSize: number): CacheArray {
  if (batch === 1 || length === capacity) return buffer.subarray(0, batch * length * rowSize);
  const out = buffer instanceof Float32Array ? new Float32Array(batch * length * rowSize) : new Uint16Array(batch * length * rowSize);
  for (let b = 0; b < batch; b++) out.set(buffer.subarray(b * capacity * rowSize, (b * capacity + length) * rowSize), b * length * rowSize);
  return out;
}

export function regrow(buffer: CacheArray, into: CacheArray, batch: number, oldCapacity: number, capacity: number, length: number, rowSize: number): CacheArray {
  for (let b = 0; b < batch; b++) into.set(buffer.subarray(b * oldCapacity * rowSize, (b * oldCapacity + length) * rowSize), b * capacity * rowSize);
  return into;
}
