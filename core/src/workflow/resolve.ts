/**
 * Validation and resolution of a loaded workflow, before anything runs: the format, every
 * instance's plugin and config, references between instances, the step graph, and the
 * plugins' own preflight checks. All problems are collected and reported together, each with
 * its location, YAML path, code and hint.
 */
import * as path from "node:path";
import { Schema } from "effect";
import { decodeConfig, encodeConfig, resolveFilePaths, stepNameKeys, type ConfigProblem } from "../config-schema.ts";
import { BdcError, BdcErrors, formatPath, toBdcErrors, type ConfigPath } from "../errors.ts";
import { slotOf, type AnyPlugin, type PreflightContext, type RefSpec } from "../plugin.ts";
import type { PluginRegistry } from "../registry.ts";
import { choicesHint } from "../util/suggest.ts";
import { DEFAULT_CONCURRENCY, NAME_PATTERN, WorkflowSchema, type PluginInstanceDoc, type StepDoc } from "./format.ts";
import { isPlainObject } from "./layers.ts";
import type { Loaded } from "./load.ts";

export interface ResolvedInstance {
  readonly name: string;
  readonly plugin: AnyPlugin;
  /** Package that registered the plugin, or the module path for `use: ./x.ts`. */
  readonly source: string;
  readonly config: unknown;
  /** Resolved references: key -> instance name(s). */
  readonly refs: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>;
  readonly baseDir: string;
}

export interface ResolvedStep {
  readonly name: string;
  readonly instance: string;
  /** Items from a dataset, an earlier step's outputs, or (with `items`) the elements of a list in each of its outputs. */
  readonly forEach: { readonly kind: "dataset" | "step"; readonly name: string; readonly items?: string } | undefined;
  /** Every step this one waits for (explicit needs plus a `for_each` step). */
  readonly needs: ReadonlyArray<string>;
  readonly concurrency: number;
  readonly onError: "continue" | "stop";
}

export interface ResolvedWorkflow {
  readonly name: string;
  readonly file: string;
  /** The fully resolved document (overlays, sets, defaults, references), as `--print` shows it. */
  readonly document: Record<string, unknown>;
  /** Enabled instances in build order (dependencies first). */
  readonly instances: ReadonlyMap<string, ResolvedInstance>;
  /** Enabled steps in a valid execution order. */
  readonly steps: ReadonlyArray<ResolvedStep>;
  readonly concurrency: number;
  readonly onError: "continue" | "stop";
  /** Instances that steps (transitively) use: the ones a run builds. */
  readonly used: ReadonlySet<string>;
}

export interface ResolveOptions {
  readonly registry: PluginRegistry;
  /** Run plugins' preflight checks (API keys, files ...). Default true. */
  readonly preflight?: boolean;
  /**
   * Resolve for these instances rather than for the steps (`bdc ask`): they and what they
   * reference are the `used` set, and only they are preflighted.
   */
  readonly for?: ReadonlyArray<string>;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Passed to preflight checks (PreflightContext): the user's yes to what plugins offer to do
   * before the run, such as downloading a model (`bdc run --yes`). Default false.
   */
  readonly assumeYes?: boolean;
  /** The preflight is for a run (PreflightContext.forRun). */
  readonly forRun?: boolean;
  /** Where preflight work reports progress (stderr); absent: silently. */
  readonly progress?: PreflightContext["progress"];
}

interface Candidate {
  readonly name: string;
  readonly doc: PluginInstanceDoc;
  readonly enabled: boolean;
  readonly slot: string;
  plugin?: AnyPlugin;
  source?: string;
  config?: unknown;
  rawRefs?: Record<string, unknown>;
  refs?: Record<string, string | ReadonlyArray<string> | undefined>;
  /** Steps its config names (StepName keys), with where. */
  stepRefs?: Array<{ readonly at: ConfigPath; readonly step: string }>;
  baseDir: string;
}

