import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { BdcError } from "./errors.ts";
import { PluginRegistry, pluginShapeProblems } from "./registry.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-registry-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const plugin = (id: string) => `export default { id: ${JSON.stringify(id)}, version: "1.0.0", description: "d", make: () => ({}) };\n`;
function writeFiles(dir: string, files: Record<string, string>): string {
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}

// A project that registers its own plugins, and depends on a package that registers more (one id twice).
const project = writeFiles(path.join(tmp, "project"), {
  "package.json": JSON.stringify({
    name: "p",
    bdc: { plugins: { "select/mine": "./plugins/mine.mjs", "select/dup": "./plugins/dup.mjs", "select/wrong-id": "./plugins/mine.mjs" } },
    dependencies: { "extra-pkg": "1.0.0", "single-pkg": "1.0.0" },
  }),
  "plugins/mine.mjs": plugin("select/mine"),
  "plugins/dup.mjs": plugin("select/dup"),
  "plugins/not-a-plugin.mjs": "export default { id: 'Bad Id' };\n",
  "plugins/throws.mjs": "throw new Error('boom at import');\n",
  "workflows/local.mjs": plugin("step/local"),
  "node_modules/extra-pkg/package.json": JSON.stringify({ name: "extra-pkg", bdc: { plugins: { "step/extra": "./extra.mjs", "select/dup": "./dup.mjs" } } }),
  "node_modules/extra-pkg/extra.mjs": plugin("step/extra"),
  "node_modules/extra-pkg/dup.mjs": plugin("select/dup"),
  "node_modules/single-pkg/package.json": JSON.stringify({ name: "single-pkg", bdc: { plugins: { "policy/single": "./single.mjs" } } }),
  "node_modules/single-pkg/single.mjs": plugin("policy/single"),
});
const registry = PluginRegistry.discover(path.join(project, "workflows"));

async function rejects(p: Promise<unknown>, code: string): Promise<BdcError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof BdcError, String(e));
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

describe("discover", () => {
  test("finds the project root above the start directory and every registered id", () => {
    assert.equal(registry.root, project);
    assert.deepEqual(registry.ids(), ["policy/single", "select/dup", "select/mine", "select/wrong-id", "step/extra"]);
    assert.deepEqual(registry.ids("step"), ["step/extra"]);
    assert.equal(registry.has("select/mine"), true);
    assert.equal(registry.has("select/nope"), false);
  });

  test("an id registered by two packages is a conflict when used", async () => {
    assert.deepEqual(registry.conflicts.get("select/dup")?.map((e) => e.pkg), ["(project)", "extra-pkg"]);
    const e = await rejects(registry.resolve("select/dup", project), "BDC_PLUGIN_CONFLICT");
    assert.match(e.message, /\(project\), extra-pkg/);
  });
});

