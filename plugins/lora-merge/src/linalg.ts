/**
 * The small dense linear algebra the merges need, in float64: products, thin QR (modified
 * Gram-Schmidt, twice), the symmetric eigendecomposition (cyclic Jacobi) and, on top of them, the
 * truncated SVD of a matrix or of a product of two thin factors. Row-major throughout.
 */
import { gaussian } from "@bdc/lm-local";

/** C [m, n] = A [m, k] x B [k, n]. */
export function matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const row = i * n;
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p]!;
      if (x === 0) continue;
      const brow = p * n;
      for (let j = 0; j < n; j++) c[row + j]! += x * b[brow + j]!;
    }
  }
  return c;
}

/** C [k, n] = A^T x B for A [m, k], B [m, n]. */
export function matmulTN(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(k * n);
  for (let i = 0; i < m; i++) {
    const brow = i * n;
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p]!;
      if (x === 0) continue;
      const crow = p * n;
      for (let j = 0; j < n; j++) c[crow + j]! += x * b[brow + j]!;
    }
  }
  return c;
}

export function transpose(a: Float64Array, m: number, n: number): Float64Array {
  const t = new Float64Array(a.length);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j]!;
  return t;
}

/** Thin QR of A [m, k] (m >= k): Q [m, k] with orthonormal columns, R [k, k] upper triangular. Columns of zero norm give zero columns of Q. */
export function qr(a: Float64Array, m: number, k: number): { q: Float64Array; r: Float64Array } {
  const q = new Float64Array(m * k);
  const r = new Float64Array(k * k);
  const col = new Float64Array(m);
  for (let j = 0; j < k; j++) {
    for (let i = 0; i < m; i++) col[i] = a[i * k + j]!;
    // Two passes of Gram-Schmidt ("twice is enough") keep Q orthonormal to rounding.
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < j; p++) {
        let dot = 0;
        for (let i = 0; i < m; i++) dot += q[i * k + p]! * col[i]!;
        r[p * k + j]! += dot;
        for (let i = 0; i < m; i++) col[i]! -= dot * q[i * k + p]!;
      }
    }
    let norm = 0;
    for (let i = 0; i < m; i++) norm += col[i]! * col[i]!;
    norm = Math.sqrt(norm);
    r[j * k + j] = norm;
    if (norm > 0) for (let i = 0; i < m; i++) q[i * k + j] = col[i]! / norm;
  }
  return { q, r };
}

/** Eigenvalues (descending) and eigenvectors (columns of V [n, n]) of a symmetric matrix, by cyclic Jacobi rotations. */
export function symmetricEigen(s: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = s.slice();
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let total = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const x = a[i * n + j]! * a[i * n + j]!;
        total += x;
        if (i !== j) off += x;
      }
    }
    if (off <= 1e-30 * Math.max(total, 1e-300)) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (apq === 0) continue;
        const app = a[p * n + p]!;
        const aqq = a[q * n + q]!;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const sn = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - sn * akq;
          a[k * n + q] = sn * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - sn * aqk;
          a[q * n + k] = sn * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - sn * vkq;
          v[k * n + q] = sn * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => a[y * n + y]! - a[x * n + x]!);
  const values = Float64Array.from(order, (i) => a[i * n + i]!);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src]!;
  });
  return { values, vectors };
}

export interface TruncatedSvd {
  /** U S: [rows, rank] (PEFT's lora_B when the scale is 1). */
  readonly us: Float64Array;
  /** V^T: [rank, cols] (lora_A). */
  readonly vt: Float64Array;
  readonly rank: number;
  /** The leading singular values (as many as were computed). */
  readonly singular: Float64Array;
  /** Sum of the kept sigma^2 over the squared Frobenius norm of the matrix (1 = exact). */
  readonly energyKept: number;
}

/** The truncation of an SVD given by M M^T's eigenpairs: M = U S V^T, V^T = S^-1 U^T M. */
function fromLeft(m: Float64Array, rows: number, cols: number, u: Float64Array, values: Float64Array, n: number, rank: number, frob2: number): TruncatedSvd {
  const r = Math.min(rank, n);
  const us = new Float64Array(rows * r);
  const vt = new Float64Array(r * cols);
  const singular = Float64Array.from(values, (x) => Math.sqrt(Math.max(0, x)));
  let kept = 0;
  for (let j = 0; j < r; j++) {
    const s = singular[j]!;
    kept += s * s;
    for (let i = 0; i < rows; i++) us[i * r + j] = u[i * n + j]! * s;
    if (s === 0) continue;
    // v_j = M^T u_j / s_j
    for (let i = 0; i < rows; i++) {
      const x = u[i * n + j]! / s;
      if (x === 0) continue;
      for (let c = 0; c < cols; c++) vt[j * cols + c]! += x * m[i * cols + c]!;
    }
  }
  return { us, vt, rank: r, singular, energyKept: frob2 === 0 ? 1 : Math.min(1, kept / frob2) };
}

