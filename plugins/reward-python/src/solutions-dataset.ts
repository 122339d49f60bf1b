import * as fs from "node:fs";
import { Schema } from "effect";
import { BdcError, definePlugin, FilePath, required, type DatasetImpl, type Item } from "@bdc/core";

export interface Solution {
  readonly problem_id: string;
  readonly code: string;
}

/** Reads a solutions file: one `{"problem_id": ..., "code": "..."}` per line; a later line for the same problem wins. */
export function readSolutions(file: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = fs.readFileSync(file, "utf8").split("\n");
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (cause) {
      throw new BdcError({ code: "BDC_DATASET_PARSE", message: `${file}:${i + 1}: not valid JSON: ${(cause as Error).message}` });
    }
    const r = row as Partial<Record<string, unknown>>;
    const id = r.problem_id ?? r.task_id ?? r.id;
    if ((typeof id !== "string" && typeof id !== "number") || typeof r.code !== "string") {
      throw new BdcError({
        code: "BDC_DATASET_PARSE",
        message: `${file}:${i + 1}: expected {"problem_id": ..., "code": "..."}`,
        hint: "one JSON object per line with the problem's id and the program's source",
      });
    }
    out.set(String(id), r.code);
  });
  return out;
}

/** Programs to score, from a JSONL file (`bdc evaluate --solutions` as a workflow dataset). */
export default definePlugin({
  id: "dataset/solutions",
  version: "0.1.0",
  description: 'Programs from a JSONL file of {"problem_id", "code"} rows; items are keyed by problem id',
  config: Schema.Struct({ path: required(FilePath, "the solutions file") }),
  preflight: (config) => (fs.existsSync(config.path) ? [] : [{ code: "BDC_FILE_NOT_FOUND", path: ["path"], message: `no such file: ${config.path}` }]),
  make(config): DatasetImpl<Solution> {
    return {
      items: (): Array<Item<Solution>> => [...readSolutions(config.path)].map(([id, code]) => ({ id, data: { problem_id: id, code } })),
    };
  },
});
