import * as fs from "node:fs";
import * as readline from "node:readline";
import { Schema } from "effect";
import { BdcError, definePlugin, FilePath, option, optional, required, type DatasetImpl, type Item } from "@bdc/core";

const ID_FIELDS = ["id", "task_id", "problem_id", "name"];

/** Rows of a JSONL file (Hugging Face dataset rows exported with `to_json(lines=True)`). */
export default definePlugin({
  id: "dataset/jsonl",
  version: "0.1.0",
  description: "Rows of a JSONL file as items (one JSON object per line); the item id is a field of the row",
  config: Schema.Struct({
    path: required(FilePath, "the JSONL file (relative to the YAML file that sets it)"),
    id_field: optional(Schema.String, `field holding the item id (default: the first of ${ID_FIELDS.join(", ")} present; else the line number)`),
    limit: optional(Schema.Int.pipe(Schema.positive()), "keep only the first N rows"),
    offset: option(Schema.Int.pipe(Schema.nonNegative()), 0, "skip the first N rows"),
  }),
  preflight(config, ctx) {
    return fs.existsSync(config.path)
      ? []
      : [{ code: "BDC_FILE_NOT_FOUND", path: ["path"], message: `no such file: ${config.path}`, hint: "a relative path is resolved from the directory of the YAML file that sets it" }];
  },
  make(config): DatasetImpl<Record<string, unknown>> {
    const file = config.path;
    return {
      async *items(): AsyncIterable<Item<Record<string, unknown>>> {
        const lines = readline.createInterface({ input: fs.createReadStream(file, "utf8"), crlfDelay: Infinity });
        let lineNo = 0;
        let row = 0;
        let yielded = 0;
        for await (const line of lines) {
          lineNo++;
          if (line.trim() === "") continue;
          if (row++ < config.offset) continue;
          if (config.limit !== undefined && yielded >= config.limit) break;
          let data: unknown;
          try {
            data = JSON.parse(line);
          } catch (cause) {
            throw new BdcError({ code: "BDC_DATASET_PARSE", message: `${file}:${lineNo}: not valid JSON: ${(cause as Error).message}`, plugin: "dataset/jsonl" });
          }
          if (typeof data !== "object" || data === null || Array.isArray(data)) {
            throw new BdcError({ code: "BDC_DATASET_PARSE", message: `${file}:${lineNo}: expected a JSON object per line`, plugin: "dataset/jsonl" });
          }
          const rec = data as Record<string, unknown>;
          const field = config.id_field ?? ID_FIELDS.find((f) => rec[f] !== undefined && rec[f] !== null);
          const id = field === undefined ? `line-${lineNo}` : rec[field];
          if (field !== undefined && (typeof id !== "string" || id === "") && typeof id !== "number") {
            throw new BdcError({
              code: "BDC_DATASET_PARSE",
              message: `${file}:${lineNo}: the id field "${field}" is ${id === undefined ? "missing" : `not a string or number (${JSON.stringify(id)})`}`,
              hint: "set id_field to a field every row has",
              plugin: "dataset/jsonl",
            });
          }
          yielded++;
          yield { id: String(id), data: rec };
        }
      },
    };
  },
});
