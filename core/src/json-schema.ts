/**
 * JSON Schemas for editors (yaml-language-server `$schema`) and the `describe` command: the
 * workflow format with every registered plugin's `with:` block, keyed on `use:`.
 */
import { JSONSchema, Schema } from "effect";
import type { AnyPlugin, RefSpec } from "./plugin.ts";
import { NAME_PATTERN, WorkflowSchema } from "./workflow/format.ts";

type Json = Record<string, unknown>;

export interface ConfigKeyDoc {
  readonly key: string;
  readonly type: string;
  readonly required: boolean;
  readonly default?: unknown;
  readonly description?: string;
  /** For references to other instances: the slot they must fill. */
  readonly ref?: { readonly slot: string; readonly many: boolean; readonly optional: boolean; readonly default?: string | ReadonlyArray<string> };
}

/** JSON Schema of a plugin's `with:` block (config keys and references); `$defs` go to `defs`. */
export function withBlockSchema(plugin: AnyPlugin, defs: Json = {}): Json {
  const made = JSONSchema.make(plugin.config ?? Schema.Struct({})) as unknown as Json;
  Object.assign(defs, (made.$defs as Json | undefined) ?? {});
  const { $schema: _s, $defs: _d, ...schema } = made;
  const properties = { ...((schema.properties as Json | undefined) ?? {}) };
  for (const [key, spec] of Object.entries(plugin.requires ?? {})) properties[key] = refSchema(spec);
  return { ...schema, type: "object", properties, additionalProperties: false, ...(plugin.description ? { description: plugin.description } : {}) };
}

function refSchema(spec: RefSpec): Json {
  const description = `${spec.description ?? ""}${spec.description ? " " : ""}(${spec.many === true ? "names of" : "name of"} \`${spec.slot}\` instance${spec.many === true ? "s" : ""}${spec.many === true ? "; default: all enabled ones" : spec.optional === true ? "; optional" : ""})`;
  const name = { type: "string", pattern: NAME_PATTERN.source };
  return spec.many === true
    ? { type: "array", items: name, description, ...(spec.default === undefined ? {} : { default: spec.default }) }
    : { ...name, description, ...(spec.default === undefined ? {} : { default: spec.default }) };
}

/** Flat docs of every key of a plugin's `with:` block, for `bdc describe`. */
export function configKeyDocs(plugin: AnyPlugin): ConfigKeyDoc[] {
  const defs: Json = {};
  const schema = withBlockSchema(plugin, defs);
  const required = new Set((schema.required as string[] | undefined) ?? []);
  const props = schema.properties as Record<string, Json>;
  return Object.entries(props).map(([key, prop]) => {
    const spec = plugin.requires?.[key];
    return {
      key,
      type: typeName(prop, defs),
      required: spec === undefined ? required.has(key) : spec.optional !== true && spec.many !== true && spec.default === undefined,
      ...(prop.default === undefined ? {} : { default: prop.default }),
      ...(typeof prop.description === "string" ? { description: prop.description } : {}),
      ...(spec === undefined ? {} : { ref: { slot: spec.slot, many: spec.many === true, optional: spec.optional === true, ...(spec.default === undefined ? {} : { default: spec.default }) } }),
    };
  });
}

function typeName(s: Json, defs: Json): string {
  if (typeof s.$ref === "string") {
    const def = defs[s.$ref.replace("#/$defs/", "")] as Json | undefined;
    const base = def === undefined ? s.$ref : typeName(def, defs);
    return constraints(s, base);
  }
  if (Array.isArray(s.allOf) && s.allOf.length > 0) return (s.allOf as Json[]).map((x) => typeName(x, defs)).join(" & ");
  if (Array.isArray(s.enum)) return s.enum.map((e) => JSON.stringify(e)).join(" | ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  for (const k of ["anyOf", "oneOf"]) if (Array.isArray(s[k])) return (s[k] as Json[]).map((x) => typeName(x, defs)).join(" | ");
  if (s.type === "array") return `list of ${s.items === undefined ? "any" : typeName(s.items as Json, defs)}`;
  if (s.type === "object") return "mapping";
  if (s.type === "string" && s.title === "path") return "path";
  if (typeof s.type === "string") return constraints(s, s.type);
  return "any";
}

function constraints(s: Json, base: string): string {
  const c: string[] = [];
  if (s.minimum !== undefined) c.push(`>= ${s.minimum}`);
  if (s.exclusiveMinimum !== undefined) c.push(`> ${s.exclusiveMinimum}`);
  if (s.maximum !== undefined) c.push(`<= ${s.maximum}`);
  if (s.exclusiveMaximum !== undefined) c.push(`< ${s.exclusiveMaximum}`);
  if (s.minLength !== undefined) c.push(`length >= ${s.minLength}`);
  return c.length === 0 ? base : `${base} (${c.join(", ")})`;
}

/** The workflow format with per-plugin `with:` schemas (editors autocomplete and check them). */
export function workflowJsonSchema(plugins: ReadonlyArray<AnyPlugin>): Json {
  const made = JSONSchema.make(WorkflowSchema) as unknown as Json;
  const defs: Json = { ...((made.$defs as Json | undefined) ?? {}) };
  const properties = { ...(made.properties as Json) };
  const sorted = [...plugins].sort((a, b) => a.id.localeCompare(b.id));
  // `use` is not required here: overlays set single keys of instances the base declares
  // (the kernel checks the merged document).
  const instance = {
    type: "object",
    additionalProperties: false,
    properties: {
      use: {
        description: "a registered plugin id (<slot>/<name>), a path to a module (./my-plugin.ts), or a package name",
        anyOf: [{ enum: sorted.map((p) => p.id) }, { type: "string", pattern: "^(\\.|/|@)" }],
      },
      with: { type: "object", description: "the plugin's config and references to other instances (`bdc describe <id>`)" },
      enabled: { type: "boolean", description: "false switches the instance off", default: true },
    },
    allOf: sorted.map((p) => ({
      if: { properties: { use: { const: p.id } }, required: ["use"] },
      then: { properties: { with: withBlockSchema(p, defs) } },
    })),
  };
  properties.plugins = {
    type: "object",
    description: "plugin instances by name: {use, with, enabled}",
    propertyNames: { pattern: NAME_PATTERN.source },
    additionalProperties: instance,
  };
  const steps = properties.steps as Json;
  properties.steps = { ...steps, propertyNames: { pattern: NAME_PATTERN.source } };
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    title: "BDC workflow",
    description: "A BDC workflow or overlay (see README: Workflow files). Generated by `pnpm bdc schema`.",
    type: "object",
    additionalProperties: false,
    properties,
    $defs: defs,
  };
}
