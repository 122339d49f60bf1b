/** Flags shared by the commands that take a workflow, and turning them into a resolved workflow. */
import * as path from "node:path";
import { instantiate } from "../engine/instances.ts";
import { BdcError } from "../errors.ts";
import { PluginRegistry } from "../registry.ts";
import { choicesHint } from "../util/suggest.ts";
import { loadWorkflow } from "../workflow/load.ts";
import { resolveWorkflow, type ResolvedWorkflow } from "../workflow/resolve.ts";
import type { FlagSpec, ParsedArgs } from "./args.ts";
import type { Io } from "./output.ts";

export const workflowFlags: Record<string, FlagSpec> = {
  overlay: { type: "string", multiple: true, short: "o", value: "FILE", description: "merge an overlay file onto the workflow (applied in order)" },
  set: { type: "string", multiple: true, short: "s", value: "PATH=VALUE", description: "override one value, e.g. plugins.select.with.c=2 (VALUE is YAML)" },
};

export interface Invocation {
  readonly workflow: string;
  readonly overlays: ReadonlyArray<string>;
  readonly sets: ReadonlyArray<string>;
}

export function invocationOf(io: Io, workflow: string, args: ParsedArgs): Invocation {
  return {
    workflow: path.resolve(io.cwd, workflow),
    overlays: ((args.flags.overlay as string[] | undefined) ?? []).map((o) => path.resolve(io.cwd, o)),
    sets: (args.flags.set as string[] | undefined) ?? [],
  };
}

export interface PreflightOptions {
  /** Run the plugins' preflight checks (default true). */
  readonly preflight?: boolean;
  /** `bdc run --yes`: preflight checks may do what they offer (download a model); default false. */
  readonly assumeYes?: boolean;
  /** The resolution is for `bdc run` (plugins may do work their config agreed to). */
  readonly forRun?: boolean;
  /** No progress output from such work (`--quiet`). */
  readonly quiet?: boolean;
}

export async function resolveInvocation(io: Io, inv: Invocation, o: PreflightOptions = {}): Promise<{ workflow: ResolvedWorkflow; registry: PluginRegistry }> {
  const loaded = loadWorkflow({ file: inv.workflow, overlays: inv.overlays, sets: inv.sets, cwd: io.cwd });
  const registry = PluginRegistry.discover(path.dirname(inv.workflow));
  const workflow = await resolveWorkflow(loaded, {
    registry,
    preflight: o.preflight !== false,
    env: io.env,
    assumeYes: o.assumeYes === true,
    forRun: o.forRun === true,
    ...(o.quiet === true ? {} : { progress: { write: io.err, isTTY: io.isTTY } }),
  });
  return { workflow, registry };
}

/**
 * One instance of a workflow, built with what it references, for commands that use a configured
 * instance outside a run (`bdc ask`, `bdc hypernet export`): only that instance has to be usable,
 * not the workflow's steps. `accept` says whether the instance's plugin id is the kind wanted;
 * otherwise the error lists the instances that are (`what`, e.g. "policy instances").
 */
export async function instanceFromWorkflow<T>(io: Io, file: string, args: ParsedArgs, name: string, want: { readonly accept: (pluginId: string) => boolean; readonly what: string }): Promise<{ impl: T; close: () => Promise<void> }> {
  const inv = invocationOf(io, file, args);
  const loaded = loadWorkflow({ file: inv.workflow, overlays: inv.overlays, sets: inv.sets, cwd: io.cwd });
  const workflow = await resolveWorkflow(loaded, { registry: PluginRegistry.discover(path.dirname(inv.workflow)), env: io.env, for: [name] });
  const inst = workflow.instances.get(name);
  if (inst === undefined || !want.accept(inst.plugin.id)) {
    const fitting = [...workflow.instances.values()].filter((i) => want.accept(i.plugin.id)).map((i) => i.name);
    throw new BdcError({ code: "BDC_UNKNOWN_INSTANCE", message: `no enabled ${want.what.replace(/s$/, "")} named "${name}" in ${file}`, hint: choicesHint(name, fitting, `enabled ${want.what}`) });
  }
  const instances = await instantiate(workflow, [name], {
    runDir: undefined,
    signal: new AbortController().signal,
    emit: () => {},
    log: (i, m) => io.err(`[${i}] ${m}\n`),
    warn: (i, m) => io.err(`warning: [${i}] ${m}\n`),
  });
  return { impl: instances.get<T>(name), close: () => instances.close() };
}
