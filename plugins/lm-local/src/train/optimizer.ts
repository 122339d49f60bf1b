/**
 * The optimizer side of training, with PyTorch's semantics (checked against torch in the parity
 * test): AdamW as torch.optim.AdamW (decoupled weight decay, bias-corrected moments, float32
 * arithmetic step by step), clip_grad_norm_ as torch.nn.utils does it, and the learning-rate
 * schedules of transformers (get_linear/cosine/constant_schedule_with_warmup). Parameters are
 * named Float32Arrays updated in place; nothing here knows about models.
 */
const f = Math.fround;

export interface AdamWOptions {
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
}

export interface MomentState {
  readonly m: Float32Array;
  readonly v: Float32Array;
}

export class AdamW {
  /** Optimizer steps taken (torch's `state["step"]`). */
  step = 0;
  readonly state: Map<string, MomentState>;

  constructor(
    readonly params: ReadonlyMap<string, Float32Array>,
    readonly options: AdamWOptions,
  ) {
    this.state = new Map([...params].map(([name, p]) => [name, { m: new Float32Array(p.length), v: new Float32Array(p.length) }]));
  }

  /** One update of every parameter with its gradient at learning rate `lr`. */
  update(grads: ReadonlyMap<string, Float32Array>, lr: number): void {
    this.step++;
    const [b1, b2] = this.options.betas;
    const decay = f(1 - lr * this.options.weightDecay);
    // torch computes these scalars in double and casts them to float32 when applying them.
    const bc2Sqrt = f(Math.sqrt(1 - b2 ** this.step));
    const stepSize = f(lr / (1 - b1 ** this.step));
    const eps = f(this.options.eps);
    const c1 = f(1 - b1);
    const c2 = f(1 - b2);
    const fb1 = f(b1);
    const fb2 = f(b2);
    for (const [name, p] of this.params) {
      const g = grads.get(name);
      if (g === undefined) throw new Error(`AdamW: no gradient for ${name}`);
      const { m, v } = this.state.get(name)!;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]!;
        if (decay !== 1) p[i] = f(p[i]! * decay);
        m[i] = f(f(m[i]! * fb1) + f(gi * c1));
        v[i] = f(f(v[i]! * fb2) + f(f(gi * gi) * c2));
        const denom = f(f(f(Math.sqrt(v[i]!)) / bc2Sqrt) + eps);
        p[i] = f(p[i]! - f(f(m[i]! / denom) * stepSize));
      }
    }
  }
}

/**
 * Scales all gradients together so that their global L2 norm is at most `maxNorm` (torch's
 * clip_grad_norm_: coefficient max_norm / (norm + 1e-6), capped at 1). Returns the norm before
 * clipping (what trainers log as grad_norm).
 */
export function clipGradNorm(grads: ReadonlyMap<string, Float32Array>, maxNorm: number): number {
  let sq = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
  const norm = Math.sqrt(sq);
  if (!(maxNorm > 0) || !Number.isFinite(norm)) return norm;
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  if (coef < 1) for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] = f(g[i]! * coef);
  return norm;
}

export type Schedule = "linear" | "cosine" | "constant";
export const SCHEDULES: ReadonlyArray<Schedule> = ["linear", "cosine", "constant"];

/**
 * The learning rate of optimizer step `step` (0-based) of `total`, as transformers' schedules
 * compute it (with warmup, the first step's rate is 0, as there).
 */
export function learningRate(schedule: Schedule, base: number, step: number, total: number, warmup: number): number {
  if (step < warmup) return (base * step) / Math.max(1, warmup);
  if (schedule === "constant") return base;
  const progress = (step - warmup) / Math.max(1, total - warmup);
  if (schedule === "linear") return base * Math.max(0, (total - step) / Math.max(1, total - warmup));
  return base * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
