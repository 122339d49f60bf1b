/**
 * Stored centroids (`centroids.safetensors` of step/cluster: one F32 tensor "centroids" [K, d],
 * metadata model, dimension, k), read back to assign new rows to the same clusters - and refused,
 * with what to do, when the vectors come from an encoder of another dimension or model.
 */
import { BdcError } from "@bdc/core";
import { openSafetensorsFile } from "@bdc/lm-local";

export interface StoredCentroids {
  readonly file: string;
  readonly k: number;
  readonly dim: number;
  /** [k, dim], unit rows. */
  readonly centroids: Float32Array;
  /** The encoder model the clustered vectors came from (metadata), when recorded. */
  readonly model: string | undefined;
}

export function readCentroids(file: string): StoredCentroids {
  const weights = openSafetensorsFile(file);
  try {
    if (!weights.has("centroids")) {
      throw new BdcError({ code: "BDC_CLUSTER_INPUT", message: `${file}: no "centroids" tensor (it has ${weights.names().join(", ") || "none"})`, hint: "give the centroids.safetensors a step/cluster step wrote" });
    }
    const shape = weights.info("centroids").shape;
    if (shape.length !== 2 || shape[0]! < 1 || shape[1]! < 1) throw new BdcError({ code: "BDC_CLUSTER_INPUT", message: `${file}: "centroids" has shape [${shape.join(", ")}], not [K, d]` });
    const centroids = weights.readFloat32("centroids");
    if (!centroids.every(Number.isFinite)) throw new BdcError({ code: "BDC_CLUSTER_INPUT", message: `${file}: the centroids hold non-finite values`, hint: "the file is damaged; run the clustering again" });
    return { file, k: shape[0]!, dim: shape[1]!, centroids, model: weights.metadata().model };
  } finally {
    weights.close();
  }
}

/** Vectors of dimension `dim` from encoder `model` can be assigned to `stored`; else a clear error. */
export function checkCompatible(stored: StoredCentroids, dim: number, model: string | undefined): void {
  const same = stored.model === undefined || model === undefined || stored.model === model;
  if (stored.dim === dim && same) return;
  throw new BdcError({
    code: "BDC_CLUSTER_DIMENSION",
    message:
      stored.dim !== dim
        ? `the vectors are ${dim}-d${model === undefined ? "" : ` (encoder model ${model})`}, but the centroids in ${stored.file} are ${stored.dim}-d${stored.model === undefined ? "" : ` (encoder model ${stored.model})`}`
        : `the vectors come from encoder model ${model}, but the centroids in ${stored.file} were computed on ${stored.model}'s vectors: cosines across two embedding spaces mean nothing`,
    hint: `embed with the encoder the centroids were made with${stored.model === undefined ? "" : ` (${stored.model})`}, or cluster again`,
  });
}
