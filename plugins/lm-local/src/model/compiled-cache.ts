/**
 * Built ONNX models are cached: building reads and rearranges every weight (minutes for an 8B
 * model), so the result is kept under a key of everything it depends on - the checkpoint's
 * config and weight files (size and mtime), the graph options and the builder's version.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { writeModel, type Graph } from "@bdc/onnx-graph";

/** Bumped whenever the graph a checkpoint turns into changes. */
export const GRAPH_VERSION = 8;

/** A key of a folder's files as they are now (names, sizes, mtimes): changes when any is rewritten. */
export function filesKey(dir: string, include: (file: string) => boolean = () => true): string {
  const files = fs
    .readdirSync(dir)
    .filter(include)
    .sort()
    .map((f) => {
      const st = fs.statSync(path.join(dir, f));
      return [f, st.size, Math.round(st.mtimeMs)];
    });
  return crypto.createHash("sha256").update(JSON.stringify(files)).digest("hex").slice(0, 16);
}

export function compiledKey(modelDir: string, options: unknown): string {
  const files = filesKey(modelDir, (f) => f === "config.json" || f.endsWith(".safetensors") || f.endsWith(".safetensors.index.json"));
  const config = fs.readFileSync(path.join(modelDir, "config.json"), "utf8");
  return crypto.createHash("sha256").update(JSON.stringify({ v: GRAPH_VERSION, dir: path.resolve(modelDir), config, files, options })).digest("hex").slice(0, 20);
}

/** The cached model file for `key`, building it with `build` when it is not there yet. */
export function compiledModel(cacheDir: string, key: string, build: () => Graph, onWeight?: (done: number, total: number) => void): { modelPath: string; built: boolean } {
  const dir = path.join(cacheDir, key);
  const modelPath = path.join(dir, "model.onnx");
  if (fs.existsSync(modelPath) && fs.existsSync(`${modelPath}.data`)) return { modelPath, built: false };
  writeModel(build(), dir, "model.onnx", onWeight);
  return { modelPath, built: true };
}
