/**
 * Spherical k-means (Dhillon & Modha 2001) on unit vectors: assign each vector to the centroid of
 * highest cosine, re-estimate each centroid as its members' normalised mean direction, repeat
 * until no assignment changes or the centroids move less than `tol`. Seeding is greedy k-means++
 * (scikit-learn's: 2 + ln k candidates per centre, D^2 = 2 - 2 cos on the unit sphere), `nInit`
 * restarts keep the highest objective sum of cosines, and an empty cluster is reseeded with the
 * vector farthest from its centroid (reported).
 *
 * The heavy product runs in ONNX Runtime: per iteration one pass over X gives X C^T's argmax and
 * max per row. The centroids' sums are then updated from the rows that changed cluster only (few
 * after the first iterations), instead of a second pass over all of X; they are float64, so
 * adding and removing rows drifts by rounding only.
 */
import { GraphBuilder, openSession, ort, serializeInline } from "@bdc/onnx-graph";
import { BdcError } from "@bdc/core";
import { mixSeed, mulberry32 } from "@bdc/lm-local";

export interface KMeansOptions {
  readonly k: number;
  readonly nInit: number;
  readonly maxIter: number;
  /** Stop when the summed squared centroid shift falls below this. */
  readonly tol: number;
  readonly seed: number;
  readonly threads?: number | undefined;
}

export interface KMeansResult {
  readonly k: number;
  readonly labels: Int32Array;
  /** [k, d], unit rows. */
  readonly centroids: Float32Array;
  /** Each vector's cosine to its centroid. */
  readonly cosines: Float32Array;
  /** Sum of the cosines (what spherical k-means maximises). */
  readonly objective: number;
  readonly iterations: number;
  readonly sizes: number[];
  /** Empty clusters reseeded during the winning run. */
  readonly reseeded: number;
}

/** The graphs: `scores` = X C^T, and one Lloyd iteration. Dims are runtime: one pair serves any N, d, k. */
function graphs(): { scores: Uint8Array; step: Uint8Array; sums: Uint8Array } {
  const s = new GraphBuilder("kmeans-scores");
  {
    const x = s.input("x", "float32", ["N", "D"]);
    const c = s.input("c", "float32", ["K", "D"]);
    s.output(s.matMul(x, s.transpose(c, [1, 0])), "scores");
  }
  const g = new GraphBuilder("kmeans-step");
  {
    const x = g.input("x", "float32", ["N", "D"]);
    const c = g.input("c", "float32", ["K", "D"]);
    const scores = g.matMul(x, g.transpose(c, [1, 0]));
    // int32 out: converting int64 (BigInt) labels costs more in JavaScript than the matmul.
    g.output(g.cast(g.argMax(scores, 1), "int32"), "labels");
    g.output(g.reduceMax(scores, [1], false), "best");
  }
  // The first assignment's per-cluster sums in one product (onehot^T X): every row moves at once.
  const u = new GraphBuilder("kmeans-sums");
  {
    const x = u.input("x", "float32", ["N", "D"]);
    const labels = u.input("labels", "int32", ["N"]);
    const kk = u.input("k", "int64", []);
    const onehot = u.cast(u.equal(u.unsqueeze(labels, [1]), u.unsqueeze(u.cast(u.range(kk, "K"), "int32"), [0])), "float32");
    u.output(u.matMul(u.transpose(onehot, [1, 0]), x), "sums");
  }
  return { scores: serializeInline(s.build()), step: serializeInline(g.build()), sums: serializeInline(u.build()) };
}

let cached: { scores: Uint8Array; step: Uint8Array; sums: Uint8Array } | undefined;

/** Rows of `x` scaled to unit length; a zero or non-finite row is an error naming it. */
export function normalizeRows(x: Float32Array, n: number, d: number, names?: ReadonlyArray<string>): Float32Array {
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) {
      const v = x[i * d + j]!;
      if (!Number.isFinite(v)) throw new BdcError({ code: "BDC_CLUSTER_INPUT", message: `vector ${names?.[i] ?? i} has a non-finite value (${v}) at dimension ${j}`, hint: "re-embed that row; the encoder produced NaN/inf" });
      s += v * v;
    }
    if (s === 0) throw new BdcError({ code: "BDC_CLUSTER_INPUT", message: `vector ${names?.[i] ?? i} is all zeros: it has no direction to cluster by`, hint: "check the text that was embedded (empty?)" });
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < d; j++) out[i * d + j] = x[i * d + j]! * inv;
  }
  return out;
}

function normalizeInPlace(c: Float32Array, k: number, d: number): void {
  for (let r = 0; r < k; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += c[r * d + j]! * c[r * d + j]!;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < d; j++) c[r * d + j]! *= inv;
  }
}

export class SphericalKMeans {
  private constructor(
    private readonly scores: ort.InferenceSession,
    private readonly step: ort.InferenceSession,
    private readonly sums: ort.InferenceSession,
  ) {}

