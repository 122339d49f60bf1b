/**
 * The run engine: builds the instances the steps use, runs the step graph with structured
 * concurrency (independent steps in parallel; items of a step in parallel up to the step's
 * limit; all items under the run-wide limit), persists every finished item as it finishes, and
 * on `--resume` skips the items a previous session finished.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Cause, Deferred, Effect, Exit } from "effect";
import { stringify } from "yaml";
import { BdcError, toBdcErrors } from "../errors.ts";
import type { DatasetImpl, Item, StepContext, StepImpl, StepResult } from "../plugin.ts";
import { instanceBuilder, type InstanceServices, type Instances } from "./instances.ts";
import { writeReport } from "../report/html.ts";
import type { ResolvedStep, ResolvedWorkflow } from "../workflow/resolve.ts";
import { SilentProgress, type ProgressReporter } from "./progress.ts";
import { RUN_FILES, RunStore } from "./store.ts";

export type RunStatus = "succeeded" | "failed" | "interrupted";
export type StepStatus = "succeeded" | "failed" | "skipped" | "interrupted" | "pending";

export interface StepSummary {
  instance: string;
  plugin: string;
  status: StepStatus;
  items: number;
  done: number;
  failed: number;
  resumed: number;
  duration_s: number;
  failures: Array<{ id: string; code: string; message: string }>;
  error?: { code: string; message: string };
  summary?: Record<string, unknown>;
}

export interface RunSummary {
  workflow: string;
  status: RunStatus | "running";
  started_at: string;
  finished_at?: string;
  duration_s?: number;
  sessions: number;
  steps: Record<string, StepSummary>;
  plugins: Record<string, string>;
  /** `stats()` of instances that have it (e.g. a policy's tokens and cost). */
  instances?: Record<string, Record<string, unknown>>;
}

export interface RunOptions {
  readonly workflow: ResolvedWorkflow;
  readonly dir: string;
  /** Continue the run in `dir` instead of starting a new one. */
  readonly resume?: boolean;
  readonly progress?: ProgressReporter;
  /** Aborting it stops the run cleanly (the CLI wires SIGINT/SIGTERM to it). */
  readonly signal?: AbortSignal;
  /** How the run was started (workflow, overlays, sets), kept so `--resume DIR` can replay it. */
  readonly invocation?: unknown;
}

export interface RunOutcome {
  readonly status: RunStatus;
  readonly dir: string;
  readonly summary: RunSummary;
  /** 0 succeeded, 1 failed, 130 interrupted. */
  readonly exitCode: number;
}

const MAX_FAILURES_LISTED = 50;

export function pluginsManifest(wf: ResolvedWorkflow): Record<string, { id: string; version: string; source: string }> {
  const out: Record<string, { id: string; version: string; source: string }> = {};
  for (const inst of wf.instances.values()) out[inst.name] = { id: inst.plugin.id, version: inst.plugin.version, source: inst.source };
  return out;
}

/** The instances a step uses: its own and its `for_each` dataset (what they reference comes with them). */
const stepInstances = (step: ResolvedStep): string[] => [step.instance, ...(step.forEach?.kind === "dataset" ? [step.forEach.name] : [])];

