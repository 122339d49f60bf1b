import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { testPlugin } from "@bdc/core/testing";
import promptsPlugin from "../prompts-plugin.ts";
import { promptLibrary, renderTemplate, variablesOf } from "./templates.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-prompts-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("the built-in templates exist and declare their variables", () => {
  const lib = promptLibrary();
  assert.deepEqual(lib.names(), ["code-from-thoughts", "expand-thought", "lats-expand", "pair-p2t", "pair-t2s", "rap-answer", "rap-self-eval", "rap-subquestion", "refine-summary", "reflection", "regenerate-thought", "repair-with-reflection", "repair-with-trace", "zero-shot"]);
  assert.deepEqual(variablesOf(lib.template("expand-thought")), ["problem", "thoughts", "width"]);
  assert.deepEqual(variablesOf(lib.template("pair-p2t")), ["problem"]);
  assert.deepEqual(variablesOf(lib.template("pair-t2s")), ["problem", "clues", "format_instructions"]);
  const text = lib.render("expand-thought", { problem: "Add two numbers.", thoughts: "(none yet)", width: 3 });
  assert.match(text, /Add two numbers\.[\s\S]*\(none yet\)[\s\S]*Give 3 different/);
});

test("a variable the caller does not give is an error, not an empty hole", () => {
  assert.throws(() => renderTemplate("Hi {{name}} {{ other }}", { name: "x" }, "greeting"), {
    code: "BDC_PROMPT_VARIABLE",
    message: 'prompt "greeting" uses {{other}}, which the caller does not provide',
  });
  assert.throws(() => promptLibrary().template("nope"), { code: "BDC_PROMPT_UNKNOWN" });
});

test("single templates and whole folders are replaced from YAML", () => {
  fs.writeFileSync(path.join(tmp, "zero-shot.md"), "Solve: {{problem}}");
  const lib = promptLibrary({ overrides: { "zero-shot": path.join(tmp, "zero-shot.md") } });
  assert.equal(lib.render("zero-shot", { problem: "p" }), "Solve: p");
  assert.match(lib.template("reflection"), /Reflect on why/);
  const folder = promptLibrary({ dir: tmp });
  assert.deepEqual(folder.names(), ["zero-shot"]);
});

testPlugin(promptsPlugin, {
  valid: [{}, { templates: { "zero-shot": "zs.md" } }],
  invalid: [{ config: { templates: { x: 1 } }, code: "BDC_CONFIG_TYPE", path: "templates.x" }],
});