export async function resolveWorkflow(loaded: Loaded, options: ResolveOptions): Promise<ResolvedWorkflow> {
  const errors: BdcError[] = [];
  const prov = loaded.provenance;
  const located = (p: ConfigProblem, base: ConfigPath, plugin?: string) =>
    new BdcError({ code: p.code, message: p.message, hint: p.hint, path: [...base, ...p.path], origin: prov.origin([...base, ...p.path], p.at), plugin });
  const fail = (code: string, path: ConfigPath, message: string, hint?: string, at: "key" | "value" = "value") =>
    errors.push(new BdcError({ code, message, hint, path, origin: prov.origin(path, at) }));

  // 1. The format itself.
  const decoded = decodeConfig(WorkflowSchema, loaded.value);
  if (!decoded.ok) throw new BdcErrors(sortErrors(decoded.problems.map((p) => located(p, []))));
  const wf = decoded.value;
  const pluginDocs = wf.plugins ?? {};
  const stepDocs = wf.steps ?? {};
  for (const [section, names] of [["plugins", Object.keys(pluginDocs)], ["steps", Object.keys(stepDocs)]] as const) {
    for (const name of names) {
      if (!NAME_PATTERN.test(name)) {
        fail("BDC_CONFIG_VALUE", [section, name], `invalid name "${name}"`, "names start with a letter or _ and contain letters, digits, _ and -", "key");
      }
    }
  }

  // 2. Plugins of every instance (disabled ones too: a typo in `use:` is caught either way).
  const candidates = new Map<string, Candidate>();
  await Promise.all(
    Object.entries(pluginDocs).map(async ([name, doc]) => {
      const file = prov.fileOf(["plugins", name, "use"]);
      const c: Candidate = { name, doc, enabled: doc.enabled !== false, slot: "", baseDir: file === undefined ? loaded.cwd : path.dirname(file) };
      candidates.set(name, c);
      try {
        const { plugin, source } = await options.registry.resolve(doc.use, c.baseDir, prov.origin(["plugins", name, "use"]));
        c.plugin = plugin;
        c.source = source;
      } catch (e) {
        errors.push(...toBdcErrors(e).map((err) => err.with({ path: ["plugins", name, "use"] })));
      }
    }),
  );
  const ordered = Object.keys(pluginDocs).map((n) => candidates.get(n)!);
  for (const c of ordered) (c as { slot: string }).slot = c.plugin === undefined ? slotGuess(c.doc.use) : slotOf(c.plugin.id);

  // 3. Config of every enabled instance.
  for (const c of ordered) {
    if (!c.enabled || c.plugin === undefined) continue;
    const requires = c.plugin.requires ?? {};
    const schema = Schema.Struct({ ...(c.plugin.config?.fields ?? {}), ...refFields(requires) }) as unknown as Schema.Schema<Record<string, unknown>, unknown>;
    const result = decodeConfig(schema, c.doc.with ?? {});
    if (!result.ok) {
      errors.push(...result.problems.map((p) => located(p, ["plugins", c.name, "with"], c.plugin!.id)));
      continue;
    }
    const value = result.value as Record<string, unknown>;
    // A relative path is relative to the file that wrote it (an overlay, a base); --set: cwd.
    resolveFilePaths(schema, value, (key) => {
      const file = prov.fileOf(["plugins", c.name, "with", ...key]);
      return file === undefined ? loaded.cwd : path.dirname(file);
    });
    c.stepRefs = [...stepNameKeys(schema)].flatMap(([key, arity]) => {
      const v = value[key];
      if (arity === "one") return typeof v === "string" ? [{ at: ["plugins", c.name, "with", key], step: v }] : [];
      return Array.isArray(v) ? v.flatMap((x, i) => (typeof x === "string" ? [{ at: ["plugins", c.name, "with", key, i], step: x }] : [])) : [];
    });
    c.rawRefs = {};
    const config: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) (k in requires ? c.rawRefs : config)[k] = v;
    c.config = config;
  }

  // 4. References between instances.
  for (const c of ordered) {
    if (c.rawRefs === undefined) continue;
    c.refs = {};
    for (const [key, spec] of Object.entries(c.plugin!.requires ?? {})) {
      const at: ConfigPath = ["plugins", c.name, "with", key];
      c.refs[key] = resolveRef(c, key, spec, c.rawRefs[key], at, candidates, ordered, fail);
    }
  }
  const buildOrder = orderInstances(ordered, fail);

  // 5. Steps. A step waits for every step named in the config of an instance it uses.
  for (const c of ordered) {
    for (const ref of c.enabled ? (c.stepRefs ?? []) : []) {
      if (!(ref.step in stepDocs)) fail("BDC_UNKNOWN_STEP", ref.at, `no step named "${ref.step}"`, choicesHint(ref.step, Object.keys(stepDocs), "steps"));
      else if (stepDocs[ref.step]!.enabled === false) fail("BDC_REF_DISABLED", ref.at, `step "${ref.step}" is switched off`, `enable it, or change ${formatPath(ref.at)}`);
    }
  }
  const impliedNeeds = (roots: ReadonlyArray<string>): string[] => {
    const seen = new Set<string>();
    const out = new Set<string>();
    const walk = (name: string) => {
      if (seen.has(name)) return;
      seen.add(name);
      const c = candidates.get(name);
      for (const ref of c?.stepRefs ?? []) if (ref.step in stepDocs && stepDocs[ref.step]!.enabled !== false) out.add(ref.step);
      for (const r of Object.values(c?.refs ?? {})) for (const x of [r ?? []].flat()) walk(x);
    };
    roots.forEach(walk);
    return [...out];
  };
  const steps = resolveSteps(stepDocs, candidates, wf.run?.concurrency ?? DEFAULT_CONCURRENCY, wf.run?.on_error ?? "continue", fail, impliedNeeds);
  if (errors.length === 0 && steps.length === 0 && options.for === undefined) {
    fail("BDC_NO_STEPS", ["steps"], "the workflow has no enabled step", "add a step under `steps:` (see README, \"Workflow files\")");
  }

  // 6. What the steps use, and the plugins' own checks.
  const used = new Set<string>();
  const visit = (name: string) => {
    if (used.has(name)) return;
    used.add(name);
    for (const ref of Object.values(candidates.get(name)?.refs ?? {})) for (const r of [ref ?? []].flat()) visit(r);
  };
  if (options.for !== undefined) {
    for (const name of options.for) if (candidates.get(name)?.enabled === true) visit(name);
  } else {
    for (const s of steps) {
      visit(s.instance);
      if (s.forEach?.kind === "dataset") visit(s.forEach.name);
    }
  }
  if (errors.length === 0 && options.preflight !== false) {
    const env = options.env ?? process.env;
    const shared = {
      env,
      assumeYes: options.assumeYes === true,
      forRun: options.forRun === true,
      workflow: path.relative(loaded.cwd, loaded.main.file) || loaded.main.file,
      ...(options.progress === undefined ? {} : { progress: options.progress }),
    };
    // One after the other: a check that does work (a download with --yes) leaves it done for the next.
    for (const c of ordered.filter((c) => used.has(c.name))) {
      if (c.plugin?.preflight === undefined) continue;
      try {
        const ctx: PreflightContext = { instance: c.name, baseDir: c.baseDir, ...shared };
        for (const p of await c.plugin.preflight(c.config, ctx)) {
          const at: ConfigPath = ["plugins", c.name, "with", ...(p.path ?? [])];
          errors.push(new BdcError({ code: p.code ?? "BDC_PREFLIGHT", message: p.message, hint: p.hint, path: at, origin: prov.origin(at), plugin: c.plugin.id }));
        }
      } catch (e) {
        errors.push(...toBdcErrors(e).map((err) => err.with({ code: "BDC_PREFLIGHT", plugin: c.plugin!.id, path: ["plugins", c.name] })));
      }
    }
  }
  if (errors.length > 0) throw new BdcErrors(sortErrors(errors));

  const instances = new Map<string, ResolvedInstance>();
  for (const c of buildOrder) {
    instances.set(c.name, { name: c.name, plugin: c.plugin!, source: c.source!, config: c.config, refs: c.refs!, baseDir: c.baseDir });
  }
  const name = wf.name ?? path.basename(loaded.main.file).replace(/\.ya?ml$/, "");
  const concurrency = wf.run?.concurrency ?? DEFAULT_CONCURRENCY;
  const onError = wf.run?.on_error ?? "continue";
  const document = resolvedDocument(loaded.value, name, concurrency, onError, ordered, stepDocs, steps);
  return { name, file: loaded.main.file, document, instances, steps, concurrency, onError, used };
}

