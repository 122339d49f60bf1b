/**
 * workflow.schema.json (what editors use through `# yaml-language-server: $schema=`) is the
 * generated one, accepts the repo's workflows, and rejects what `bdc validate` rejects
 * statically (unknown keys, wrong types in a plugin's with: block, unknown plugin ids).
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { Ajv } from "ajv";
import { parse } from "yaml";
import { PluginRegistry, workflowJsonSchema } from "@bdc/core";

const root = path.resolve(import.meta.dirname, "..");
const committed = JSON.parse(fs.readFileSync(path.join(root, "workflow.schema.json"), "utf8"));

test("the committed workflow.schema.json is up to date", async () => {
  const { plugins, errors } = await PluginRegistry.discover(root).loadAll();
  assert.deepEqual(errors, []);
  assert.deepEqual(committed, JSON.parse(JSON.stringify(workflowJsonSchema(plugins.map((p) => p.plugin)))), "regenerate it: pnpm bdc schema --out workflow.schema.json");
});

const validate = new Ajv({ strict: false, allErrors: true }).compile(committed);
const workflows = fs.readdirSync(path.join(root, "workflows")).filter((f) => f.endsWith(".yaml"));

for (const file of workflows) {
  test(`workflows/${file} matches the schema and references it`, () => {
    const text = fs.readFileSync(path.join(root, "workflows", file), "utf8");
    assert.match(text, /^# yaml-language-server: \$schema=\.\.\/workflow\.schema\.json$/m);
    assert.ok(validate(parse(text)), JSON.stringify(validate.errors, null, 2));
  });
}

test("the schema rejects unknown keys, mistyped plugin config and unknown plugin ids", () => {
  const ok = { plugins: { p: { use: "dataset/jsonl", with: { path: "x.jsonl", limit: 3 } } }, steps: { s: { run: "p" } } };
  assert.ok(validate(ok), JSON.stringify(validate.errors));
  assert.ok(!validate({ ...ok, step: {} }), "unknown top-level key");
  assert.ok(!validate({ plugins: { p: { use: "dataset/jsonl", with: { path: 3 } } } }), "wrong type in with:");
  assert.ok(!validate({ plugins: { p: { use: "dataset/jsonl", with: { path: "x", lmit: 3 } } } }), "unknown key in with:");
  assert.ok(!validate({ plugins: { p: { use: "dataset/jsnl" } } }), "unknown plugin id");
  assert.ok(validate({ plugins: { p: { use: "./my-plugin.ts", with: { anything: 1 } } } }), "a plugin by path is not checked");
});
