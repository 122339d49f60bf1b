/**
 * Prompts are files: Markdown templates with `{{name}}` variables, under plugins/policy/prompts/
 * by default, each one replaceable from YAML (`prompts/templates` with `templates: {name: path}`
 * or a whole `dir`). A template that uses a variable the caller did not give is an error, not an
 * empty hole in a prompt.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError } from "@bdc/core";

export const BUILTIN_PROMPTS_DIR = path.resolve(import.meta.dirname, "..", "..", "prompts");

export interface PromptLibrary {
  /** Names of the available templates. */
  names(): string[];
  /** The template text. */
  template(name: string): string;
  /** The template with its variables filled in. */
  render(name: string, vars: Readonly<Record<string, string | number>>): string;
}

const VARIABLE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

export function variablesOf(template: string): string[] {
  return [...new Set([...template.matchAll(VARIABLE)].map((m) => m[1]!))];
}

export function renderTemplate(template: string, vars: Readonly<Record<string, string | number>>, name = "template"): string {
  const missing = variablesOf(template).filter((v) => vars[v] === undefined);
  if (missing.length > 0) {
    throw new BdcError({
      code: "BDC_PROMPT_VARIABLE",
      message: `prompt "${name}" uses ${missing.map((m) => `{{${m}}}`).join(", ")}, which the caller does not provide`,
      hint: `variables given: ${Object.keys(vars).sort().join(", ") || "(none)"}`,
    });
  }
  return template.replace(VARIABLE, (_, v: string) => String(vars[v]));
}

/** Templates from `dir` (default: the built-in ones), with single files overridden. */
export function promptLibrary(options: { dir?: string; overrides?: Readonly<Record<string, string>> } = {}): PromptLibrary {
  const dir = options.dir ?? BUILTIN_PROMPTS_DIR;
  const files = new Map<string, string>();
  if (options.dir === undefined || fs.existsSync(dir)) {
    for (const f of fs.readdirSync(dir)) if (f.endsWith(".md")) files.set(f.slice(0, -3), path.join(dir, f));
  }
  for (const [name, file] of Object.entries(options.overrides ?? {})) files.set(name, file);
  const cache = new Map<string, string>();
  const library: PromptLibrary = {
    names: () => [...files.keys()].sort(),
    template(name) {
      let text = cache.get(name);
      if (text === undefined) {
        const file = files.get(name);
        if (file === undefined) {
          throw new BdcError({ code: "BDC_PROMPT_UNKNOWN", message: `no prompt template "${name}"`, hint: `templates: ${library.names().join(", ")} (in ${dir})` });
        }
        try {
          text = fs.readFileSync(file, "utf8");
        } catch (cause) {
          throw new BdcError({ code: "BDC_FILE_NOT_FOUND", message: `prompt template "${name}": cannot read ${file}`, cause });
        }
        cache.set(name, text);
      }
      return text;
    },
    render: (name, vars) => renderTemplate(library.template(name), vars, name),
  };
  return library;
}