function refFields(requires: Record<string, RefSpec>): Schema.Struct.Fields {
  const fields: Record<string, Schema.Struct.Fields[string]> = {};
  for (const [key, spec] of Object.entries(requires)) {
    const doc = spec.description ?? `${spec.many === true ? "names of" : "name of"} ${spec.slot} instance${spec.many === true ? "s" : ""}`;
    fields[key] = Schema.optional(spec.many === true ? Schema.Array(Schema.String).annotations({ description: doc }) : Schema.String.annotations({ description: doc }));
  }
  return fields;
}

type Fail = (code: string, path: ConfigPath, message: string, hint?: string, at?: "key" | "value") => void;

function resolveRef(
  owner: Candidate,
  key: string,
  spec: RefSpec,
  raw: unknown,
  at: ConfigPath,
  candidates: ReadonlyMap<string, Candidate>,
  ordered: ReadonlyArray<Candidate>,
  fail: Fail,
): string | ReadonlyArray<string> | undefined {
  const ofSlot = ordered.filter((c) => c.slot === spec.slot && c.name !== owner.name);
  const enabledOfSlot = ofSlot.filter((c) => c.enabled).map((c) => c.name);
  const given = raw ?? spec.default;
  const explicit = raw !== undefined;
  const check = (name: string, path: ConfigPath, dropDisabled: boolean): string | undefined => {
    const target = candidates.get(name);
    if (target === undefined) {
      fail("BDC_UNKNOWN_INSTANCE", path, `no instance named "${name}"`, choicesHint(name, enabledOfSlot, `enabled ${spec.slot} instances`));
      return undefined;
    }
    if (target.slot !== spec.slot) {
      fail("BDC_REF_SLOT", path, `"${name}" is a ${target.slot} instance, but ${key} needs a ${spec.slot} instance`, choicesHint(name, enabledOfSlot, `enabled ${spec.slot} instances`));
      return undefined;
    }
    if (!target.enabled) {
      if (!dropDisabled) fail("BDC_REF_DISABLED", path, `"${name}" is switched off (enabled: false)`, `enable it, or point ${key} at one of: ${enabledOfSlot.join(", ") || "(none)"}`);
      return undefined;
    }
    return name;
  };

  if (spec.many === true) {
    const names = given === undefined ? enabledOfSlot : [given as string | ReadonlyArray<string>].flat();
    // A list keeps working when one of its members is switched off: that is how an
    // ablation drops an agent (`--set plugins.claude.enabled=false`).
    const kept = names.map((n, i) => check(n, explicit ? [...at, i] : at, true)).filter((n): n is string => n !== undefined);
    if (kept.length === 0 && spec.optional !== true) {
      fail("BDC_MISSING_INSTANCE", at, `${key} needs at least one enabled ${spec.slot} instance`, `add a plugin instance with \`use: ${spec.slot}/...\` (\`bdc plugins --slot ${spec.slot}\` lists them)`, "key");
    }
    return kept;
  }
  if (given !== undefined) return check(given as string, at, false);
  if (enabledOfSlot.length === 1) return enabledOfSlot[0];
  if (spec.optional === true) return undefined;
  if (enabledOfSlot.length === 0) {
    fail("BDC_MISSING_INSTANCE", at, `${owner.name} (${owner.plugin!.id}) requires a ${spec.slot} instance and the workflow has none`, `add one under plugins: with \`use: ${spec.slot}/...\` (\`bdc plugins --slot ${spec.slot}\` lists them)`, "key");
  } else {
    fail("BDC_AMBIGUOUS_INSTANCE", at, `several ${spec.slot} instances could be meant for ${key}: ${enabledOfSlot.join(", ")}`, `set plugins.${owner.name}.with.${key} to one of them`, "key");
  }
  return undefined;
}

