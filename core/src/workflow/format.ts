/**
 * The workflow file format (also the shape of overlays, which are partial workflows).
 *
 * ```yaml
 * # yaml-language-server: $schema=../workflow.schema.json
 * name: quickstart
 * extends: base.yaml               # optional: files merged underneath this one
 * run: { concurrency: 4, on_error: continue }
 * plugins:                         # instances: name -> {use, with, enabled}
 *   problems: { use: dataset/jsonl, with: { path: data/problems.jsonl } }
 *   stats:    { use: step/inspect }
 * steps:                           # what runs; a DAG over needs / for_each
 *   stats: { run: stats, for_each: problems }
 *   expert: { for_each: { step: cluster, items: clusters } }   # one item per element of a list
 * ```
 */
import { Schema } from "effect";

const OnError = Schema.Literal("continue", "stop").annotations({
  description: "continue: record the failed item and go on (the run exits 1 at the end); stop: end the run at the first failure",
});

const PositiveInt = Schema.Int.pipe(Schema.positive());

export const PluginInstanceSchema = Schema.Struct({
  use: Schema.String.annotations({
    description: "the plugin: a registered id (<slot>/<name>), a path to a module (./my-plugin.ts, relative to this file), or a package name",
  }),
  with: Schema.optional(
    Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({
      description: "the plugin's config and its references to other instances (see `bdc describe <id>`)",
    }),
  ),
  enabled: Schema.optional(Schema.Boolean.annotations({ description: "false switches the instance off (default true)" })),
});

export const StepSchema = Schema.Struct({
  run: Schema.optional(Schema.String.annotations({ description: "the step instance to run (default: the instance named like the step)" })),
  for_each: Schema.optional(
    Schema.Union(
      Schema.String.annotations({ description: "run once per item of this dataset instance or earlier step; without it the step runs once" }),
      Schema.Struct({
        step: Schema.String.annotations({ description: "an earlier step" }),
        items: Schema.String.annotations({ description: "a list in each of its outputs (e.g. a clustering's clusters): one work item per element, its id the element's `id`" }),
      }).annotations({ description: "fan out: run once per element of a list in an earlier step's outputs" }),
    ),
  ),
  needs: Schema.optional(Schema.Array(Schema.String).annotations({ description: "steps that must finish before this one starts" })),
  concurrency: Schema.optional(PositiveInt.annotations({ description: "items of this step in flight at once (default: run.concurrency)" })),
  on_error: Schema.optional(OnError),
  enabled: Schema.optional(Schema.Boolean.annotations({ description: "false skips the step (default true)" })),
});

export const RunOptionsSchema = Schema.Struct({
  concurrency: Schema.optional(PositiveInt.annotations({ description: "work items in flight at once across all steps (default 4)" })),
  on_error: Schema.optional(OnError),
});

export const WorkflowSchema = Schema.Struct({
  name: Schema.optional(Schema.String.annotations({ description: "name of the workflow (default: the file name); run directories are named after it" })),
  description: Schema.optional(Schema.String.annotations({ description: "what the workflow does and which paper it follows" })),
  extends: Schema.optional(
    Schema.Union(Schema.String, Schema.Array(Schema.String)).annotations({
      description: "workflow file(s) merged underneath this one, relative to this file",
    }),
  ),
  run: Schema.optional(RunOptionsSchema),
  plugins: Schema.optional(
    Schema.Record({ key: Schema.String, value: PluginInstanceSchema }).annotations({ description: "plugin instances by name" }),
  ),
  steps: Schema.optional(Schema.Record({ key: Schema.String, value: StepSchema }).annotations({ description: "steps by name" })),
});

export type WorkflowDoc = Schema.Schema.Type<typeof WorkflowSchema>;
export type PluginInstanceDoc = Schema.Schema.Type<typeof PluginInstanceSchema>;
export type StepDoc = Schema.Schema.Type<typeof StepSchema>;

export const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]*$/;
export const DEFAULT_CONCURRENCY = 4;
