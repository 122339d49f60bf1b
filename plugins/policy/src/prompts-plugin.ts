import * as fs from "node:fs";
import { Schema } from "effect";
import { definePlugin, FilePath, optional } from "@bdc/core";
import { promptLibrary, type PromptLibrary } from "./prompts/templates.ts";

declare module "@bdc/core" {
  interface SlotTypes {
    prompts: PromptLibrary;
  }
}

/** The prompt templates agents use; swap one file or the whole folder from YAML. */
export default definePlugin({
  id: "prompts/templates",
  version: "0.1.0",
  description: "Prompt templates (Markdown with {{variables}}): the built-in ones, a folder of yours, or single files replaced",
  config: Schema.Struct({
    dir: optional(FilePath, "folder of <name>.md templates replacing the built-in folder"),
    templates: optional(Schema.Record({ key: Schema.String, value: FilePath }), "single templates replaced: name -> file"),
  }),
  preflight(config) {
    const problems = [];
    if (config.dir !== undefined && !fs.existsSync(config.dir)) problems.push({ code: "BDC_FILE_NOT_FOUND", path: ["dir"], message: `no such folder: ${config.dir}` });
    for (const [name, file] of Object.entries(config.templates ?? {})) {
      if (!fs.existsSync(file)) problems.push({ code: "BDC_FILE_NOT_FOUND", path: ["templates", name], message: `no such file: ${file}` });
    }
    return problems;
  },
  make: (config): PromptLibrary => promptLibrary({ ...(config.dir === undefined ? {} : { dir: config.dir }), ...(config.templates === undefined ? {} : { overrides: config.templates }) }),
});
