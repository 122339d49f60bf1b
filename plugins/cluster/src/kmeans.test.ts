/**
 * Spherical k-means: it recovers planted clusters (well-separated directions plus noise), the same
 * seed gives the same clustering, empty clusters and bad input are handled and reported.
 * (Speed and objective against scikit-learn: benchmarks/src/kmeans.ts; the silhouette against
 * scikit-learn's: tests/cluster/sklearn-parity.test.ts.)
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { BdcError } from "@bdc/core";
import { gaussian, mulberry32 } from "@bdc/lm-local";
import { normalizeRows, SphericalKMeans } from "./kmeans.ts";

let km: SphericalKMeans;
before(async () => {
  km = await SphericalKMeans.open(1);
});
after(() => km.close());

/** n vectors around `k` random directions in d dims; returns them with the true labels. */
function planted(n: number, d: number, k: number, noise: number, seed: number): { x: Float32Array; truth: Int32Array } {
  const g = gaussian(seed);
  const r = mulberry32(seed + 7);
  const centers = Float32Array.from({ length: k * d }, g);
  const x = new Float32Array(n * d);
  const truth = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r() * k);
    truth[i] = c;
    for (let j = 0; j < d; j++) x[i * d + j] = centers[c * d + j]! + noise * g();
  }
  return { x: normalizeRows(x, n, d), truth };
}

/** Agreement of two labelings up to a permutation of the labels (greedy matching on the confusion counts). */
function agreement(a: ArrayLike<number>, b: ArrayLike<number>, k: number): number {
  const counts = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < a.length; i++) counts[a[i]!]![b[i]!]!++;
  let matched = 0;
  const usedA = new Set<number>();
  const usedB = new Set<number>();
  const cells = counts.flatMap((row, i) => row.map((v, j) => ({ i, j, v }))).sort((p, q) => q.v - p.v);
  for (const c of cells) {
    if (usedA.has(c.i) || usedB.has(c.j)) continue;
    usedA.add(c.i);
    usedB.add(c.j);
    matched += c.v;
  }
  return matched / a.length;
}

test("recovers planted clusters: every vector in its direction's cluster; unit centroids; the objective sums the cosines", async () => {
  const { x, truth } = planted(600, 32, 5, 0.6, 1);
  const r = await km.fit(x, 600, 32, { k: 5, nInit: 4, maxIter: 100, tol: 1e-8, seed: 0 });
  assert.equal(agreement(r.labels, truth, 5), 1);
  for (let c = 0; c < 5; c++) assert.ok(Math.abs(Math.hypot(...r.centroids.subarray(c * 32, (c + 1) * 32)) - 1) < 1e-5);
  let sum = 0;
  for (let i = 0; i < 600; i++) {
    let best = -2;
    for (let c = 0; c < 5; c++) {
      let dot = 0;
      for (let j = 0; j < 32; j++) dot += x[i * 32 + j]! * r.centroids[c * 32 + j]!;
      best = Math.max(best, dot);
    }
    assert.ok(Math.abs(best - r.cosines[i]!) < 1e-5, "assignment by highest cosine");
    sum += best;
  }
  assert.ok(Math.abs(sum - r.objective) < 1e-3);
  assert.equal(r.sizes.reduce((a, b) => a + b, 0), 600);
});

test("the same seed gives the same clustering; another seed may start elsewhere but finds the same planted partition", async () => {
  const { x, truth } = planted(300, 16, 3, 0.5, 2);
  const a = await km.fit(x, 300, 16, { k: 3, nInit: 2, maxIter: 100, tol: 0, seed: 5 });
  const b = await km.fit(x, 300, 16, { k: 3, nInit: 2, maxIter: 100, tol: 0, seed: 5 });
  assert.deepEqual(a.labels, b.labels);
  assert.deepEqual(a.centroids, b.centroids);
  const c = await km.fit(x, 300, 16, { k: 3, nInit: 2, maxIter: 100, tol: 0, seed: 6 });
  assert.equal(agreement(c.labels, truth, 3), 1);
});

test("more clusters than directions: no cluster stays empty; k larger than the rows and bad vectors are clear errors", async () => {
  // 6 distinct points, two of them duplicated many times: k = 6 needs every point as a centre.
  const g = gaussian(3);
  const base = normalizeRows(Float32Array.from({ length: 6 * 8 }, g), 6, 8);
  const pointOf = (i: number) => (i < 34 ? i % 2 : i - 32);
  const x = new Float32Array(38 * 8);
  for (let i = 0; i < 38; i++) x.set(base.subarray(pointOf(i) * 8, (pointOf(i) + 1) * 8), i * 8);
  for (const seed of [1, 2, 3]) {
    const r = await km.fit(x, 38, 8, { k: 6, nInit: 1, maxIter: 50, tol: 0, seed });
    assert.ok(r.sizes.every((s) => s > 0), `seed ${seed}: sizes ${r.sizes}`);
  }
  // Fewer distinct directions than k: a clear error, not silently empty clusters.
  await assert.rejects(km.fit(x.subarray(0, 10 * 8), 10, 8, { k: 3, nInit: 1, maxIter: 50, tol: 0, seed: 1 }), (e: unknown) => e instanceof BdcError && /fewer than 3 distinct directions/.test(e.message));
  await assert.rejects(km.fit(x, 38, 8, { k: 39, nInit: 1, maxIter: 5, tol: 0, seed: 1 }), (e: unknown) => e instanceof BdcError && /k = 39 clusters for 38 vectors/.test(e.message));
  assert.throws(() => normalizeRows(Float32Array.from([1, 0, Number.NaN, 1]), 2, 2, ["a", "b"]), (e: unknown) => e instanceof BdcError && /vector b has a non-finite value \(NaN\) at dimension 0/.test(e.message));
  assert.throws(() => normalizeRows(Float32Array.from([0, 0]), 1, 2, ["z"]), /vector z is all zeros/);
});
