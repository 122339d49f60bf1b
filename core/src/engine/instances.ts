/**
 * Building plugin instances, dependencies first, outside or inside a run (`bdc run`, `bdc ask`);
 * in a run, each step's instances when the step starts.
 * Each instance may expose `close()` or `Symbol.asyncDispose` (called, in reverse build order,
 * when its owner is done) and `stats()` (folded into summary.json under `instances`).
 */
import { BdcError, toBdcErrors } from "../errors.ts";
import type { KernelServices } from "../plugin.ts";
import type { ResolvedWorkflow } from "../workflow/resolve.ts";

export interface InstanceServices {
  readonly runDir: string | undefined;
  readonly signal: AbortSignal;
  emit(instance: string, event: string, data?: Record<string, unknown>): void;
  log(instance: string, message: string): void;
  warn(instance: string, message: string): void;
}

export interface Instances {
  get<T = unknown>(name: string): T;
  readonly names: ReadonlyArray<string>;
  /** `stats()` of every instance that has it. */
  stats(): Promise<Record<string, Record<string, unknown>>>;
  /** Disposes every built instance, the last built first; never throws. */
  close(): Promise<void>;
}

/** The named instances and everything they reference, built in dependency order. */
export async function instantiate(wf: ResolvedWorkflow, names: Iterable<string>, services: InstanceServices): Promise<Instances> {
  const instances = instanceBuilder(wf, services);
  try {
    await instances.ensure(names);
  } catch (e) {
    await instances.close();
    throw e;
  }
  return instances;
}

/**
 * Instances built on demand: `ensure(names)` builds those not built yet and what they reference,
 * dependencies first, one build at a time (two steps starting together share an instance). A run
 * builds each step's instances when the step starts, so an instance that reads an earlier step's
 * files (a dataset of exported pairs, a trained hypernetwork) is built after that step.
 */
export function instanceBuilder(wf: ResolvedWorkflow, services: InstanceServices): Instances & { ensure(names: Iterable<string>): Promise<void> } {
  const built = new Map<string, unknown>();
  let queue: Promise<void> = Promise.resolve();
  const build = async (names: Iterable<string>): Promise<void> => {
    const wanted = new Set<string>();
    const want = (name: string) => {
      if (wanted.has(name) || built.has(name)) return;
      wanted.add(name);
      for (const ref of Object.values(wf.instances.get(name)?.refs ?? {})) for (const r of [ref ?? []].flat()) want(r);
    };
    for (const n of names) want(n);
    for (const inst of wf.instances.values()) {
      if (!wanted.has(inst.name)) continue;
      const deps: Record<string, unknown> = {};
      for (const [key, ref] of Object.entries(inst.refs)) {
        deps[key] = ref === undefined ? undefined : typeof ref === "string" ? built.get(ref) : ref.map((r) => built.get(r));
      }
      const kernel: KernelServices = {
        instance: inst.name,
        baseDir: inst.baseDir,
        runDir: services.runDir,
        emit: (event, data) => services.emit(inst.name, event, data),
        log: (message) => services.log(inst.name, message),
        warn: (message) => services.warn(inst.name, message),
        signal: services.signal,
      };
      try {
        built.set(inst.name, await inst.plugin.make(inst.config, deps as never, kernel));
      } catch (cause) {
        throw toBdcErrors(cause)[0]!.with({
          code: cause instanceof BdcError ? cause.code : "BDC_PLUGIN_MAKE",
          message: `cannot build instance "${inst.name}": ${cause instanceof Error ? cause.message : String(cause)}`,
          plugin: inst.plugin.id,
          path: ["plugins", inst.name],
        });
      }
    }
  };
  return {
    ensure(names) {
      const job = queue.then(() => build(names));
      queue = job.catch(() => undefined);
      return job;
    },
    get: <T>(name: string) => built.get(name) as T,
    get names() {
      return [...built.keys()];
    },
    async stats() {
      const out: Record<string, Record<string, unknown>> = {};
      for (const [name, impl] of built) {
        const s = (impl as { stats?: () => unknown } | null)?.stats;
        if (typeof s === "function") out[name] = (await s.call(impl)) as Record<string, unknown>;
      }
      return out;
    },
    async close() {
      for (const impl of [...built.values()].reverse()) await dispose(impl).catch(() => {});
    },
  };
}

async function dispose(impl: unknown): Promise<void> {
  if (typeof impl !== "object" || impl === null) return;
  const asyncDispose = (Symbol as { asyncDispose?: symbol }).asyncDispose;
  const o = impl as Record<PropertyKey, unknown>;
  if (asyncDispose !== undefined && typeof o[asyncDispose] === "function") await (o[asyncDispose] as () => unknown).call(impl);
  else if (typeof o.close === "function") await (o.close as () => unknown).call(impl);
}
