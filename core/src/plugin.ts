/**
 * The plugin contract. A plugin is a plain object (one default export per file, no side
 * effects at import) that fills one slot of the kernel:
 *
 * ```ts
 * export default definePlugin({
 *   id: "select/pucb", version: "1.0.0", description: "PUCB selection (paper eq. 3)",
 *   config: Schema.Struct({ c: option(Schema.Number, 1, "exploration constant") }),
 *   requires: { prior: { slot: "policy", optional: true } },
 *   make: (config, deps, kernel) => new PucbSelector(config.c),
 * });
 * ```
 *
 * References to other instances (`requires`) are written in the instance's `with:` block next
 * to its config, by instance name; `make` receives the built instances in `deps`.
 */
import { Schema } from "effect";
import type { ConfigSchema } from "./config-schema.ts";
import type { ConfigPath } from "./errors.ts";

/**
 * Implementation types per slot. Plugin families add their slots by declaration merging:
 * `declare module "@bdc/core" { interface SlotTypes { policy: Policy } }`.
 */
export interface SlotTypes {
  step: StepImpl;
  dataset: DatasetImpl;
}

export type SlotImpl<S extends string> = S extends keyof SlotTypes ? SlotTypes[S] : unknown;

export interface RefSpec {
  /** The slot the referenced instance must fill (its id prefix, e.g. "policy"). */
  readonly slot: string;
  /** A list of instances. When unset in YAML: every enabled instance of the slot. */
  readonly many?: boolean;
  /** When unset and not defaulted, fine: `deps[key]` is undefined (or [] for many). */
  readonly optional?: boolean;
  /** Instance name(s) used when the key is absent from `with:`. */
  readonly default?: string | ReadonlyArray<string>;
  readonly description?: string;
}

export type Requires = Readonly<Record<string, RefSpec>>;

type RefValue<R extends RefSpec> = R["many"] extends true
  ? ReadonlyArray<SlotImpl<R["slot"]>>
  : R["optional"] extends true
    ? SlotImpl<R["slot"]> | undefined
    : SlotImpl<R["slot"]>;

export type Deps<R extends Requires> = { readonly [K in keyof R]: RefValue<R[K]> };

/** What the kernel hands every instance besides its config and deps. */
export interface KernelServices {
  /** The instance's name in the workflow (`plugins.<name>`). */
  readonly instance: string;
  /** Directory of the workflow file that defined the instance (resolve relative paths here). */
  readonly baseDir: string;
  /** The run directory, when building for a run (undefined for validate/tests). */
  readonly runDir: string | undefined;
  /** Appends an event `{type: "plugin", instance, event, ...data}` to the run's events.jsonl. */
  emit(event: string, data?: Record<string, unknown>): void;
  /** A log line (shown as a plain line; above the progress bars on a TTY; not with --quiet). */
  log(message: string): void;
  /** A warning: always shown (even with --quiet) and recorded as a `warning` event. */
  warn(message: string): void;
  /** Aborted when the run is stopped (Ctrl-C); pass it to fetch, child processes, ... */
  readonly signal: AbortSignal;
}

export interface PreflightContext {
  readonly instance: string;
  readonly baseDir: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * The user said yes, up front, to what plugins offer to do before the run (`bdc run --yes`):
   * a preflight may then do that work (download a model, ...) instead of reporting a problem
   * whose message offers it. Absent or false (`bdc validate`, tests): offer it, never do it.
   */
  readonly assumeYes?: boolean;
  /**
   * The checks run right before a run (`bdc run`), not for `bdc validate`: a plugin whose config
   * already says yes to such work (policy/auto's `pull_local: yes`) may do it now.
   */
  readonly forRun?: boolean;
  /**
   * The workflow file as the user would type it (relative to the working directory), for
   * messages that give a command to run; absent when not known.
   */
  readonly workflow?: string;
  /**
   * Where such work reports progress: the terminal's stderr (never stdout, which carries the
   * command's result). `write` takes text as it is (end lines with "\n"); `isTTY` says whether
   * a line may be redrawn (progress bars). Absent (`--quiet`, tests): work silently.
   */
  readonly progress?: { readonly write: (text: string) => void; readonly isTTY: boolean };
}

/** A problem found by a plugin's `preflight` check; `path` is relative to the `with:` block. */
export interface PreflightProblem {
  readonly message: string;
  readonly code?: string;
  readonly hint?: string;
  readonly path?: ConfigPath;
}

export interface Plugin<C = any, R extends Requires = Requires, Impl = unknown> {
  /** `<slot>/<name>`, lower case, e.g. `select/pucb`. */
  readonly id: string;
  readonly version: string;
  readonly description: string;
  /** Schema of the `with:` block (a `Schema.Struct`); unknown keys are errors. */
  readonly config?: ConfigSchema<C>;
  readonly requires?: R;
  /**
   * Cheap checks that need the environment (API keys, files, devices), run by `bdc validate`
   * and before a run starts, so a run never fails half-way on something knowable up front.
   */
  preflight?(config: C, ctx: PreflightContext): Iterable<PreflightProblem> | Promise<Iterable<PreflightProblem>>;
  make(config: C, deps: Deps<R>, kernel: KernelServices): Impl | Promise<Impl>;
}

export type AnyPlugin = Plugin<any, Requires, unknown>;

/** Identity function that gives plugin authors type inference for config, deps and impl. */
export function definePlugin<C, const R extends Requires = {}, Impl = unknown>(plugin: Plugin<C, R, Impl>): Plugin<C, R, Impl> {
  return plugin;
}

export const slotOf = (id: string): string => id.slice(0, id.indexOf("/"));

export const EmptyConfig: ConfigSchema<{}> = Schema.Struct({});

// ---------------------------------------------------------------------------------------------
// The two slots the kernel itself drives.

/** One unit of work with a stable id (resume skips finished ids). Data must be JSON. */
export interface Item<T = unknown> {
  readonly id: string;
  readonly data: T;
}

export interface DatasetImpl<T = unknown> {
  /** Every item, in a stable order. */
  items(signal: AbortSignal): AsyncIterable<Item<T>> | Iterable<Item<T>> | Promise<ReadonlyArray<Item<T>>>;
}

export interface StepContext {
  readonly step: string;
  readonly signal: AbortSignal;
  /** Directory for this step's artifacts (`<run>/steps/<step>/`); the report links its files. */
  readonly dir: string;
  emit(event: string, data?: Record<string, unknown>): void;
  log(message: string): void;
  /** The finished outputs of a step this step depends on (`needs` / `for_each`). */
  outputs<T = unknown>(step: string): ReadonlyArray<Item<T>>;
}

export interface StepResult<Out = unknown> {
  readonly id: string;
  readonly output?: Out;
  readonly error?: { readonly code: string; readonly message: string };
}

export interface StepImpl<In = unknown, Out = unknown> {
  /**
   * Processes one item. With `for_each` the items come from a dataset or an earlier step;
   * without, the step runs once with the item `{id: "all", data: null}`. The output must be JSON:
   * it is persisted line by line and is what `--resume` keeps.
   */
  run(item: Item<In>, ctx: StepContext): Promise<Out> | Out;
  /** Folds all results (resumed and new) into the step's entry of summary.json. */
  summarize?(results: ReadonlyArray<StepResult<Out>>, ctx: StepContext): Promise<Record<string, unknown>> | Record<string, unknown>;
}
