/**
 * @bdc/core - the kernel. Plugin authors need `definePlugin`, the config helpers and, for
 * tests, `@bdc/core/testing`. Everything else is for embedding the kernel in other programs.
 */
export { definePlugin, slotOf, EmptyConfig } from "./plugin.ts";
export type {
  AnyPlugin,
  DatasetImpl,
  Deps,
  Item,
  KernelServices,
  Plugin,
  PreflightContext,
  PreflightProblem,
  RefSpec,
  Requires,
  SlotImpl,
  SlotTypes,
  StepContext,
  StepImpl,
  StepResult,
} from "./plugin.ts";
export { FilePath, PathOrName, StepName, isWrittenAsPath, option, optional, required, decodeConfig, encodeConfig, describeAst } from "./config-schema.ts";
export type { ConfigSchema, ConfigProblem } from "./config-schema.ts";
export { BdcError, BdcErrors, ErrorCodes, formatError, formatPath, isBdcError, toBdcErrors } from "./errors.ts";
export type { ErrorCode, Origin, ConfigPath } from "./errors.ts";
export { PluginRegistry, findProjectRoot, pluginShapeProblems } from "./registry.ts";
export { choicesHint, nearest } from "./util/suggest.ts";
export { escapeHtml } from "./util/html.ts";
export type { PluginEntry } from "./registry.ts";
export { loadWorkflow } from "./workflow/load.ts";
export type { LoadOptions, Loaded } from "./workflow/load.ts";
export { resolveWorkflow } from "./workflow/resolve.ts";
export type { ResolvedWorkflow, ResolvedInstance, ResolvedStep } from "./workflow/resolve.ts";
export { runWorkflow } from "./engine/run.ts";
export { instantiate } from "./engine/instances.ts";
export type { Instances, InstanceServices } from "./engine/instances.ts";
export type { RunOptions, RunOutcome, RunSummary, StepSummary } from "./engine/run.ts";
export { LineProgress, SilentProgress, TtyProgress } from "./engine/progress.ts";
export type { ProgressReporter } from "./engine/progress.ts";
export { RUN_FILES } from "./engine/store.ts";
export { workflowJsonSchema, configKeyDocs } from "./json-schema.ts";
export { main as cli } from "./cli/main.ts";
export type { CliCommand } from "./cli/main.ts";
export type { CommandSpec, FlagSpec, ParsedArgs } from "./cli/args.ts";
export { numberFlag } from "./cli/args.ts";
export { instanceFromWorkflow, workflowFlags } from "./cli/workflow-args.ts";
export { progressFor } from "./cli/output.ts";
export type { Io } from "./cli/output.ts";
