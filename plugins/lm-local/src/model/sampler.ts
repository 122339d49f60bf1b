/**
 * Next-token choice from logits: greedy (the paper's decoding, and the default), or sampling
 * with temperature, top-k and top-p from a seeded generator so that a seed reproduces a run.
 */
export interface SamplingOptions {
  /** 0 = greedy. */
  readonly temperature?: number | undefined;
  readonly topK?: number | undefined;
  readonly topP?: number | undefined;
  readonly seed?: number | undefined;
}

/** xorshift128+ style generator on 32-bit halves (sfc32): fast, seedable, good enough for sampling. */
export function seededRandom(seed: number): () => number {
  let a = 0x9e3779b9 ^ seed;
  let b = 0x243f6a88 ^ Math.imul(seed, 0x85ebca6b);
  let c = 0xb7e15162;
  let d = 1;
  const next = () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (a + b + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

export function argmax(logits: Float32Array, offset = 0, length = logits.length - offset): number {
  let best = 0;
  let max = -Infinity;
  for (let i = 0; i < length; i++) {
    const v = logits[offset + i]!;
    if (v > max) {
      max = v;
      best = i;
    }
  }
  return best;
}

export class Sampler {
  private readonly random: () => number;
  constructor(private readonly options: SamplingOptions) {
    this.random = seededRandom(options.seed ?? Math.floor(Math.random() * 2 ** 31));
  }

  /** The next token from the `vocab` logits starting at `offset`. */
  next(logits: Float32Array, offset: number, vocab: number): number {
    const temperature = this.options.temperature ?? 0;
    if (temperature <= 0) return argmax(logits, offset, vocab);
    const topK = this.options.topK !== undefined && this.options.topK > 0 ? Math.min(this.options.topK, vocab) : vocab;
    const topP = this.options.topP ?? 1;
    // Candidates by descending logit (a full sort only when neither filter applies is still cheap next to the forward pass).
    const order = Array.from({ length: vocab }, (_, i) => i);
    order.sort((x, y) => logits[offset + y]! - logits[offset + x]!);
    const kept = order.slice(0, topK);
    const max = logits[offset + kept[0]!]!;
    const weights = kept.map((i) => Math.exp((logits[offset + i]! - max) / temperature));
    const sum = weights.reduce((s, x) => s + x, 0);
    let n = kept.length;
    if (topP < 1) {
      let cumulative = 0;
      for (let i = 0; i < kept.length; i++) {
        cumulative += weights[i]! / sum;
        if (cumulative >= topP) {
          n = i + 1;
          break;
        }
      }
    }
    const total = weights.slice(0, n).reduce((s, x) => s + x, 0);
    let r = this.random() * total;
    for (let i = 0; i < n; i++) {
      r -= weights[i]!;
      if (r <= 0) return kept[i]!;
    }
    return kept[n - 1]!;
  }
}
