/**
 * The clustering's numbers against scikit-learn (Debian's python3-sklearn): our cosine silhouette
 * equals sklearn.metrics.silhouette_score(X, labels, metric="cosine") to 1e-6 (on every vector:
 * sample >= n), and on well-separated data scikit-learn's KMeans finds our partition.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { SphericalKMeans } from "@bdc/cluster";
import { plantedVectors } from "../../benchmarks/src/kmeans.ts";
import { pythonOrSkip } from "../torch.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-cluster-sklearn-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("cosine silhouette and partition equal scikit-learn's", async (t) => {
  const python = pythonOrSkip(t, "sklearn", "apt-get install python3-sklearn");
  if (python === undefined) return;
  const [n, d, k] = [400, 24, 4];
  const x = plantedVectors(n, d, k, 0.4, 3);
  const km = await SphericalKMeans.open(1);
  try {
    const r = await km.fit(x, n, d, { k, nInit: 2, maxIter: 100, tol: 0, seed: 0 });
    const ours = await km.silhouette(x, n, d, r.labels, k, n, 0);
    fs.writeFileSync(path.join(tmp, "x.f32"), new Uint8Array(x.buffer));
    fs.writeFileSync(path.join(tmp, "labels.i32"), new Uint8Array(r.labels.buffer));
    const script = `
import json, numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score, adjusted_rand_score
x = np.fromfile("${tmp}/x.f32", dtype=np.float32).reshape(${n}, ${d})
labels = np.fromfile("${tmp}/labels.i32", dtype=np.int32)
km = KMeans(n_clusters=${k}, n_init=4, random_state=0).fit(x)
print(json.dumps({"silhouette": float(silhouette_score(x.astype(np.float64), labels, metric="cosine")), "ari": float(adjusted_rand_score(labels, km.labels_))}))`;
    const out = spawnSync(python, ["-c", script], { encoding: "utf8" });
    assert.equal(out.status, 0, out.stderr);
    const theirs = JSON.parse(out.stdout.trim()) as { silhouette: number; ari: number };
    assert.ok(Math.abs(ours - theirs.silhouette) < 1e-6, `silhouette ours ${ours}, scikit-learn ${theirs.silhouette}`);
    assert.equal(theirs.ari, 1, "scikit-learn's KMeans finds the same partition");
  } finally {
    await km.close();
  }
});
