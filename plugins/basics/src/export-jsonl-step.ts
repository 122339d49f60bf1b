import * as fs from "node:fs";
import * as path from "node:path";
import { Schema } from "effect";
import { definePlugin, option, required, type StepImpl, StepName } from "@bdc/core";

/**
 * Writes the outputs of an earlier step as a JSONL file in this step's directory: one line
 * `{"id": ..., ...output}` per item (outputs that are not objects go under `output`).
 */
export default definePlugin({
  id: "step/export-jsonl",
  version: "0.1.0",
  description: "Write the outputs of an earlier step to a JSONL file (one row per item)",
  config: Schema.Struct({
    from: required(StepName, "the step whose outputs to write (this step waits for it)"),
    file: option(Schema.String.pipe(Schema.pattern(/^[^/\\]+\.jsonl$/)), "export.jsonl", "file name inside the step's directory"),
  }),
  make(config): StepImpl<unknown, { rows: number; file: string }> {
    return {
      run(_item, ctx) {
        const file = path.join(ctx.dir, config.file);
        const rows = ctx.outputs(config.from);
        const tmp = `${file}.tmp`;
        const fd = fs.openSync(tmp, "w");
        try {
          for (const r of rows) {
            const line = typeof r.data === "object" && r.data !== null && !Array.isArray(r.data) ? { id: r.id, ...r.data } : { id: r.id, output: r.data };
            fs.writeSync(fd, `${JSON.stringify(line)}\n`);
          }
        } finally {
          fs.closeSync(fd);
        }
        fs.renameSync(tmp, file);
        return { rows: rows.length, file: path.relative(path.dirname(path.dirname(ctx.dir)), file) };
      },
      summarize: (results) => ({ rows: results.reduce((n, r) => n + (r.output?.rows ?? 0), 0) }),
    };
  },
});