export async function runWorkflow(options: RunOptions): Promise<RunOutcome> {
  const wf = options.workflow;
  const progress = options.progress ?? new SilentProgress();
  const store = options.resume === true
    ? RunStore.open(options.dir)
    : RunStore.create(options.dir, { resolvedYaml: stringify(wf.document), plugins: pluginsManifest(wf), invocation: options.invocation });
  const previous = options.resume === true ? readSummary(store) : undefined;
  const started = performance.now();
  const summary: RunSummary = {
    workflow: wf.name,
    status: "running",
    started_at: previous?.started_at ?? new Date().toISOString(),
    sessions: store.countEvents("run.start") + 1,
    steps: {},
    plugins: Object.fromEntries([...wf.instances.values()].map((i) => [i.name, `${i.plugin.id}@${i.plugin.version}`])),
  };
  for (const s of wf.steps) summary.steps[s.name] = emptyStepSummary(s, wf);
  const runAbort = new AbortController();
  store.event("run.start", { workflow: wf.name, resume: options.resume === true, pid: process.pid, session: summary.sessions });

  const services: InstanceServices = {
    runDir: store.dir,
    signal: runAbort.signal,
    emit: (instance, event, data) => store.event("plugin", { instance, event, ...data }),
    log: (instance, message) => progress.log(`[${instance}] ${message}`),
    warn: (instance, message) => {
      store.event("warning", { instance, message });
      progress.warn(`[${instance}] ${message}`);
    },
  };
  const program = Effect.gen(function* () {
    const impls = yield* Effect.acquireRelease(
      Effect.sync(() => instanceBuilder(wf, services)),
      (built) =>
        Effect.promise(async () => {
          summary.instances = await built.stats().catch((e) => ({ error: { message: String(e) } }));
          await built.close();
        }),
    );
    const semaphore = yield* Effect.makeSemaphore(wf.concurrency);
    const finished = new Map<string, Deferred.Deferred<StepStatus>>();
    for (const s of wf.steps) finished.set(s.name, yield* Deferred.make<StepStatus>());
    yield* Effect.forEach(
      wf.steps,
      (step) =>
        Effect.gen(function* () {
          yield* Effect.forEach(step.needs, (n) => Deferred.await(finished.get(n)!), { discard: true });
          // A step whose items partly failed still feeds its successful outputs forward; a
          // step that failed as a whole (or was skipped) leaves nothing to work on.
          const blocked = step.needs.some((n) => summary.steps[n]!.status === "skipped" || summary.steps[n]!.error !== undefined);
          if (!blocked) {
            // An instance that cannot be built fails its step (recorded as such), as a step failing as a whole does.
            yield* Effect.tryPromise({ try: () => impls.ensure(stepInstances(step)), catch: (e) => toBdcErrors(e)[0]! }).pipe(
              Effect.tapError((e) => Effect.sync(() => failStep(summary.steps[step.name]!, step, store, e, performance.now()))),
            );
          }
          const status: StepStatus = blocked
            ? skipStep(step, summary, store)
            : yield* runStep(step, impls, semaphore, wf.concurrency, store, summary.steps[step.name]!, progress, runAbort.signal);
          yield* Deferred.succeed(finished.get(step.name)!, status);
        }),
      { concurrency: "unbounded", discard: true },
    );
  });

  const onAbort = () => runAbort.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const exit = await Effect.runPromiseExit(Effect.scoped(program), options.signal === undefined ? undefined : { signal: options.signal });
  options.signal?.removeEventListener("abort", onAbort);
  runAbort.abort();

  let status: RunStatus;
  if (Exit.isSuccess(exit)) {
    status = Object.values(summary.steps).every((s) => s.status === "succeeded") ? "succeeded" : "failed";
  } else if (Cause.isInterruptedOnly(exit.cause) || options.signal?.aborted === true) {
    status = "interrupted";
    for (const s of Object.values(summary.steps)) if (s.status === "pending") s.status = "interrupted";
  } else {
    status = "failed";
    const errors = toBdcErrors(Cause.squash(exit.cause));
    store.event("run.error", { errors: errors.map((e) => e.toJSON()) });
    for (const e of errors) progress.log(`error: ${e.message} [${e.code}]`);
    for (const s of Object.values(summary.steps)) if (s.status === "pending") s.status = "skipped";
  }
  summary.status = status;
  summary.finished_at = new Date().toISOString();
  summary.duration_s = round((previous?.duration_s ?? 0) + (performance.now() - started) / 1000);
  store.writeJson(RUN_FILES.summary, summary);
  store.event(status === "interrupted" ? "run.interrupted" : "run.done", { status, duration_s: summary.duration_s });
  store.close();
  writeReport(options.dir);
  progress.close();
  return { status, dir: options.dir, summary, exitCode: status === "succeeded" ? 0 : status === "failed" ? 1 : 130 };
}

type Built = Instances;

function skipStep(step: ResolvedStep, summary: RunSummary, store: RunStore): StepStatus {
  summary.steps[step.name]!.status = "skipped";
  store.event("step.skipped", { step: step.name, reason: "a step it needs failed" });
  return "skipped";
}