describe("resolve", () => {
  const origin = { kind: "file", file: "w.yaml", line: 3, col: 10 } as const;

  test("a registered id", async () => {
    const r = await registry.resolve("step/extra", project);
    assert.equal(r.plugin.id, "step/extra");
    assert.equal(r.source, "extra-pkg");
  });

  test("a relative path is resolved from baseDir", async () => {
    const r = await registry.resolve("./local.mjs", path.join(project, "workflows"));
    assert.equal(r.plugin.id, "step/local");
    assert.equal(r.source, path.join(project, "workflows", "local.mjs"));
  });

  test("a missing module path is BDC_FILE_NOT_FOUND at the use: origin", async () => {
    const e = await rejects(registry.resolve("./nope.ts", path.join(project, "workflows"), origin), "BDC_FILE_NOT_FOUND");
    assert.equal(e.message, `plugin module not found: ./nope.ts (resolved to ${path.join(project, "workflows", "nope.ts")})`);
    assert.deepEqual(e.origin, origin);
    assert.match(e.hint ?? "", /relative `use:` path is resolved from the directory of the YAML file/);
  });

  test("an unknown id suggests the nearest id of the same slot and lists them", async () => {
    const e = await rejects(registry.resolve("select/mien", project, origin), "BDC_UNKNOWN_PLUGIN");
    assert.equal(e.message, 'unknown plugin "select/mien"');
    assert.match(e.hint ?? "", /^did you mean "select\/mine"\? registered select plugins: select\/dup, select\/mine, select\/wrong-id\n/);
    assert.deepEqual(e.origin, origin);
  });

  test("an unknown id of an unknown slot lists every registered id", async () => {
    const e = await rejects(registry.resolve("dataset/jsonl", project), "BDC_UNKNOWN_PLUGIN");
    assert.match(e.hint ?? "", /^registered plugins: policy\/single, select\/dup, select\/mine, select\/wrong-id, step\/extra\n/);
  });

  test("a package name: its single plugin; not installed is BDC_UNKNOWN_PLUGIN", async () => {
    const r = await registry.resolve("single-pkg", project);
    assert.equal(r.plugin.id, "policy/single");
    assert.equal(r.source, "single-pkg");
    const e = await rejects(registry.resolve("no-such-package", project), "BDC_UNKNOWN_PLUGIN");
    assert.equal(e.message, '"no-such-package" is neither a registered plugin id nor an installed package');
  });

  test("a package with several plugins must be used by id", async () => {
    const e = await rejects(registry.resolve("extra-pkg", project), "BDC_UNKNOWN_PLUGIN");
    assert.match(e.hint ?? "", /step\/extra, select\/dup/);
  });

  test("a module registered under another id than its own is BDC_PLUGIN_INVALID", async () => {
    const e = await rejects(registry.resolve("select/wrong-id", project), "BDC_PLUGIN_INVALID");
    assert.match(e.message, /registered as "select\/wrong-id" but its id is "select\/mine"/);
  });

  test("a module that is not a plugin, or that throws at import", async () => {
    const bad = await rejects(registry.resolve("./plugins/not-a-plugin.mjs", project), "BDC_PLUGIN_INVALID");
    assert.match(bad.message, /id must look like "<slot>\/<name>"/);
    const boom = await rejects(registry.resolve("./plugins/throws.mjs", project, origin), "BDC_PLUGIN_LOAD");
    assert.match(boom.message, /boom at import/);
    assert.deepEqual(boom.origin, origin);
  });

  test("loadAll imports everything and returns failures instead of throwing", async () => {
    const { plugins, errors } = await registry.loadAll();
    assert.deepEqual(plugins.map((p) => p.entry.id), ["policy/single", "select/mine", "step/extra"]);
    assert.deepEqual(errors.map((e) => e.code).sort(), ["BDC_PLUGIN_CONFLICT", "BDC_PLUGIN_INVALID"]);
  });
});

describe("pluginShapeProblems", () => {
  test("a valid plugin has none", () => {
    assert.deepEqual(pluginShapeProblems({ id: "a/b", version: "1.0.0", description: "d", make: () => ({}) }), []);
  });

  test("names every problem", () => {
    assert.deepEqual(pluginShapeProblems(null), ["expected an object, got null"]);
    const problems = pluginShapeProblems({ id: "AB", version: "one", description: " ", preflight: 1, requires: { x: {} } });
    assert.equal(problems.length, 6, problems.join("; "));
  });
});

test("a plugin file outside the project whose imports are not installed there: the error says why and how to fix it", async () => {
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-outside-plugin-"));
  try {
    const file = path.join(outside, "my-step.ts");
    fs.writeFileSync(file, `import { definePlugin } from "@bdc/core";\nexport default definePlugin({ id: "step/mine", version: "1.0.0", description: "d", make: () => ({ run: () => 1 }) });\n`);
    await assert.rejects(registry.resolve("./my-step.ts", outside), (e: BdcError) => {
      assert.equal(e.code, "BDC_PLUGIN_LOAD");
      assert.match(e.message, /Cannot find (module|package) '@bdc\/core'/);
      assert.match(e.hint!, /outside the project .*its imports \("@bdc\/core"\) are looked up from its own folder.*move it into the project/);
      return true;
    });
  } finally {
    fs.rmSync(outside, { recursive: true, force: true });
  }
});
