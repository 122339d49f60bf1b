/** Data order and layout: seeded, complete, and masks that keep packed rows apart. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { attentionBias, epochSteps, layoutStep } from "./batching.ts";
import type { TrainingExample } from "./data.ts";

const example = (len: number, loss: number[], i: number): TrainingExample => ({
  ids: Array.from({ length: len }, (_, t) => 100 * i + t + 1),
  lossMask: Uint8Array.from({ length: len }, (_, t) => (loss.includes(t) ? 1 : 0)),
  source: `f:${i + 1}`,
  input: "",
});

test("epochs are seeded permutations cut into batches; a seed and epoch give the same order", () => {
  const a = epochSteps(10, 4, 42, 0);
  assert.deepEqual(a.map((s) => s.length), [4, 4, 2]);
  assert.deepEqual(a.flat().sort((x, y) => x - y), Array.from({ length: 10 }, (_, i) => i));
  assert.deepEqual(epochSteps(10, 4, 42, 0), a);
  assert.notDeepEqual(epochSteps(10, 4, 42, 1), a, "each epoch is shuffled anew");
  assert.notDeepEqual(epochSteps(10, 4, 7, 0), a);
});

test("padding: rows sorted by length into micro-batches; scored positions predict the next token", () => {
  const ex = [example(3, [2], 0), example(5, [3, 4], 1), example(2, [1], 2)];
  const mbs = layoutStep(ex, [0, 1, 2], { microBatch: 2, packing: false, maxLength: 8 });
  assert.deepEqual(mbs.map((m) => m.examples), [[1, 0], [2]]);
  const [first] = mbs as [typeof mbs[0]];
  assert.equal(first.seq, 5);
  // Example 1 (row 0): tokens 3 and 4 are scored from positions 2 and 3; example 0 (row 1): token 2 from position 1.
  assert.deepEqual(first.lossIndex, [2, 3, 5 + 1]);
  assert.deepEqual(first.labels, [ex[1]!.ids[3], ex[1]!.ids[4], ex[0]!.ids[2]]);
  assert.deepEqual(first.ids[1], [...ex[0]!.ids, 0, 0]);
  assert.equal(first.tokens, 8);
});

test("packing: first-fit into max_length sequences, positions restart, attention never crosses rows", () => {
  const ex = [example(3, [1, 2], 0), example(4, [3], 1), example(2, [1], 2)];
  const [mb, ...rest] = layoutStep(ex, [0, 1, 2], { microBatch: 4, packing: true, maxLength: 7 });
  assert.equal(rest.length, 0);
  assert.deepEqual(mb!.segments, [[[0, 4], [4, 3]], [[0, 2]]]);
  assert.deepEqual(mb!.positions[0], [0, 1, 2, 3, 0, 1, 2]);
  const S = mb!.seq;
  const bias = attentionBias(mb!, -1, undefined);
  const allowed = (b: number, q: number, k: number) => bias[(b * S + q) * S + k] === 0;
  assert.ok(allowed(0, 5, 4) && allowed(0, 5, 5) && !allowed(0, 5, 3) && !allowed(0, 4, 0), "row 2 starts fresh at position 4");
  assert.ok(allowed(0, 3, 0) && !allowed(0, 2, 3), "causal inside a row");
  assert.ok(allowed(1, 5, 5) && !allowed(1, 5, 0), "padding looks at itself only");
  assert.deepEqual(mb!.lossIndex, [2, 4 + 0, 4 + 1, S + 0]);
  const windowed = attentionBias(mb!, -1, 2);
  assert.ok(windowed[(0 * S + 3) * S + 2] === 0 && windowed[(0 * S + 3) * S + 1] === -1, "a sliding window of 2");
});