function runStep(
  step: ResolvedStep,
  impls: Built,
  semaphore: Effect.Semaphore,
  runConcurrency: number,
  store: RunStore,
  s: StepSummary,
  progress: ProgressReporter,
  runSignal: AbortSignal,
): Effect.Effect<StepStatus, BdcError> {
  return Effect.gen(function* () {
    const impl = impls.get<StepImpl>(step.instance);
    const dir = store.stepDir(step.name);
    const t0 = performance.now();
    const outputsCache = new Map<string, ReadonlyArray<Item>>();
    const ctxFor = (signal: AbortSignal, item?: string): StepContext => ({
      step: step.name,
      signal,
      dir,
      emit: (event, data) => store.event("plugin", { step: step.name, instance: step.instance, ...(item === undefined ? {} : { item }), event, ...data }),
      log: (message) => progress.log(`[${step.name}] ${message}`),
      outputs: <T>(other: string) => {
        if (!step.needs.includes(other)) {
          throw new BdcError({ code: "BDC_UNKNOWN_STEP", message: `step "${step.name}" reads outputs of "${other}" without needing it`, hint: `add "${other}" to steps.${step.name}.needs` });
        }
        let items = outputsCache.get(other);
        if (items === undefined) {
          items = [...store.finished(other).values()].map((r) => ({ id: r.id, data: r.output }));
          outputsCache.set(other, items);
        }
        return items as ReadonlyArray<Item<T>>;
      },
    });

    const items = yield* Effect.tryPromise({
      try: () => stepItems(step, impls, store, runSignal),
      catch: (e) => toBdcErrors(e)[0]!,
    }).pipe(Effect.tapError((e) => Effect.sync(() => failStep(s, step, store, e, t0))));

    const before = store.finished(step.name);
    const known = new Set(items.map((i) => i.id));
    const resumed = items.filter((i) => before.has(i.id));
    const todo = items.filter((i) => !before.has(i.id));
    const results = new Map<string, StepResult>();
    for (const i of resumed) results.set(i.id, before.get(i.id)!);
    Object.assign(s, { items: items.length, resumed: resumed.length, done: resumed.length, failed: 0, failures: [] });
    store.event("step.start", { step: step.name, items: items.length, resumed: resumed.length, stale: [...before.keys()].filter((k) => !known.has(k)).length });
    progress.stepStarted(step.name, items.length, resumed.length);

    const runItem = (item: Item) =>
      Effect.gen(function* () {
        const t = performance.now();
        const outcome = yield* Effect.tryPromise({
          try: async (signal) => {
            const output = await impl.run(item, ctxFor(signal, item.id));
            store.appendOutput(step.name, item.id, output);
            return output;
          },
          catch: (e) => toBdcErrors(e)[0]!,
        }).pipe(Effect.either);
        const ms = round(performance.now() - t);
        if (outcome._tag === "Right") {
          results.set(item.id, { id: item.id, output: outcome.right });
          s.done++;
          store.event("item.done", { step: step.name, item: item.id, ms });
          progress.itemFinished(step.name, true);
          return;
        }
        const err = outcome.left.code === "BDC_INTERNAL" ? outcome.left.with({ code: "BDC_ITEM_FAILED" }) : outcome.left;
        results.set(item.id, { id: item.id, error: { code: err.code, message: err.message } });
        s.failed++;
        if (s.failures.length < MAX_FAILURES_LISTED) s.failures.push({ id: item.id, code: err.code, message: err.message });
        store.event("item.failed", { step: step.name, item: item.id, ms, code: err.code, message: err.message });
        progress.itemFinished(step.name, false);
        if (step.onError === "stop") {
          return yield* Effect.fail(err.with({ message: `step "${step.name}", item "${item.id}": ${err.message}`, hint: err.hint ?? "fix the cause and continue with --resume" }));
        }
      });

    // More fibers than run-wide permits would only queue on the semaphore (measurably slow).
    const concurrency = Math.min(step.concurrency, runConcurrency);
    yield* Effect.forEach(todo, (item) => semaphore.withPermits(1)(runItem(item)), { concurrency, discard: true }).pipe(
      Effect.tapError((e) => Effect.sync(() => failStep(s, step, store, e, t0))),
      Effect.onInterrupt(() => Effect.sync(() => {
        s.status = "interrupted";
        s.duration_s = round((performance.now() - t0) / 1000);
        progress.stepFinished(step.name, "interrupted");
      })),
    );

    const ordered = items.map((i) => results.get(i.id)).filter((r): r is StepResult => r !== undefined);
    if (impl.summarize !== undefined) {
      s.summary = yield* Effect.tryPromise({
        try: async () => impl.summarize!(ordered, ctxFor(runSignal)),
        catch: (e) => toBdcErrors(e)[0]!.with({ plugin: step.instance }),
      }).pipe(Effect.tapError((e) => Effect.sync(() => failStep(s, step, store, e, t0))));
    }
    s.status = s.failed > 0 ? "failed" : "succeeded";
    s.duration_s = round((performance.now() - t0) / 1000);
    store.event("step.done", { step: step.name, status: s.status, done: s.done, failed: s.failed, resumed: s.resumed, duration_s: s.duration_s });
    progress.stepFinished(step.name, s.status);
    return s.status;
  });
}

