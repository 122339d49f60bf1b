import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";
import { Schema } from "effect";
import { BdcError, type DatasetImpl, definePlugin, FilePath, type Item, option, optional, StepName } from "@bdc/core";

const ID_FIELDS = ["id", "task_id", "problem_id", "name"];

/**
 * Rows of a JSONL file (Hugging Face dataset rows exported with `to_json(lines=True)`). With
 * `step:`, the file is one that step of the same run wrote (`steps/<step>/<path>`, e.g. the
 * D_train.jsonl of step/export-pairs): it is read when the consuming step starts, and the steps
 * that read this dataset wait for that step (a step reference implies `needs`).
 */
export default definePlugin({
  id: "dataset/jsonl",
  version: "0.1.0",
  description: "Rows of a JSONL file as items (one JSON object per line); the item id is a field of the row",
  config: Schema.Struct({
    path: optional(FilePath, "the JSONL file (relative to the YAML file that sets it)"),
    step: optional(StepName, "instead of path: read a file an earlier step of this run wrote (steps/<step>/<file>); the steps that read this dataset wait for it"),
    file: optional(Schema.String.pipe(Schema.minLength(1)), "with step: the file's name in that step's directory (default D_train.jsonl, what step/export-pairs writes)"),
    id_field: optional(Schema.String, `field holding the item id (default: the first of ${ID_FIELDS.join(", ")} present; else the line number)`),
    limit: optional(Schema.Int.pipe(Schema.positive()), "keep only the first N rows"),
    offset: option(Schema.Int.pipe(Schema.nonNegative()), 0, "skip the first N rows"),
  }),
  preflight(config) {
    if ((config.path === undefined) === (config.step === undefined)) {
      return [{ code: "BDC_CONFIG_VALUE", path: ["path"], message: "give the file as path: (a file) or step: (a file an earlier step of the run writes), one of them", hint: "path: data/pairs.jsonl, or step: export (with file: D_train.jsonl)" }];
    }
    if (config.path === undefined || fs.existsSync(config.path)) return [];
    return [{ code: "BDC_FILE_NOT_FOUND", path: ["path"], message: `no such file: ${config.path}`, hint: "a relative path is resolved from the directory of the YAML file that sets it" }];
  },
  make(config, _deps, kernel): DatasetImpl<Record<string, unknown>> {
    const fromStep = config.step;
    if (fromStep !== undefined && kernel.runDir === undefined) {
      throw new BdcError({ code: "BDC_CONFIG_VALUE", message: `step: ${fromStep} reads a file of a run; this instance is not built for a run`, plugin: "dataset/jsonl", path: ["step"] });
    }
    if ((config.path === undefined) === (fromStep === undefined)) throw new BdcError({ code: "BDC_CONFIG_VALUE", message: "give path: or step:, one of them", plugin: "dataset/jsonl", path: ["path"] });
    const file = fromStep === undefined ? config.path! : path.join(kernel.runDir!, "steps", fromStep, config.file ?? "D_train.jsonl");
    return {
      async *items(): AsyncIterable<Item<Record<string, unknown>>> {
        if (!fs.existsSync(file)) {
          throw new BdcError({ code: "BDC_FILE_NOT_FOUND", message: `no such file: ${file}`, hint: fromStep === undefined ? "a relative path is resolved from the directory of the YAML file that sets it" : `step "${fromStep}" writes it: list it in the needs of the steps that read this dataset`, plugin: "dataset/jsonl" });
        }
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
