import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { BdcError } from "@bdc/core";
import { writeSafetensors } from "@bdc/lm-local";
import { checkCompatible, readCentroids } from "./centroids.ts";
import { SphericalKMeans } from "./kmeans.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-centroids-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const write = (name: string, data: Float32Array, shape: number[], metadata: Record<string, string> = { model: "enc-a" }, tensor = "centroids") => {
  const file = path.join(tmp, name);
  writeSafetensors(file, [{ name: tensor, dtype: "F32", shape, data }], metadata);
  return file;
};

test("stored centroids read back; rows go to the centroid of highest cosine", async () => {
  const file = write("c.safetensors", Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]), [3, 3]);
  const stored = readCentroids(file);
  assert.deepEqual([stored.k, stored.dim, stored.model], [3, 3, "enc-a"]);
  const x = Float32Array.from([0.6, 0.8, 0, 0, 0.6, 0.8, 0.8, 0, 0.6, 0, 0, 1]);
  const km = await SphericalKMeans.open(1);
  try {
    const r = await km.assign(x, 4, 3, stored.centroids, 3);
    assert.deepEqual(Array.from(r.labels), [1, 2, 0, 2]);
    assert.deepEqual(Array.from(r.cosines, (v) => Math.round(v * 1e6) / 1e6), [0.8, 0.8, 0.8, 1]);
    assert.deepEqual(r.sizes, [1, 1, 2]);
  } finally {
    await km.close();
  }
});

test("another dimension or another encoder model is refused, saying what to do; a foreign file too", () => {
  const stored = readCentroids(write("d.safetensors", new Float32Array(2 * 4).fill(0.5), [2, 4]));
  checkCompatible(stored, 4, "enc-a");
  checkCompatible(stored, 4, undefined);
  assert.throws(() => checkCompatible(stored, 8, "enc-b"), (e: BdcError) => e.code === "BDC_CLUSTER_DIMENSION" && /the vectors are 8-d \(encoder model enc-b\), but the centroids in .*d\.safetensors are 4-d \(encoder model enc-a\)/.test(e.message) && /\(enc-a\)/.test(e.hint ?? ""));
  assert.throws(() => checkCompatible(stored, 4, "enc-b"), (e: BdcError) => e.code === "BDC_CLUSTER_DIMENSION" && /come from encoder model enc-b, but .* computed on enc-a's vectors/.test(e.message));
  assert.throws(() => readCentroids(write("w.safetensors", new Float32Array(4), [2, 2], {}, "weights")), (e: BdcError) => e.code === "BDC_CLUSTER_INPUT" && /no "centroids" tensor \(it has weights\)/.test(e.message));
  assert.throws(() => readCentroids(write("nan.safetensors", Float32Array.from([1, Number.NaN]), [1, 2])), /non-finite/);
});