  static async open(threads?: number): Promise<SphericalKMeans> {
    cached ??= graphs();
    // Two sessions take turns: without spinning, neither pool's idle threads steal the other's cores.
    const options = { device: "cpu" as const, threads, spin: false };
    return new SphericalKMeans(await openSession(cached.scores, options), await openSession(cached.step, options), await openSession(cached.sums, options));
  }

  async close(): Promise<void> {
    await this.scores.release();
    await this.step.release();
    await this.sums.release();
  }

  /** x: n unit vectors of dimension d, row-major. */
  async fit(x: Float32Array, n: number, d: number, o: KMeansOptions): Promise<KMeansResult> {
    if (!Number.isInteger(o.k) || o.k < 1) throw new BdcError({ code: "BDC_CLUSTER_INPUT", message: `k = ${o.k} is not a positive integer` });
    if (o.k > n) throw new BdcError({ code: "BDC_CLUSTER_INPUT", message: `k = ${o.k} clusters for ${n} vectors: k must not exceed the number of rows`, hint: `lower k (at most ${n}), or embed more rows` });
    const xt = new ort.Tensor("float32", x, [n, d]);
    let best: KMeansResult | undefined;
    for (let run = 0; run < o.nInit; run++) {
      const result = await this.lloyd(xt, x, n, d, o, mulberry32(mixSeed(o.seed, run)));
      if (best === undefined || result.objective > best.objective) best = result;
    }
    return best!;
  }

  /** Each of n unit vectors to the centroid of highest cosine (centroids: [k, d] unit rows, e.g. stored by an earlier run). */
  async assign(x: Float32Array, n: number, d: number, centroids: Float32Array, k: number): Promise<KMeansResult> {
    const out = await this.step.run({ x: new ort.Tensor("float32", x, [n, d]), c: new ort.Tensor("float32", centroids, [k, d]) });
    const labels = Int32Array.from(out["labels"]!.data as Int32Array);
    const cosines = Float32Array.from(out["best"]!.data as Float32Array);
    const sizes = Array.from({ length: k }, () => 0);
    for (const l of labels) sizes[l]!++;
    return { k, labels, centroids, cosines, objective: cosines.reduce((a, v) => a + v, 0), iterations: 0, sizes, reseeded: 0 };
  }

  /** Greedy k-means++ on the unit sphere (D^2 = 2 - 2 cos). */
  private async seed(xt: ort.Tensor, x: Float32Array, n: number, d: number, k: number, rand: () => number): Promise<Float32Array> {
    const centroids = new Float32Array(k * d);
    const pick = (i: number, at: number) => centroids.set(x.subarray(i * d, (i + 1) * d), at * d);
    pick(Math.floor(rand() * n), 0);
    const closest = new Float64Array(n); // D^2 to the nearest chosen centre
    const first = (await this.scores.run({ x: xt, c: new ort.Tensor("float32", centroids.slice(0, d), [1, d]) }))["scores"]!.data as Float32Array;
    let pot = 0;
    for (let i = 0; i < n; i++) pot += closest[i] = Math.max(0, 2 - 2 * first[i]!);
    const trials = 2 + Math.floor(Math.log(k));
    for (let c = 1; c < k; c++) {
      const candidates: number[] = [];
      for (let t = 0; t < trials; t++) {
        // Sample proportionally to D^2 (uniformly when every vector sits on a centre).
        let r = rand() * pot;
        let i = 0;
        if (pot > 0) {
          while (i < n - 1 && r >= closest[i]!) r -= closest[i++]!;
        } else i = Math.floor(rand() * n);
        candidates.push(i);
      }
      const cand = new Float32Array(trials * d);
      candidates.forEach((i, t) => cand.set(x.subarray(i * d, (i + 1) * d), t * d));
      const s = (await this.scores.run({ x: xt, c: new ort.Tensor("float32", cand, [trials, d]) }))["scores"]!.data as Float32Array;
      let bestT = 0;
      let bestPot = Infinity;
      for (let t = 0; t < trials; t++) {
        let p = 0;
        for (let i = 0; i < n; i++) p += Math.min(closest[i]!, Math.max(0, 2 - 2 * s[i * trials + t]!));
        if (p < bestPot) {
          bestPot = p;
          bestT = t;
        }
      }
      for (let i = 0; i < n; i++) closest[i] = Math.min(closest[i]!, Math.max(0, 2 - 2 * s[i * trials + bestT]!));
      pot = bestPot;
      pick(candidates[bestT]!, c);
    }
    return centroids;
  }

