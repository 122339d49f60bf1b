/**
 * AdamW, clipping and the schedules by their definitions (the whole training loop is compared
 * with torch.optim.AdamW in tests/lora-training/torch-parity.test.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { AdamW, clipGradNorm, learningRate } from "./optimizer.ts";

test("AdamW: the first step moves each weight by lr against its gradient's sign; weight decay is decoupled", () => {
  const p = Float32Array.from([1, -2, 0.5]);
  const opt = new AdamW(new Map([["p", p]]), { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1 });
  opt.update(new Map([["p", Float32Array.from([0.3, -4, 0])]]), 0.01);
  // m_hat = g, v_hat = g^2: the update is lr * g / (|g| + eps), after decaying p by (1 - lr * wd).
  const expect = [1 * (1 - 0.001) - 0.01, -2 * (1 - 0.001) + 0.01, 0.5 * (1 - 0.001)];
  p.forEach((x, i) => assert.ok(Math.abs(x - expect[i]!) < 1e-6, `p[${i}] = ${x}, expected ${expect[i]}`));
  assert.equal(opt.step, 1);
  // A second step with the same gradient: m and v are bias-corrected averages of equal values.
  const before = p.slice();
  opt.update(new Map([["p", Float32Array.from([0.3, -4, 0])]]), 0.01);
  assert.ok(Math.abs(before[0]! * (1 - 0.001) - 0.01 - p[0]!) < 1e-6);
});

test("clipGradNorm: the global norm is returned; gradients above it are scaled together as torch does", () => {
  const a = Float32Array.from([3, 0]);
  const b = Float32Array.from([0, 4]);
  const norm = clipGradNorm(new Map([["a", a], ["b", b]]), 1);
  assert.equal(norm, 5);
  const coef = 1 / (5 + 1e-6);
  assert.ok(Math.abs(a[0]! - 3 * coef) < 1e-7 && Math.abs(b[1]! - 4 * coef) < 1e-7);
  const small = Float32Array.from([0.1]);
  clipGradNorm(new Map([["s", small]]), 1);
  assert.equal(small[0], Math.fround(0.1), "below the threshold nothing changes");
  assert.equal(clipGradNorm(new Map([["s", Float32Array.from([10])]]), 0), 10, "0 turns clipping off");
});

test("schedules: transformers' linear, cosine and constant with warmup", () => {
  // get_linear_schedule_with_warmup(warmup=2, total=10): 0, 0.5, 1, 7/8, ..., 1/8
  assert.deepEqual(Array.from({ length: 10 }, (_, s) => learningRate("linear", 1, s, 10, 2)), [0, 0.5, 1, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8]);
  assert.equal(learningRate("linear", 2e-3, 0, 5, 0), 2e-3, "no warmup: the first step has the full rate");
  const cos = Array.from({ length: 6 }, (_, s) => learningRate("cosine", 1, s, 6, 1));
  assert.equal(cos[0], 0);
  assert.equal(cos[1], 1);
  assert.ok(Math.abs(cos[5]! - 0.5 * (1 + Math.cos((Math.PI * 4) / 5))) < 1e-12);
  assert.deepEqual([0, 1, 2, 3].map((s) => learningRate("constant", 1, s, 4, 2)), [0, 0.5, 1, 1]);
});