function failStep(s: StepSummary, step: ResolvedStep, store: RunStore, e: BdcError, t0: number): void {
  s.status = "failed";
  s.error = { code: e.code, message: e.message };
  s.duration_s = round((performance.now() - t0) / 1000);
  store.event("step.failed", { step: step.name, code: e.code, message: e.message });
}

async function stepItems(step: ResolvedStep, impls: Built, store: RunStore, signal: AbortSignal): Promise<Item[]> {
  if (step.forEach === undefined) return [{ id: "all", data: null }];
  if (step.forEach.kind === "step" && step.forEach.items !== undefined) return fanOut(step.forEach.name, step.forEach.items, store);
  if (step.forEach.kind === "step") return [...store.finished(step.forEach.name).values()].map((r) => ({ id: r.id, data: r.output }));
  const dataset = impls.get<DatasetImpl>(step.forEach.name);
  const out: Item[] = [];
  const seen = new Set<string>();
  for await (const item of await dataset.items(signal)) {
    if (typeof item !== "object" || item === null || typeof item.id !== "string" || item.id === "") {
      throw new BdcError({ code: "BDC_PLUGIN_INVALID", message: `dataset "${step.forEach.name}" yielded an item without a string id (item ${out.length})`, hint: "a dataset yields {id: string, data}" });
    }
    if (seen.has(item.id)) {
      throw new BdcError({ code: "BDC_DUPLICATE_ITEM", message: `dataset "${step.forEach.name}" yields two items with id "${item.id}"`, hint: "item ids must be unique: resume keys finished work by id" });
    }
    seen.add(item.id);
    out.push(item);
  }
  return out;
}

/**
 * Fan-out: the elements of the list `field` in each finished output of `source`, one work item
 * each (id: the element's `id`, else "<output id>/<index>"), so each resumes on its own.
 */
function fanOut(source: string, field: string, store: RunStore): Item[] {
  const out: Item[] = [];
  const seen = new Set<string>();
  for (const r of store.finished(source).values()) {
    const list = (r.output as Record<string, unknown> | null | undefined)?.[field];
    if (!Array.isArray(list)) {
      throw new BdcError({ code: "BDC_ITEM_FAILED", message: `step "${source}", item "${r.id}": its output has no list "${field}" to fan out over`, hint: `for_each: {step: ${source}, items: <a list field of its outputs>}` });
    }
    list.forEach((element, i) => {
      const own = (element as { id?: unknown } | null)?.id;
      const id = typeof own === "string" && own !== "" ? own : `${r.id}/${i}`;
      if (seen.has(id)) throw new BdcError({ code: "BDC_DUPLICATE_ITEM", message: `step "${source}" yields two "${field}" elements with id "${id}"`, hint: "element ids must be unique: resume keys finished work by id" });
      seen.add(id);
      out.push({ id, data: element });
    });
  }
  return out;
}

function emptyStepSummary(step: ResolvedStep, wf: ResolvedWorkflow): StepSummary {
  const inst = wf.instances.get(step.instance)!;
  return { instance: step.instance, plugin: `${inst.plugin.id}@${inst.plugin.version}`, status: "pending", items: 0, done: 0, failed: 0, resumed: 0, duration_s: 0, failures: [] };
}

function readSummary(store: RunStore): RunSummary | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(store.dir, RUN_FILES.summary), "utf8")) as RunSummary;
  } catch {
    return undefined;
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000;