/** Dependencies before dependents; reports reference cycles. */
function orderInstances(ordered: ReadonlyArray<Candidate>, fail: Fail): Candidate[] {
  const byName = new Map(ordered.filter((c) => c.refs !== undefined).map((c) => [c.name, c]));
  const deps = (c: Candidate) => Object.values(c.refs ?? {}).flatMap((r) => [r ?? []].flat()).flatMap((r) => byName.get(r) ?? []);
  return topologicalOrder([...byName.values()], deps, (cycle) =>
    fail("BDC_REF_CYCLE", ["plugins", cycle[0]!.name], `instances reference each other in a cycle: ${cycle.map((c) => c.name).join(" -> ")}`, "break the cycle: an instance cannot (indirectly) require itself"),
  );
}

/** Depth-first topological order; each cycle is reported once, starting where it was entered. */
function topologicalOrder<T>(nodes: ReadonlyArray<T>, deps: (n: T) => ReadonlyArray<T>, onCycle: (cycle: T[]) => void): T[] {
  const out: T[] = [];
  const state = new Map<T, "visiting" | "done">();
  const visit = (n: T, trail: T[]): void => {
    if (state.get(n) === "done") return;
    if (state.get(n) === "visiting") return onCycle([...trail.slice(trail.indexOf(n)), n]);
    state.set(n, "visiting");
    for (const d of deps(n)) visit(d, [...trail, n]);
    state.set(n, "done");
    out.push(n);
  };
  for (const n of nodes) visit(n, []);
  return out;
}

