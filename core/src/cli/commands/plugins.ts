import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError } from "../../errors.ts";
import { configKeyDocs, workflowJsonSchema } from "../../json-schema.ts";
import { slotOf } from "../../plugin.ts";
import { PluginRegistry } from "../../registry.ts";
import { choicesHint } from "../../util/suggest.ts";
import type { CommandSpec, ParsedArgs } from "../args.ts";
import { printErrors, type Io } from "../output.ts";

export const pluginsCommand: CommandSpec = {
  name: "plugins",
  summary: "List the registered plugins: id, slot, version, description.",
  usage: "bdc plugins [--slot SLOT] [--json]",
  flags: {
    slot: { type: "string", value: "SLOT", description: "only plugins of this slot (policy, select, step, dataset, ...)" },
    json: { type: "boolean", description: "print JSON (one array of objects)" },
  },
};

export async function runPlugins(io: Io, args: ParsedArgs): Promise<number> {
  const registry = PluginRegistry.discover(io.cwd);
  const { plugins, errors } = await registry.loadAll();
  const slot = args.flags.slot as string | undefined;
  const rows = plugins
    .filter(({ entry }) => slot === undefined || entry.slot === slot)
    .map(({ entry, plugin }) => ({ id: plugin.id, slot: entry.slot, version: plugin.version, description: plugin.description, package: entry.pkg }));
  const slots = [...new Set(registry.entries().map((e) => e.slot))].sort();
  if (slot !== undefined && !slots.includes(slot)) {
    throw new BdcError({ code: "BDC_USAGE", message: `no plugins of slot "${slot}"`, hint: choicesHint(slot, slots, "slots with plugins") });
  }
  if (args.flags.json === true) io.out(`${JSON.stringify(rows, null, 2)}\n`);
  else if (rows.length === 0) io.err("no plugins registered\n");
  else {
    const w = (k: "id" | "slot" | "version") => Math.max(k.length, ...rows.map((r) => r[k].length));
    const line = (r: { id: string; slot: string; version: string; description: string }) =>
      `${r.id.padEnd(w("id"))}  ${r.slot.padEnd(w("slot"))}  ${r.version.padEnd(w("version"))}  ${r.description}\n`;
    io.out(line({ id: "ID", slot: "SLOT", version: "VERSION", description: "DESCRIPTION" }));
    for (const r of rows) io.out(line(r));
  }
  if (errors.length > 0) printErrors(io, errors);
  return errors.length > 0 ? 1 : 0;
}

export const describeCommand: CommandSpec = {
  name: "describe",
  summary: "Show a plugin's config keys (types, defaults, docs) and the instances it requires.",
  usage: "bdc describe <plugin-id | ./path/to/plugin.ts> [--json]",
  minPositionals: 1,
  maxPositionals: 1,
  flags: { json: { type: "boolean", description: "print JSON" } },
};

export async function runDescribe(io: Io, args: ParsedArgs): Promise<number> {
  const registry = PluginRegistry.discover(io.cwd);
  const { plugin, source } = await registry.resolve(args.positionals[0]!, io.cwd);
  const keys = configKeyDocs(plugin);
  if (args.flags.json === true) {
    io.out(`${JSON.stringify({ id: plugin.id, slot: slotOf(plugin.id), version: plugin.version, description: plugin.description, source, config: keys }, null, 2)}\n`);
    return 0;
  }
  io.out(`${plugin.id}@${plugin.version}  (slot ${slotOf(plugin.id)}, from ${source})\n${plugin.description}\n\n`);
  const config = keys.filter((k) => k.ref === undefined);
  const refs = keys.filter((k) => k.ref !== undefined);
  if (config.length === 0) io.out("Config: (none)\n");
  else {
    io.out("Config (with:):\n");
    for (const k of config) {
      const dflt = k.required ? "required" : k.default === undefined ? "optional" : `default ${JSON.stringify(k.default)}`;
      io.out(`  ${k.key.padEnd(18)} ${k.type.padEnd(22)} ${dflt.padEnd(18)} ${k.description ?? ""}\n`);
    }
  }
  if (refs.length > 0) {
    io.out("\nRequires (instance names in with:):\n");
    for (const k of refs) {
      const r = k.ref!;
      const how = r.many ? `list of ${r.slot} (default: all enabled)` : `${r.slot}${r.optional ? " (optional)" : ""}`;
      io.out(`  ${k.key.padEnd(18)} ${how.padEnd(41)} ${k.description?.replace(/ \(names? of .*\)$/, "") ?? ""}\n`);
    }
  }
  return 0;
}

export const schemaCommand: CommandSpec = {
  name: "schema",
  summary: "Print the JSON Schema of workflow files, including every registered plugin's config.",
  usage: "bdc schema [--out FILE]",
  flags: { out: { type: "string", value: "FILE", description: "write to FILE instead of standard output" } },
  details: "Editors with yaml-language-server check and complete workflows that start with\n  # yaml-language-server: $schema=<path to workflow.schema.json>",
};

export async function runSchema(io: Io, args: ParsedArgs): Promise<number> {
  const registry = PluginRegistry.discover(io.cwd);
  const { plugins, errors } = await registry.loadAll();
  if (errors.length > 0) {
    printErrors(io, errors);
    return 1;
  }
  const text = `${JSON.stringify(workflowJsonSchema(plugins.map((p) => p.plugin)), null, 2)}\n`;
  const out = args.flags.out as string | undefined;
  if (out === undefined) io.out(text);
  else {
    const file = path.resolve(io.cwd, out);
    try {
      fs.writeFileSync(file, text);
    } catch (cause) {
      throw new BdcError({ code: "BDC_USAGE", message: `cannot write ${out}: ${(cause as Error).message}`, cause });
    }
    io.err(`wrote ${out}\n`);
  }
  return 0;
}
