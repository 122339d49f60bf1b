import assert from "node:assert/strict";
import { test } from "node:test";
import { bfloat16BitsToNumber, float16BitsToNumber, float32ToBfloat16Bits, float32ToFloat16Bits } from "./half.ts";

test("float16: known bit patterns", () => {
  assert.equal(float32ToFloat16Bits(1), 0x3c00);
  assert.equal(float32ToFloat16Bits(-2), 0xc000);
  assert.equal(float32ToFloat16Bits(0.5), 0x3800);
  assert.equal(float32ToFloat16Bits(0), 0x0000);
  assert.equal(float32ToFloat16Bits(-0), 0x8000);
  assert.equal(float32ToFloat16Bits(65504), 0x7bff); // the largest half
  assert.equal(float32ToFloat16Bits(2 ** -14), 0x0400); // the smallest normal
  assert.equal(float32ToFloat16Bits(2 ** -24), 0x0001); // the smallest subnormal
  assert.equal(float32ToFloat16Bits(1023 * 2 ** -24), 0x03ff); // the largest subnormal
  assert.equal(float32ToFloat16Bits(Infinity), 0x7c00);
  assert.equal(float32ToFloat16Bits(-Infinity), 0xfc00);
  const nan = float32ToFloat16Bits(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x03ff, 0);
});

test("float16: round to nearest, ties to even, overflow and underflow", () => {
  assert.equal(float32ToFloat16Bits(1 + 2 ** -11), 0x3c00); // tie: down to the even mantissa
  assert.equal(float32ToFloat16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie: up to the even mantissa
  assert.equal(float32ToFloat16Bits(1 + 2 ** -11 + 2 ** -20), 0x3c01); // above the tie: up
  assert.equal(float32ToFloat16Bits(65520), 0x7c00); // tie between 65504 and 2^16: even is 2^16 = inf
  assert.equal(float32ToFloat16Bits(65519), 0x7bff);
  assert.equal(float32ToFloat16Bits(1e6), 0x7c00);
  assert.equal(float32ToFloat16Bits(2 ** -25), 0x0000); // half the smallest subnormal: tie to 0
  assert.equal(float32ToFloat16Bits(3 * 2 ** -26), 0x0001); // 0.75 of a unit: up
  assert.equal(float32ToFloat16Bits(3 * 2 ** -25), 0x0002); // 1.5 units: tie to even 2
  assert.equal(float32ToFloat16Bits(-(2 ** -30)), 0x8000);
  assert.equal(float32ToFloat16Bits(2 ** -14 - 2 ** -25), 0x0400); // rounds up into the smallest normal
});

test("float16: every bit pattern converts to a number and back unchanged", () => {
  for (let h = 0; h < 0x10000; h++) {
    const v = float16BitsToNumber(h);
    if (Number.isNaN(v)) continue;
    assert.equal(float32ToFloat16Bits(v), h, `0x${h.toString(16)}`);
  }
  assert.equal(float16BitsToNumber(0x3c00), 1);
  assert.equal(float16BitsToNumber(0x0001), 2 ** -24);
  assert.ok(Number.isNaN(float16BitsToNumber(0x7e00)));
  assert.equal(float16BitsToNumber(0xfc00), -Infinity);
});

test("bfloat16: known bit patterns and rounding", () => {
  assert.equal(float32ToBfloat16Bits(1), 0x3f80);
  assert.equal(float32ToBfloat16Bits(-2), 0xc000);
  assert.equal(float32ToBfloat16Bits(3.140625), 0x4049);
  assert.equal(float32ToBfloat16Bits(0), 0);
  assert.equal(float32ToBfloat16Bits(-0), 0x8000);
  assert.equal(float32ToBfloat16Bits(Infinity), 0x7f80);
  assert.equal(float32ToBfloat16Bits(-Infinity), 0xff80);
  assert.equal(float32ToBfloat16Bits(1 + 2 ** -8), 0x3f80); // tie: even
  assert.equal(float32ToBfloat16Bits(1 + 3 * 2 ** -8), 0x3f82); // tie: even (up)
  assert.equal(float32ToBfloat16Bits(1 + 2 ** -8 + 2 ** -20), 0x3f81);
  assert.equal(float32ToBfloat16Bits(3.4028234663852886e38), 0x7f80); // float32 max rounds to inf
  assert.equal(float32ToBfloat16Bits(2 ** -133), 0x0001); // a float32 subnormal, kept
  const nan = float32ToBfloat16Bits(NaN);
  assert.equal(nan & 0x7f80, 0x7f80);
  assert.notEqual(nan & 0x7f, 0);
  assert.equal(bfloat16BitsToNumber(0x3f80), 1);
  assert.equal(bfloat16BitsToNumber(0x0001), 2 ** -133);
  assert.ok(Number.isNaN(bfloat16BitsToNumber(0x7fc0)));
});