function resolveSteps(
  docs: Readonly<Record<string, StepDoc>>,
  candidates: ReadonlyMap<string, Candidate>,
  runConcurrency: number,
  runOnError: "continue" | "stop",
  fail: Fail,
  impliedNeeds: (instances: ReadonlyArray<string>) => string[],
): ResolvedStep[] {
  const enabled = Object.entries(docs).filter(([, d]) => d.enabled !== false);
  const stepNames = Object.keys(docs);
  const instancesOf = (slot: string) => [...candidates.values()].filter((c) => c.slot === slot).map((c) => c.name);
  const steps = new Map<string, ResolvedStep>();
  for (const [name, doc] of enabled) {
    const instance = doc.run ?? name;
    const runPath = doc.run === undefined ? ["steps", name] : ["steps", name, "run"];
    const target = candidates.get(instance);
    if (target === undefined) {
      fail("BDC_UNKNOWN_INSTANCE", runPath, `step "${name}" runs "${instance}", which is not a plugin instance`, choicesHint(instance, instancesOf("step"), "step instances"), doc.run === undefined ? "key" : "value");
    } else if (target.plugin === undefined) {
      // Its plugin did not load: that error is already reported, at its `use:`.
    } else if (target.slot !== "step") {
      fail("BDC_REF_SLOT", runPath, `"${instance}" is a ${target.slot} instance; a step runs a step instance (use: step/...)`, choicesHint(instance, instancesOf("step"), "step instances"));
    } else if (!target.enabled) {
      fail("BDC_REF_DISABLED", runPath, `step "${name}" runs "${instance}", which is switched off`, `enable the instance, or disable the step too (steps.${name}.enabled: false)`);
    }
    let forEach: ResolvedStep["forEach"];
    if (doc.for_each !== undefined && typeof doc.for_each !== "string") {
      const { step: src, items } = doc.for_each;
      const at = ["steps", name, "for_each", "step"];
      if (!(src in docs)) fail("BDC_UNKNOWN_STEP", at, `no step named "${src}"`, choicesHint(src, stepNames, "steps"));
      else if (docs[src]!.enabled === false) fail("BDC_REF_DISABLED", at, `step "${src}" is switched off`, `enable it, or disable steps.${name} too`);
      forEach = { kind: "step", name: src, items };
    } else if (doc.for_each !== undefined) {
      const src = doc.for_each;
      const at = ["steps", name, "for_each"];
      if (src in docs) {
        if (docs[src]!.enabled === false) fail("BDC_REF_DISABLED", at, `step "${src}" is switched off`, `enable it, or disable steps.${name} too`);
        forEach = { kind: "step", name: src };
      } else {
        const c = candidates.get(src);
        if (c === undefined) fail("BDC_UNKNOWN_INSTANCE", at, `"${src}" is neither a step nor a dataset instance`, choicesHint(src, [...stepNames, ...instancesOf("dataset")], "steps and dataset instances"));
        else if (c.plugin !== undefined && c.slot !== "dataset") fail("BDC_REF_SLOT", at, `"${src}" is a ${c.slot} instance; for_each takes a dataset instance or a step`, choicesHint(src, [...stepNames, ...instancesOf("dataset")], "steps and dataset instances"));
        else if (!c.enabled) fail("BDC_REF_DISABLED", at, `dataset "${src}" is switched off`, "enable it, or iterate over another dataset");
        forEach = { kind: "dataset", name: src };
      }
    }
    const needs = [...(doc.needs ?? [])];
    needs.forEach((n, i) => {
      const at = ["steps", name, "needs", i];
      if (!(n in docs)) fail("BDC_UNKNOWN_STEP", at, `no step named "${n}"`, choicesHint(n, stepNames, "steps"));
      else if (docs[n]!.enabled === false) fail("BDC_REF_DISABLED", at, `step "${n}" is switched off`, `enable it, or remove it from steps.${name}.needs`);
    });
    if (forEach?.kind === "step" && !needs.includes(forEach.name)) needs.push(forEach.name);
    for (const n of impliedNeeds([instance, ...(forEach?.kind === "dataset" ? [forEach.name] : [])])) if (n !== name && !needs.includes(n)) needs.push(n);
    steps.set(name, {
      name,
      instance,
      forEach,
      needs,
      concurrency: doc.concurrency ?? runConcurrency,
      onError: doc.on_error ?? runOnError,
    });
  }
  return topologicalOrder([...steps.values()], (s) => s.needs.flatMap((n) => steps.get(n) ?? []), (cycle) =>
    fail("BDC_STEP_CYCLE", ["steps", cycle[0]!.name], `steps depend on each other in a cycle: ${cycle.map((s) => s.name).join(" -> ")}`, "remove one of these dependencies (needs / for_each)", "key"),
  );
}

