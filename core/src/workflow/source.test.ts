import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { BdcError, BdcErrors } from "../errors.ts";
import { displayPath, parseYamlText, positionOf, readYamlFile } from "./source.ts";

const text = [
  "name: demo", // 1
  "plugins:", // 2
  "  select:", // 3
  "    use: select/pucb", // 4
  "    with:", // 5
  "      c: 1.5", // 6
  "      value: max", // 7
  "  items: { use: dataset/jsonl, with: { path: a.jsonl } }", // 8
  "steps:", // 9
  "  work:", // 10
  "    needs:", // 11
  "      - a", // 12
  "      - b", // 13
  "    for_each: items", // 14
  "  empty:", // 15
  "",
].join("\n");
const src = parseYamlText(text, "/abs/demo.yaml", "demo.yaml");

describe("parseYamlText", () => {
  test("keeps the file, the display name and the plain value", () => {
    assert.equal(src.file, "/abs/demo.yaml");
    assert.equal(src.display, "demo.yaml");
    assert.deepEqual((src.value as { steps: unknown }).steps, { work: { needs: ["a", "b"], for_each: "items" }, empty: null });
  });

  test("syntax errors become located BDC_YAML_SYNTAX errors, all of them", () => {
    let caught: unknown;
    try {
      parseYamlText("a: 1\nb: [1, 2\nc: 3\na: 2\n", "/abs/bad.yaml", "bad.yaml");
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof BdcErrors);
    assert.ok(caught.errors.length >= 1);
    for (const e of caught.errors) {
      assert.equal(e.code, "BDC_YAML_SYNTAX");
      assert.equal(e.origin?.kind, "file");
      assert.equal((e.origin as { file: string }).file, "bad.yaml");
      assert.doesNotMatch(e.message, /\n/);
      assert.doesNotMatch(e.message, / at line \d+, column \d+/);
    }
  });

  test("a duplicate key is an error with a hint, at the second key", () => {
    let caught: unknown;
    try {
      parseYamlText("a: 1\nb: 2\na: 3\n", "/abs/dup.yaml", "dup.yaml");
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof BdcErrors);
    const [e] = caught.errors;
    assert.equal(e!.code, "BDC_YAML_SYNTAX");
    assert.deepEqual(e!.origin, { kind: "file", file: "dup.yaml", line: 3, col: 1 });
    assert.match(e!.hint ?? "", /merge the two entries/);
  });

  test("tabs used as indentation get a hint", () => {
    let caught: unknown;
    try {
      parseYamlText("a:\n\tb: 1\n", "/abs/tab.yaml", "tab.yaml");
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof BdcErrors);
    assert.ok(caught.errors.some((e) => /tabs/.test(e.hint ?? "")), caught.errors.map((e) => `${e.message} ${e.hint}`).join("; "));
  });
});

describe("positionOf", () => {
  test("values: at the value by default", () => {
    assert.deepEqual(positionOf(src, ["plugins", "select", "with", "c"]), { line: 6, col: 10 });
    assert.deepEqual(positionOf(src, ["plugins", "select", "use"]), { line: 4, col: 10 });
    assert.deepEqual(positionOf(src, ["name"]), { line: 1, col: 7 });
  });

  test("keys: at the key with at = key", () => {
    assert.deepEqual(positionOf(src, ["plugins", "select", "with", "c"], "key"), { line: 6, col: 7 });
    assert.deepEqual(positionOf(src, ["steps", "work"], "key"), { line: 10, col: 3 });
    assert.deepEqual(positionOf(src, ["name"], "key"), { line: 1, col: 1 });
  });

  test("a mapping value starts at its first key; a flow mapping at its brace", () => {
    assert.deepEqual(positionOf(src, ["plugins", "select"]), { line: 4, col: 5 });
    assert.deepEqual(positionOf(src, ["plugins", "items"]), { line: 8, col: 10 });
    assert.deepEqual(positionOf(src, ["plugins", "items", "with", "path"]), { line: 8, col: 46 });
  });

  test("list items by index", () => {
    assert.deepEqual(positionOf(src, ["steps", "work", "needs", 0]), { line: 12, col: 9 });
    assert.deepEqual(positionOf(src, ["steps", "work", "needs", 1]), { line: 13, col: 9 });
  });

  test("a path that does not exist gives its deepest existing ancestor", () => {
    // missing key under an existing mapping: the mapping's value position
    assert.deepEqual(positionOf(src, ["plugins", "select", "with", "model"]), { line: 6, col: 7 });
    assert.deepEqual(positionOf(src, ["plugins", "select", "with", "model"], "key"), { line: 6, col: 7 });
    // index past the end of a list: the list
    assert.deepEqual(positionOf(src, ["steps", "work", "needs", 5]), { line: 12, col: 7 });
    // descending into a scalar: the scalar
    assert.deepEqual(positionOf(src, ["name", "x", "y"]), { line: 1, col: 7 });
    // a string segment into a list: the list
    assert.deepEqual(positionOf(src, ["steps", "work", "needs", "x"]), { line: 12, col: 7 });
    // nothing matches at the top: the document
    assert.deepEqual(positionOf(src, ["nosuch"]), { line: 1, col: 1 });
  });

  test("an empty value (key: with nothing after it) points just after its key's colon", () => {
    assert.deepEqual(positionOf(src, ["steps", "empty"]), { line: 15, col: 9 });
    assert.deepEqual(positionOf(src, ["steps", "empty", "run"]), { line: 15, col: 9 });
    assert.deepEqual(positionOf(src, ["steps", "empty"], "key"), { line: 15, col: 3 });
  });

  test("the empty path is the document start", () => {
    assert.deepEqual(positionOf(src, []), { line: 1, col: 1 });
  });

  test("numeric-looking keys of mappings match number segments", () => {
    const s = parseYamlText("codes:\n  404: not found\n  '500': error\n", "/abs/x.yaml", "x.yaml");
    assert.deepEqual(positionOf(s, ["codes", 404]), { line: 2, col: 8 });
    assert.deepEqual(positionOf(s, ["codes", "500"]), { line: 3, col: 10 });
  });
});

describe("readYamlFile / displayPath", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-source-"));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("display paths are relative to the working directory when inside it", () => {
    assert.equal(displayPath(path.join(dir, "a", "w.yaml"), dir), path.join("a", "w.yaml"));
    assert.equal(displayPath("/elsewhere/w.yaml", dir), "/elsewhere/w.yaml");
    assert.equal(displayPath(dir, dir), dir);
  });

  test("reads relative to cwd and shows the relative path", () => {
    fs.mkdirSync(path.join(dir, "sub"), { recursive: true });
    fs.writeFileSync(path.join(dir, "sub", "w.yaml"), "name: w\n");
    const s = readYamlFile("sub/w.yaml", dir);
    assert.equal(s.file, path.join(dir, "sub", "w.yaml"));
    assert.equal(s.display, path.join("sub", "w.yaml"));
    assert.deepEqual(s.value, { name: "w" });
  });

  test("a missing file is BDC_FILE_NOT_FOUND with a hint", () => {
    let caught: unknown;
    try {
      readYamlFile("nope.yaml", dir);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof BdcError);
    assert.equal(caught.code, "BDC_FILE_NOT_FOUND");
    assert.equal(caught.message, "no such file: nope.yaml");
    assert.ok(caught.hint !== undefined);
  });
});
