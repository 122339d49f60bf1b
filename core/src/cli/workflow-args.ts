/** Flags shared by the commands that take a workflow, and turning them into a resolved workflow. */
import * as path from "node:path";
import { PluginRegistry } from "../registry.ts";
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
    ...(o.quiet === true ? {} : { progress: { write: io.err, isTTY: io.isTTY } }),
  });
  return { workflow, registry };
}