function resolvedDocument(
  value: Record<string, unknown>,
  name: string,
  concurrency: number,
  onError: string,
  ordered: ReadonlyArray<Candidate>,
  stepDocs: Readonly<Record<string, StepDoc>>,
  steps: ReadonlyArray<ResolvedStep>,
): Record<string, unknown> {
  const plugins: Record<string, unknown> = {};
  for (const c of ordered) {
    // Paths are printed absolute: each was relative to its own file, and the resolved
    // document must mean the same wherever it is read (--print, resolved.yaml).
    const isPath = c.doc.use.startsWith(".") || path.isAbsolute(c.doc.use);
    const entry: Record<string, unknown> = { use: isPath && c.source !== undefined ? c.source : c.doc.use };
    if (c.enabled && c.config !== undefined) {
      const encoded = c.plugin?.config === undefined ? {} : (encodeConfig(c.plugin.config, c.config) as Record<string, unknown>);
      const refs = Object.fromEntries(Object.entries(c.refs ?? {}).filter(([, v]) => v !== undefined));
      const withBlock = { ...encoded, ...refs };
      if (Object.keys(withBlock).length > 0) entry.with = withBlock;
    } else if (c.doc.with !== undefined) {
      entry.with = c.doc.with;
    }
    if (!c.enabled) entry.enabled = false;
    plugins[c.name] = entry;
  }
  const resolvedSteps: Record<string, unknown> = {};
  const byName = new Map(steps.map((s) => [s.name, s]));
  for (const [stepName, doc] of Object.entries(stepDocs)) {
    const s = byName.get(stepName);
    if (s === undefined) {
      resolvedSteps[stepName] = { ...doc, enabled: false };
      continue;
    }
    resolvedSteps[stepName] = {
      run: s.instance,
      ...(doc.for_each === undefined ? {} : { for_each: doc.for_each }),
      ...(s.needs.length === 0 ? {} : { needs: s.needs }),
      concurrency: s.concurrency,
      on_error: s.onError,
    };
  }
  const out: Record<string, unknown> = { name };
  if (isPlainObject(value) && typeof value.description === "string") out.description = value.description;
  out.run = { concurrency, on_error: onError };
  out.plugins = plugins;
  out.steps = resolvedSteps;
  return out;
}

function slotGuess(use: string): string {
  const i = use.indexOf("/");
  return i > 0 && !use.startsWith(".") && !use.startsWith("@") ? use.slice(0, i) : "";
}

/** File order, then line order: the order a user reads and fixes them. */
function sortErrors(errors: BdcError[]): BdcError[] {
  const key = (e: BdcError) => (e.origin?.kind === "file" ? [e.origin.file, e.origin.line, e.origin.col] : ["~", 0, 0]) as [string, number, number];
  return errors
    .map((e, i) => ({ e, i, k: key(e) }))
    .sort((a, b) => a.k[0].localeCompare(b.k[0]) || a.k[1] - b.k[1] || a.k[2] - b.k[2] || a.i - b.i)
    .map((x) => x.e);
}