const frobenius2 = (m: Float64Array) => m.reduce((s, x) => s + x * x, 0);

/**
 * Truncated SVD of a dense M [rows, cols]. Exact (the eigenpairs of the smaller Gram matrix by
 * Jacobi) when min(rows, cols) <= exactUpTo; otherwise randomized (Halko et al. 2011: a seeded
 * Gaussian sketch of rank + 10 columns, 4 power iterations with re-orthonormalisation), whose
 * leading singular values match the exact ones to ~1e-6 on the spectra of merged LoRA deltas.
 */
export function truncatedSvd(m: Float64Array, rows: number, cols: number, rank: number, options: { exactUpTo?: number; seed?: number } = {}): TruncatedSvd {
  const frob2 = frobenius2(m);
  if (rows > cols) {
    // Decompose M^T (whose Gram matrix is the smaller one): M^T = U' S V'^T, so M = V' S U'^T.
    const t = truncatedSvd(transpose(m, rows, cols), cols, rows, rank, options);
    const r = t.rank;
    const us = transpose(t.vt, r, rows); // V' [rows, r], then scaled by S column-wise
    const vt = transpose(t.us, cols, r); // (U' S)^T [r, cols], then divided by S row-wise
    for (let i = 0; i < rows; i++) for (let j = 0; j < r; j++) us[i * r + j]! *= t.singular[j]!;
    for (let j = 0; j < r; j++) {
      const s = t.singular[j]!;
      for (let c = 0; c < cols; c++) vt[j * cols + c] = s === 0 ? 0 : vt[j * cols + c]! / s;
    }
    return { us, vt, rank: r, singular: t.singular, energyKept: t.energyKept };
  }
  if (rows <= (options.exactUpTo ?? 384)) {
    const gram = matmul(m, transpose(m, rows, cols), rows, cols, rows);
    const { values, vectors } = symmetricEigen(gram, rows);
    return fromLeft(m, rows, cols, vectors, values, rows, rank, frob2);
  }
  // Randomized range finder on M^T M's range, then the exact SVD of the small projection.
  const k = Math.min(rows, rank + 10);
  const omega = Float64Array.from({ length: cols * k }, gaussian(options.seed ?? 1));
  let y = matmul(m, omega, rows, cols, k);
  const mt = transpose(m, rows, cols);
  for (let it = 0; it < 4; it++) {
    const q = qr(y, rows, k).q;
    const z = qr(matmul(mt, q, cols, rows, k), cols, k).q;
    y = matmul(m, z, rows, cols, k);
  }
  const q = qr(y, rows, k).q;
  const small = matmulTN(q, m, rows, k, cols); // Q^T M [k, cols]
  const gram = matmul(small, transpose(small, k, cols), k, cols, k);
  const { values, vectors } = symmetricEigen(gram, k);
  const u = matmul(q, vectors, rows, k, k);
  return fromLeft(m, rows, cols, u, values, k, rank, frob2);
}

/**
 * Exact truncated SVD of a product B [rows, k] x A [k, cols] without forming it: B = Qb Rb,
 * A^T = Qa Ra, so BA = Qb (Rb Ra^T) Qa^T, and only the k x k core is decomposed. The update of a
 * LoRA (or a weighted sum of LoRAs, their factors concatenated) has this form.
 */
export function productSvd(b: Float64Array, a: Float64Array, rows: number, k: number, cols: number, rank: number): TruncatedSvd {
  const { q: qb, r: rb } = qr(b, rows, k);
  const { q: qa, r: ra } = qr(transpose(a, k, cols), cols, k);
  const core = matmul(rb, transpose(ra, k, k), k, k, k);
  const c = truncatedSvd(core, k, k, rank, { exactUpTo: Math.max(k, 1) });
  // BA = Qb (Uc Sc Vc^T) Qa^T: US = Qb (Uc Sc), V^T = Vc^T Qa^T.
  const us = matmul(qb, c.us, rows, k, c.rank);
  const vt = matmul(c.vt, transpose(qa, cols, k), c.rank, k, cols);
  return { us, vt, rank: c.rank, singular: c.singular, energyKept: c.energyKept };
}
