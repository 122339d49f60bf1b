/**
 * step/merge-lora: merges LoRA adapters with a merger instance (merge/ties, merge/dare, ...) into
 * the step's directory (`steps/<step>/merged/`): a PEFT adapter, or with `output: checkpoint` the
 * base model with the merged update in its weights. The adapters are folders (`adapters:`) or the
 * outputs of an earlier step that trained them (`from:`, e.g. a step/train-lora step: one adapter
 * per item, in item order), or both.
 *
 * Output: {merged, output, method, rank, energy_kept, adapters}.
 */
import * as path from "node:path";
import { Schema } from "effect";
import { BdcError, definePlugin, FilePath, option, optional, PathOrName, required, type StepImpl, StepName } from "@bdc/core";
import { resolveModelDir } from "@bdc/lm-local";
import type { Merger } from "./merger.ts";
import { runMerge } from "./run-merge.ts";

export interface MergeStepOutput {
  readonly merged: string;
  readonly output: "adapter" | "checkpoint";
  readonly method: string;
  readonly rank: number | null;
  readonly energy_kept: number;
  readonly adapters: ReadonlyArray<string>;
}

export default definePlugin({
  id: "step/merge-lora",
  version: "0.1.0",
  description: "Merge LoRA adapters with a merger instance (merge/linear, merge/ties, merge/dare, merge/twin, merge/cat, ...) into a PEFT adapter or a merged checkpoint",
  config: Schema.Struct({
    model: required(PathOrName.pipe(Schema.minLength(1)), "the base model the adapters were trained on (folder or pulled hub id)"),
    adapters: optional(Schema.Array(FilePath), "PEFT adapter folders to merge"),
    from: optional(StepName, "a step whose outputs name adapter folders (`adapter`, relative to the run; e.g. step/train-lora); this step waits for it"),
    output: option(Schema.Literal("adapter", "checkpoint"), "adapter", "adapter: a PEFT folder re-factorised by truncated SVD; checkpoint: the base weights plus the merged update (exact)"),
    rank: optional(Schema.Int.pipe(Schema.positive()), "rank of the merged adapter (default: the largest input rank; cat: their sum)"),
    dtype: option(Schema.Literal("float32", "base"), "float32", "checkpoint output: float32 (exact) or the base checkpoint's dtype"),
    seed: option(Schema.Int, 0, "for DARE's random masks"),
  }),
  requires: { merger: { slot: "merge", description: "the merge method (merge/ties, ...)" } },
  make(config, deps, kernel): StepImpl<unknown, MergeStepOutput> {
    const merger = deps.merger as Merger;
    const model = resolveModelDir(config.model, kernel.baseDir);
    return {
      run(_item, ctx) {
        const runDir = path.dirname(path.dirname(ctx.dir));
        const fromStep =
          config.from === undefined
            ? []
            : ctx.outputs<{ adapter?: unknown }>(config.from).map((o) => {
                if (typeof o.data?.adapter !== "string") throw new BdcError({ code: "BDC_ITEM_FAILED", message: `step "${config.from}", item "${o.id}" names no adapter folder (its output has no "adapter")` });
                return path.resolve(runDir, o.data.adapter);
              });
        const adapters = [...(config.adapters ?? []), ...fromStep];
        if (adapters.length === 0) throw new BdcError({ code: "BDC_ITEM_FAILED", message: "no adapters to merge: set adapters: or from:" });
        const out = path.join(ctx.dir, "merged");
        const summary = runMerge({ model, adapters, method: merger.method, options: merger.options, space: merger.space, twin: merger.twin, rank: config.rank, output: config.output, dtype: config.dtype, out, seed: config.seed });
        for (const note of summary.notes) ctx.log(note);
        ctx.log(`${merger.method}: ${adapters.length} adapters -> ${config.output}${summary.rank === null ? "" : ` of rank ${summary.rank}`} (energy kept ${(summary.energy_kept * 100).toFixed(2)}%)`);
        return { merged: path.relative(runDir, out), output: config.output, method: merger.method, rank: summary.rank, energy_kept: summary.energy_kept, adapters };
      },
      summarize: (results) => {
        const o = results[0]?.output;
        return o === undefined ? {} : { method: o.method, output: o.output, rank: o.rank, energy_kept: o.energy_kept, adapters: o.adapters.length };
      },
    };
  },
});
