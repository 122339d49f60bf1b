/**
 * @bdc/cluster: spherical k-means of embeddings on ONNX Runtime, cosine silhouette, cluster maps,
 * and the split of training rows per cluster (step/cluster).
 */
export * from "./kmeans.ts";
export { project, renderClusterMap, type MapInput, type Projection } from "./cluster-map.ts";
export { CLUSTER_FILES, type ClusterStepOutput } from "./cluster-step.ts";
export type { Clusterer, Clustering, KTried } from "./plugins/spherical-kmeans.ts";
export { checkCompatible, readCentroids, type StoredCentroids } from "./centroids.ts";
