import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BdcError } from "../errors.ts";
import { describeValue, isPlainObject, mergeLayers, parseSetArg, type Layer } from "./layers.ts";
import { parseYamlText } from "./source.ts";

const file = (name: string, text: string): Layer => ({ kind: "file", source: parseYamlText(text, `/project/${name}`, name) });
const set = (arg: string): Layer => parseSetArg(arg);

function throwsBdc(fn: () => unknown, code: string, message?: RegExp): BdcError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof BdcError, `expected a BdcError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  if (message !== undefined) assert.match(caught.message, message);
  return caught;
}

describe("mergeLayers: merge rules", () => {
  test("mappings merge key by key, recursively", () => {
    const { value } = mergeLayers([
      file("base.yaml", "plugins:\n  select:\n    use: select/pucb\n    with: { c: 1, value: max }\n  items: { use: dataset/jsonl }\n"),
      file("over.yaml", "plugins:\n  select:\n    with: { c: 2 }\n  extra: { use: step/inspect }\n"),
    ]);
    assert.deepEqual(value, {
      plugins: {
        select: { use: "select/pucb", with: { c: 2, value: "max" } },
        items: { use: "dataset/jsonl" },
        extra: { use: "step/inspect" },
      },
    });
  });

  test("lists are replaced whole, never concatenated or merged by index", () => {
    const { value } = mergeLayers([
      file("base.yaml", "steps:\n  s: { needs: [a, b, c] }\n"),
      file("over.yaml", "steps:\n  s: { needs: [z] }\n"),
    ]);
    assert.deepEqual(value, { steps: { s: { needs: ["z"] } } });
  });

  test("scalars replace scalars; a scalar replaces a mapping and a mapping replaces a scalar", () => {
    const { value } = mergeLayers([
      file("a.yaml", "name: a\nx: { deep: 1 }\ny: 3\n"),
      file("b.yaml", "name: b\nx: 5\ny: { now: map }\n"),
    ]);
    assert.deepEqual(value, { name: "b", x: 5, y: { now: "map" } });
  });

  test("null replaces a value (it is not 'absent')", () => {
    const { value } = mergeLayers([file("a.yaml", "x: { a: 1 }\n"), file("b.yaml", "x: null\n")]);
    assert.deepEqual(value, { x: null });
  });

  test("later layers win; merging does not mutate the layers' own values", () => {
    const base = file("a.yaml", "m: { k: [1, 2], n: { o: 1 } }\n");
    const before = structuredClone((base as { source: { value: unknown } }).source.value);
    const { value } = mergeLayers([base, file("b.yaml", "m: { n: { o: 2 } }\n"), set("m.k[0]=9")]);
    assert.deepEqual(value, { m: { k: [9, 2], n: { o: 2 } } });
    assert.deepEqual((base as { source: { value: unknown } }).source.value, before);
  });

  test("an empty or comment-only file is an empty layer", () => {
    assert.deepEqual(mergeLayers([file("a.yaml", ""), file("b.yaml", "# nothing\n")]).value, {});
  });

  test("a file whose top level is not a mapping is a located BDC_CONFIG_TYPE error", () => {
    const e = throwsBdc(() => mergeLayers([file("list.yaml", "- a\n- b\n")]), "BDC_CONFIG_TYPE", /expected a mapping at the top of the file, got a list/);
    assert.deepEqual(e.origin, { kind: "file", file: "list.yaml", line: 1, col: 1 });
    throwsBdc(() => mergeLayers([file("scalar.yaml", "hello\n")]), "BDC_CONFIG_TYPE", /got "hello"/);
  });

  test("--set creates missing mappings on the way and writes lists by index", () => {
    const { value } = mergeLayers([
      file("a.yaml", "steps:\n  s: { needs: [a, b] }\n"),
      set("plugins.new.with.c=2"),
      set("steps.s.needs[1]=z"),
    ]);
    assert.deepEqual(value, { steps: { s: { needs: ["a", "z"] } }, plugins: { new: { with: { c: 2 } } } });
  });

  test("--set through a scalar is a BDC_SET_SYNTAX error located at the argument", () => {
    const e = throwsBdc(() => mergeLayers([file("a.yaml", "plugins:\n  s: { use: select/pucb }\n"), set("plugins.s.use.x=1")]), "BDC_SET_SYNTAX", /"use"/);
    assert.deepEqual(e.origin, { kind: "cli", arg: "--set plugins.s.use.x=1" });
  });
});

describe("Provenance", () => {
  const layers = [
    file("base.yaml", "plugins:\n  select:\n    use: select/pucb\n    with:\n      c: 1\n      value: max\nsteps:\n  s: { needs: [a, b] }\n"),
    file("over.yaml", "plugins:\n  select:\n    with:\n      c: 2\n"),
    set("plugins.select.with.value=mean"),
  ];
  const { provenance } = mergeLayers(layers);

  test("a value points at the latest layer that wrote it", () => {
    assert.deepEqual(provenance.origin(["plugins", "select", "with", "c"]), { kind: "file", file: "over.yaml", line: 4, col: 10 });
    assert.deepEqual(provenance.origin(["plugins", "select", "with", "value"]), { kind: "cli", arg: "--set plugins.select.with.value=mean" });
    assert.deepEqual(provenance.origin(["plugins", "select", "use"]), { kind: "file", file: "base.yaml", line: 3, col: 10 });
    assert.equal(provenance.layerOf(["plugins", "select", "use"]), layers[0]);
  });

  test("a path inside a value written whole points into the writer's file", () => {
    assert.deepEqual(provenance.origin(["steps", "s", "needs", 1]), { kind: "file", file: "base.yaml", line: 8, col: 19 });
  });

  test("key positions vs value positions", () => {
    assert.deepEqual(provenance.origin(["plugins", "select", "with", "c"], "key"), { kind: "file", file: "over.yaml", line: 4, col: 7 });
    assert.deepEqual(provenance.origin(["plugins", "select", "with", "c"], "value"), { kind: "file", file: "over.yaml", line: 4, col: 10 });
  });

  test("an absent path points at the deepest existing ancestor in the writer's file", () => {
    // `model` is in no file: base.yaml wrote plugins.select whole, so the error goes there.
    assert.deepEqual(provenance.origin(["plugins", "select", "with", "model"], "key"), { kind: "file", file: "base.yaml", line: 5, col: 7 });
    assert.equal(provenance.origin(["nowhere", "at", "all"]), undefined);
  });

  test("fileOf names the absolute file that wrote a value (for relative `use:` paths)", () => {
    assert.equal(provenance.fileOf(["plugins", "select", "use"]), "/project/base.yaml");
    assert.equal(provenance.fileOf(["plugins", "select", "with", "c"]), "/project/over.yaml");
    assert.equal(provenance.fileOf(["plugins", "select", "with", "value"]), undefined);
  });

  test("an overlay that replaces a whole subtree owns everything below it", () => {
    const { provenance: p } = mergeLayers([
      file("base.yaml", "plugins:\n  a:\n    with: { c: 1, d: 2 }\n"),
      file("over.yaml", "plugins:\n  a:\n    with: 7\n"),
      file("again.yaml", "plugins:\n  a:\n    with:\n      e: 3\n"),
    ]);
    // again.yaml replaced the scalar 7 with a mapping: with and everything below is again.yaml's.
    assert.equal(p.fileOf(["plugins", "a", "with"]), "/project/again.yaml");
    assert.equal(p.fileOf(["plugins", "a", "with", "c"]), "/project/again.yaml");
    assert.deepEqual(p.origin(["plugins", "a", "with", "e"]), { kind: "file", file: "again.yaml", line: 4, col: 10 });
    // With the scalar replacement only, over.yaml owns the subtree, including base.yaml's old keys.
    const { provenance: q } = mergeLayers([file("base.yaml", "plugins:\n  a:\n    with: { c: 1 }\n"), file("over.yaml", "plugins:\n  a:\n    with: 7\n")]);
    assert.deepEqual(q.origin(["plugins", "a", "with", "c"]), { kind: "file", file: "over.yaml", line: 3, col: 11 });
  });

  test("a list replaced by an overlay points into the overlay, element by element", () => {
    const { provenance: p } = mergeLayers([
      file("base.yaml", "steps:\n  s:\n    needs: [a, b, c]\n"),
      file("over.yaml", "steps:\n  s:\n    needs:\n      - x\n      - y\n"),
    ]);
    assert.deepEqual(p.origin(["steps", "s", "needs", 1]), { kind: "file", file: "over.yaml", line: 5, col: 9 });
    // Index 2 exists only in the replaced list: the overlay's list is the deepest ancestor.
    assert.deepEqual(p.origin(["steps", "s", "needs", 2]), { kind: "file", file: "over.yaml", line: 4, col: 7 });
  });

  test("--set that creates a mapping owns it", () => {
    const { provenance: p } = mergeLayers([file("a.yaml", "name: x\n"), set("plugins.n.with.c=1")]);
    assert.deepEqual(p.origin(["plugins", "n", "use"]), { kind: "cli", arg: "--set plugins.n.with.c=1" });
  });
});

describe("parseSetArg", () => {
  const pathOf = (arg: string) => (parseSetArg(arg) as Extract<Layer, { kind: "set" }>).path;
  const valueOf = (arg: string) => (parseSetArg(arg) as Extract<Layer, { kind: "set" }>).value;

  test("dotted paths with [n] indexes", () => {
    assert.deepEqual(pathOf("plugins.select.with.c=2"), ["plugins", "select", "with", "c"]);
    assert.deepEqual(pathOf("steps.a.needs[0]=b"), ["steps", "a", "needs", 0]);
    assert.deepEqual(pathOf("a.grid[1][12].b=x"), ["a", "grid", 1, 12, "b"]);
    assert.deepEqual(pathOf("plugins.my-agent_2.enabled=false"), ["plugins", "my-agent_2", "enabled"]);
    assert.deepEqual(pathOf(" a.b =1"), ["a", "b"]);
  });

  test("the layer remembers the argument as the user typed it", () => {
    assert.deepEqual(parseSetArg("a.b=1"), { kind: "set", arg: "--set a.b=1", path: ["a", "b"], value: 1 });
  });

  test("values are YAML", () => {
    assert.equal(valueOf("a=2"), 2);
    assert.equal(valueOf("a=2.5"), 2.5);
    assert.equal(valueOf("a=false"), false);
    assert.equal(valueOf("a=null"), null);
    assert.equal(valueOf("a=high"), "high");
    assert.equal(valueOf("a='2'"), "2");
    assert.equal(valueOf('a="true"'), "true");
    assert.deepEqual(valueOf("a=[x, y]"), ["x", "y"]);
    assert.deepEqual(valueOf("a={c: 1, d: [2]}"), { c: 1, d: [2] });
    assert.deepEqual(valueOf("a=[]"), []);
  });

  test("everything after the first = is the value; an empty value is the empty string", () => {
    assert.equal(valueOf("a=x=y"), "x=y");
    assert.equal(valueOf("a="), "");
    assert.equal(valueOf("a=  "), "");
  });

  test("malformed arguments are BDC_SET_SYNTAX errors with a hint, located at the argument", () => {
    for (const [arg, message] of [
      ["plugins.select.with.c", /expected PATH=VALUE, got "plugins.select.with.c"/],
      ["=2", /expected PATH=VALUE/],
      ["  =2", /expected PATH=VALUE/],
      ["a..b=1", /malformed path "a..b"/],
      [".a=1", /malformed path/],
      ["a.=1", /malformed path/],
      ["a[x]=1", /malformed path "a\[x\]"/],
      ["a[-1]=1", /malformed path/],
      ["a[0=1", /malformed path/],
      ["a]=1", /malformed path/],
      ["a=[1", /the value "\[1" is not valid YAML/],
      ["a={b: 1", /not valid YAML/],
    ] as const) {
      const e = throwsBdc(() => parseSetArg(arg), "BDC_SET_SYNTAX", message);
      assert.deepEqual(e.origin, { kind: "cli", arg: `--set ${arg}` }, arg);
      assert.match(e.hint ?? "", /--set PATH=VALUE/, arg);
    }
  });
});

describe("helpers", () => {
  test("describeValue", () => {
    assert.equal(describeValue(null), "null");
    assert.equal(describeValue(undefined), "nothing");
    assert.equal(describeValue([1]), "a list");
    assert.equal(describeValue({ a: 1 }), "a mapping");
    assert.equal(describeValue("x"), '"x"');
    assert.equal(describeValue(2), "2");
    assert.equal(describeValue(true), "true");
  });

  test("isPlainObject", () => {
    assert.equal(isPlainObject({}), true);
    assert.equal(isPlainObject([]), false);
    assert.equal(isPlainObject(null), false);
    assert.equal(isPlainObject(new Date()), false);
    assert.equal(isPlainObject("x"), false);
  });
});
