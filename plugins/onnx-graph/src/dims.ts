/**
 * Tensor dimensions known at build time: a number, or a symbolic product such as `B`, `S`,
 * `2*B*S` or `(P+S)` (a sum is kept as one opaque factor). Reshape's `-1`, MatMul's inner
 * dimension and broadcasting are checked on these, so a wrong graph fails where it is built,
 * not later inside ONNX Runtime with a message about node 1873.
 */
export type Dim = number | string;
export type Shape = ReadonlyArray<Dim>;

interface Monomial {
  readonly coef: number;
  /** Sorted factor names, repeated for powers. */
  readonly factors: ReadonlyArray<string>;
}

function parse(d: Dim): Monomial {
  if (typeof d === "number") return { coef: d, factors: [] };
  let coef = 1;
  const factors: string[] = [];
  for (const part of splitTopLevel(d, "*")) {
    if (/^\d+$/.test(part)) coef *= Number(part);
    else factors.push(part);
  }
  return { coef, factors: factors.sort() };
}

function splitTopLevel(s: string, sep: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === sep && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

function format(m: Monomial): Dim {
  if (m.factors.length === 0) return m.coef;
  return [...(m.coef === 1 ? [] : [String(m.coef)]), ...m.factors].join("*");
}

/** A canonical spelling, so that `S*B` and `B*S` compare equal. */
export function canonical(d: Dim): Dim {
  return format(parse(d));
}

export function dimEquals(a: Dim, b: Dim): boolean {
  return canonical(a) === canonical(b);
}

export function dimMul(a: Dim, b: Dim): Dim {
  const x = parse(a);
  const y = parse(b);
  return format({ coef: x.coef * y.coef, factors: [...x.factors, ...y.factors].sort() });
}

export function dimProduct(dims: ReadonlyArray<Dim>): Dim {
  return dims.reduce<Dim>((p, d) => dimMul(p, d), 1);
}

/** a / b when it divides exactly, else undefined. */
export function dimDiv(a: Dim, b: Dim): Dim | undefined {
  const x = parse(a);
  const y = parse(b);
  if (y.coef === 0 || x.coef % y.coef !== 0) return undefined;
  const rest = [...x.factors];
  for (const f of y.factors) {
    const i = rest.indexOf(f);
    if (i < 0) return undefined;
    rest.splice(i, 1);
  }
  return format({ coef: x.coef / y.coef, factors: rest });
}

export function dimAdd(a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return a + b;
  // Like terms combine (S + S = 2*S), so that a concat of copies matches a multiple.
  const sums = new Map<string, Monomial>();
  for (const term of [...splitSum(a), ...splitSum(b)]) {
    const m = parse(term);
    const key = m.factors.join("*");
    const prev = sums.get(key);
    sums.set(key, { coef: (prev?.coef ?? 0) + m.coef, factors: m.factors });
  }
  const terms = [...sums.values()].filter((m) => m.coef !== 0).map(format);
  if (terms.length === 0) return 0;
  if (terms.length === 1) return terms[0]!;
  const constant = terms.filter((t) => typeof t === "number");
  const symbolic = terms.filter((t) => typeof t !== "number").map(String).sort();
  return `(${[...symbolic, ...constant.map(String)].join("+")})`;
}

function splitSum(d: Dim): string[] {
  const s = String(canonical(d));
  const inner = s.startsWith("(") && s.endsWith(")") && splitTopLevel(s, "*").length === 1 ? s.slice(1, -1) : s;
  return splitTopLevel(inner, "+");
}

export function shapeToString(shape: Shape): string {
  return `[${shape.map(String).join(", ")}]`;
}

export function isStatic(shape: Shape): shape is ReadonlyArray<number> {
  return shape.every((d) => typeof d === "number");
}
