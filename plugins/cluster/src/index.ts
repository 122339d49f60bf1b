export * from "./kmeans.ts";
