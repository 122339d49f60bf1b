/**
 * The truncated SVDs: the exact (Jacobi) path by its defining properties, the randomized path and
 * the product path against the exact one, both orientations (rows < cols and rows > cols).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { gaussian } from "@bdc/lm-local";
import { matmul, productSvd, qr, transpose, truncatedSvd } from "./linalg.ts";

/** A rows x cols matrix with singular values 10 * 0.7^i (and a little noise). */
function decaying(rows: number, cols: number, seed: number): Float64Array {
  const g = gaussian(seed);
  const k = Math.min(rows, cols);
  const u = qr(Float64Array.from({ length: rows * k }, g), rows, k).q;
  const v = qr(Float64Array.from({ length: cols * k }, g), cols, k).q;
  const us = u.map((x, i) => x * 10 * 0.7 ** (i % k));
  const m = matmul(us, transpose(v, cols, k), rows, k, cols);
  return m.map((x) => x + 1e-9 * g());
}

const reconstruct = (s: { us: Float64Array; vt: Float64Array; rank: number }, rows: number, cols: number) => matmul(s.us, s.vt, rows, s.rank, cols);

test("exact path: M = U S V^T at full rank, orthonormal V, singular values descending", () => {
  for (const [rows, cols] of [[6, 9], [9, 6]] as const) {
    const m = decaying(rows, cols, 3);
    const s = truncatedSvd(m, rows, cols, Math.min(rows, cols));
    const back = reconstruct(s, rows, cols);
    m.forEach((x, i) => assert.ok(Math.abs(x - back[i]!) < 1e-10, `${rows}x${cols}[${i}]`));
    const vvt = matmul(s.vt, transpose(s.vt, s.rank, cols), s.rank, cols, s.rank);
    vvt.forEach((x, i) => assert.ok(Math.abs(x - (i % (s.rank + 1) === 0 ? 1 : 0)) < 1e-10));
    assert.ok(s.singular.every((x, i) => i === 0 || x <= s.singular[i - 1]!));
    assert.ok(Math.abs(s.energyKept - 1) < 1e-12);
  }
});

test("randomized path (large matrices) keeps the exact path's energy and singular values to 1e-6", () => {
  for (const [rows, cols] of [[260, 300], [300, 260]] as const) {
    const m = decaying(rows, cols, 5);
    const exact = truncatedSvd(m, rows, cols, 8, { exactUpTo: 10_000 });
    const fast = truncatedSvd(m, rows, cols, 8, { exactUpTo: 0, seed: 2 });
    for (let i = 0; i < 8; i++) assert.ok(Math.abs(fast.singular[i]! - exact.singular[i]!) <= 1e-6 * exact.singular[0]!, `sigma ${i}: ${fast.singular[i]} vs ${exact.singular[i]}`);
    assert.ok(Math.abs(fast.energyKept - exact.energyKept) < 1e-9);
    const a = reconstruct(fast, rows, cols);
    const b = reconstruct(exact, rows, cols);
    a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) < 1e-6, `entry ${i}`));
  }
});

test("product path: the SVD of B A without forming it equals the dense one", () => {
  const g = gaussian(9);
  const [rows, k, cols] = [40, 6, 33];
  const b = Float64Array.from({ length: rows * k }, g);
  const a = Float64Array.from({ length: k * cols }, g);
  const dense = truncatedSvd(matmul(b, a, rows, k, cols), rows, cols, 4);
  const prod = productSvd(b, a, rows, k, cols, 4);
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(prod.singular[i]! - dense.singular[i]!) < 1e-9 * dense.singular[0]!);
  assert.ok(Math.abs(prod.energyKept - dense.energyKept) < 1e-12);
  const x = reconstruct(prod, rows, cols);
  const y = reconstruct(dense, rows, cols);
  x.forEach((v, i) => assert.ok(Math.abs(v - y[i]!) < 1e-9));
});
