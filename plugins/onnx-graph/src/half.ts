/**
 * IEEE half (float16) and bfloat16 <-> float32, bit-exact. Reading converts through 65,536-entry
 * tables (every half value is exactly a float32, so the table is the conversion); writing rounds
 * to nearest, ties to even, like PyTorch's `.to(torch.float16)` / `.to(torch.bfloat16)`.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 (any JS number, first rounded to float32) -> float16 bits, round to nearest even. */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13); // inf; NaN stays quiet NaN
  const e = exp - 127 + 15; // rebiased exponent
  if (e >= 0x1f) return sign | 0x7c00; // too large: infinity
  if (e <= 0) {
    // A float16 subnormal counts units of 2^-24: value = full * 2^(exp - 150) = (full >> shift) units.
    const shift = 14 - e;
    if (shift > 24) return sign; // below half the smallest subnormal: zero
    const full = mant | 0x800000;
    let r = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1) === 1)) r++; // may carry into the smallest normal: right
    return sign | r;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry into the exponent is right (up to inf)
  return sign | h;
}

/** float16 bits -> the exact number. */
export function float16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float32 -> bfloat16 bits, round to nearest even (the top 16 bits of the float32, rounded). */
export function float32ToBfloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff; // NaN stays NaN
  const lsb = (x >>> 16) & 1;
  return Math.floor((x + 0x7fff + lsb) / 65536) & 0xffff; // JS numbers: no 32-bit overflow
}

/** bfloat16 bits -> the exact number. */
export function bfloat16BitsToNumber(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0]!;
}

let f16Table: Float32Array | undefined;

/** Every float16 bit pattern's float32 value. */
function float16Table(): Float32Array {
  if (f16Table === undefined) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = float16BitsToNumber(h);
  }
  return f16Table;
}

export function float16ArrayToFloat32(bits: Uint16Array): Float32Array {
  const table = float16Table();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!;
  return out;
}

export function bfloat16ArrayToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const out32 = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) out32[i] = bits[i]! << 16;
  return out;
}

export function float32ArrayToFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]!);
  return out;
}

export function float32ArrayToBfloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32ToBfloat16Bits(values[i]!);
  return out;
}