  private async lloyd(xt: ort.Tensor, x: Float32Array, n: number, d: number, o: KMeansOptions, rand: () => number): Promise<KMeansResult> {
    const k = o.k;
    let centroids = await this.seed(xt, x, n, d, k, rand);
    let labels = new Int32Array(n).fill(-1);
    const sums = new Float64Array(k * d);
    const counts = new Int32Array(k);
    let reseeded = 0;
    let iterations = 0;
    let settled = false;
    let lastBest: Float32Array = new Float32Array(n);
    const move = (i: number, from: number, to: number) => {
      const row = i * d;
      if (from >= 0) {
        counts[from]!--;
        for (let j = 0; j < d; j++) sums[from * d + j]! -= x[row + j]!;
      }
      counts[to]!++;
      for (let j = 0; j < d; j++) sums[to * d + j]! += x[row + j]!;
    };
    for (let it = 0; it < o.maxIter; it++) {
      iterations = it + 1;
      const out = await this.step.run({ x: xt, c: new ort.Tensor("float32", centroids, [k, d]) });
      const next = out["labels"]!.data as Int32Array;
      const best = out["best"]!.data as Float32Array;
      lastBest = best;
      let changed = 0;
      if (it === 0) {
        // Every row joins its first cluster: one product in ONNX Runtime.
        const first = (await this.sums.run({ x: xt, labels: new ort.Tensor("int32", next, [n]), k: new ort.Tensor("int64", BigInt64Array.of(BigInt(k)), []) }))["sums"]!.data as Float32Array;
        sums.set(first);
        for (let i = 0; i < n; i++) counts[next[i]!]!++;
        labels.set(next);
        changed = n;
      } else {
        for (let i = 0; i < n; i++) {
          if (next[i] !== labels[i]) {
            move(i, labels[i]!, next[i]!);
            labels[i] = next[i]!;
            changed++;
          }
        }
      }
      // An empty cluster takes the vector farthest from every centroid (scikit-learn's
      // relocation); one sitting on a centroid would only tie with it and leave again.
      for (let c = 0; c < k; c++) {
        if (counts[c]! > 0) continue;
        let far = -1;
        for (let i = 0; i < n; i++) if (counts[labels[i]!]! > 1 && best[i]! < 1 - 1e-6 && (far < 0 || best[i]! < best[far]!)) far = i;
        if (far < 0) {
          throw new BdcError({ code: "BDC_CLUSTER_INPUT", message: `k = ${k}, but the ${n} vectors have fewer than ${k} distinct directions (every vector sits on a centroid)`, hint: "lower k, or check for duplicated rows" });
        }
        move(far, labels[far]!, c);
        labels[far] = c;
        best[far] = 1;
        reseeded++;
      }
      const updated = Float32Array.from(sums);
      normalizeInPlace(updated, k, d);
      let shift = 0;
      for (let i = 0; i < k * d; i++) shift += (updated[i]! - centroids[i]!) ** 2;
      // No row moved: the centroids are those of this assignment, which is final.
      if (changed === 0 && reseeded === 0) {
        settled = true;
        break;
      }
      centroids = updated;
      if (shift <= o.tol) break;
    }
    let cosines = lastBest;
    if (!settled) {
      // The final assignment against the final centroids.
      const out = await this.step.run({ x: xt, c: new ort.Tensor("float32", centroids, [k, d]) });
      labels = Int32Array.from(out["labels"]!.data as Int32Array);
      cosines = Float32Array.from(out["best"]!.data as Float32Array);
    }
    const sizes = Array.from({ length: k }, () => 0);
    for (const l of labels) sizes[l]!++;
    return { k, labels, centroids, cosines, objective: cosines.reduce((s, v) => s + v, 0), iterations, sizes, reseeded };
  }

  /** Cosine silhouette (scikit-learn's silhouette_score with metric="cosine") on at most `sample` vectors (seeded). */
  async silhouette(x: Float32Array, n: number, d: number, labels: Int32Array, k: number, sample: number, seed: number): Promise<number> {
    if (k < 2) return 0;
    const rand = mulberry32(mixSeed(seed, 0x51));
    const idx = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [idx[i], idx[j]] = [idx[j]!, idx[i]!];
    }
    const chosen = idx.slice(0, Math.min(sample, n)).sort((a, b) => a - b);
    const m = chosen.length;
    const xs = new Float32Array(m * d);
    chosen.forEach((i, r) => xs.set(x.subarray(i * d, (i + 1) * d), r * d));
    const t = new ort.Tensor("float32", xs, [m, d]);
    const sim = (await this.scores.run({ x: t, c: t }))["scores"]!.data as Float32Array;
    const lab = chosen.map((i) => labels[i]!);
    const sizes = Array.from({ length: k }, () => 0);
    for (const l of lab) sizes[l]!++;
    let total = 0;
    const dist = new Float64Array(k);
    for (let a = 0; a < m; a++) {
      dist.fill(0);
      for (let b = 0; b < m; b++) if (b !== a) dist[lab[b]!]! += 1 - sim[a * m + b]!;
      const own = lab[a]!;
      if (sizes[own]! <= 1) continue; // scikit-learn: a singleton's silhouette is 0
      const inside = dist[own]! / (sizes[own]! - 1);
      let nearest = Infinity;
      for (let c = 0; c < k; c++) if (c !== own && sizes[c]! > 0) nearest = Math.min(nearest, dist[c]! / sizes[c]!);
      total += Number.isFinite(nearest) ? (nearest - inside) / Math.max(inside, nearest) : 0;
    }
    return total / m;
  }
}
