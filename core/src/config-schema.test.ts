import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Schema } from "effect";
import { decodeConfig, describeAst, encodeConfig, option, optional, PathOrName, required, resolveFilePaths, type ConfigProblem } from "./config-schema.ts";

function problems(fields: Schema.Struct.Fields, input: unknown): ConfigProblem[] {
  const r = decodeConfig(Schema.Struct(fields) as unknown as Schema.Schema<unknown, unknown>, input);
  assert.equal(r.ok, false, "expected the input to be rejected");
  // JSON drops keys whose value is undefined (e.g. `hint: undefined`).
  return JSON.parse(JSON.stringify((r as { problems: ConfigProblem[] }).problems)) as ConfigProblem[];
}

function decoded(fields: Schema.Struct.Fields, input: unknown): unknown {
  const r = decodeConfig(Schema.Struct(fields) as unknown as Schema.Schema<unknown, unknown>, input);
  assert.ok(r.ok, r.ok ? "" : JSON.stringify(r.problems));
  return r.value;
}

const Toy = {
  c: option(Schema.Number, 1, "exploration constant"),
  value: option(Schema.Literal("max", "mean"), "max", "how a node's value is folded"),
  temperature: option(Schema.Number.pipe(Schema.between(0, 2)), 0, "sampling temperature"),
  n: required(Schema.Int.pipe(Schema.nonNegative()), "number of items"),
  model: required(Schema.String, "model name"),
  tags: optional(Schema.Array(Schema.String), "labels"),
};

describe("issueProblems: messages", () => {
  test("wrong type", () => {
    assert.deepEqual(problems(Toy, { n: 1, model: "m", c: "high" }), [
      { code: "BDC_CONFIG_TYPE", path: ["c"], message: 'expected a number, got "high"', at: "value" },
    ]);
    assert.deepEqual(problems(Toy, { n: 1, model: 3 }), [{ code: "BDC_CONFIG_TYPE", path: ["model"], message: "expected a string, got 3", at: "value" }]);
    assert.deepEqual(problems(Toy, { n: 1, model: "m", tags: "x" }), [{ code: "BDC_CONFIG_TYPE", path: ["tags"], message: 'expected a list, got "x"', at: "value" }]);
    assert.deepEqual(problems(Toy, { n: 1, model: "m", c: null }), [{ code: "BDC_CONFIG_TYPE", path: ["c"], message: "expected a number, got null", at: "value" }]);
    assert.deepEqual(problems(Toy, { n: 1, model: "m", c: [1] }), [{ code: "BDC_CONFIG_TYPE", path: ["c"], message: "expected a number, got a list", at: "value" }]);
  });

  test("list elements are located by index", () => {
    assert.deepEqual(problems(Toy, { n: 1, model: "m", tags: ["a", 2, "c", false] }), [
      { code: "BDC_CONFIG_TYPE", path: ["tags", 1], message: "expected a string, got 2", at: "value" },
      { code: "BDC_CONFIG_TYPE", path: ["tags", 3], message: "expected a string, got false", at: "value" },
    ]);
  });

  test("a union of literals lists the choices; a near string value gets a suggestion", () => {
    const [p] = problems(Toy, { n: 1, model: "m", value: "median" });
    assert.deepEqual(p!.path, ["value"]);
    assert.equal(p!.message, 'expected one of "max", "mean", got "median"');
    assert.equal(p!.code, "BDC_CONFIG_VALUE"); // a string, just not an allowed one
    assert.equal(p!.hint, 'did you mean "mean"? valid values: max, mean');
    const [q] = problems(Toy, { n: 1, model: "m", value: 3 });
    assert.equal(q!.message, 'expected one of "max", "mean", got 3');
    assert.equal(q!.code, "BDC_CONFIG_TYPE"); // not even a string
  });

  test("a union of types names them all", () => {
    assert.deepEqual(problems({ a: Schema.Union(Schema.String, Schema.Number) }, { a: true }), [
      { code: "BDC_CONFIG_TYPE", path: ["a"], message: "expected a string or a number, got true", at: "value" },
    ]);
  });

  test("a union where one member matched structurally reports that member's problem", () => {
    assert.deepEqual(problems({ a: Schema.Union(Schema.String, Schema.Struct({ x: Schema.Number })) }, { a: { x: "s" } }), [
      { code: "BDC_CONFIG_TYPE", path: ["a", "x"], message: 'expected a number, got "s"', at: "value" },
    ]);
  });

  test("optional keys: absent is fine, defaults are filled in, a wrong value reports the inner type", () => {
    assert.deepEqual(decoded(Toy, { n: 0, model: "m" }), { c: 1, value: "max", temperature: 0, n: 0, model: "m" });
    assert.deepEqual(decoded(Toy, { n: 0, model: "m", c: 2.5, tags: [] }), { c: 2.5, value: "max", temperature: 0, n: 0, model: "m", tags: [] });
    assert.deepEqual(problems(Toy, { n: 1, model: "m", tags: null }), [{ code: "BDC_CONFIG_TYPE", path: ["tags"], message: "expected a list, got null", at: "value" }]);
  });

  test("a nested struct inside an optional key: its own problems, at nested paths", () => {
    const fields = { retry: optional(Schema.Struct({ times: Schema.Int, backoff: option(Schema.Number, 1, "seconds") }), "retry policy") };
    assert.deepEqual(decoded(fields, { retry: { times: 3 } }), { retry: { times: 3, backoff: 1 } });
    assert.deepEqual(problems(fields, { retry: { times: "x" } }), [
      { code: "BDC_CONFIG_TYPE", path: ["retry", "times"], message: 'expected a number, got "x"', at: "value" },
    ]);
    const unknown = problems(fields, { retry: { times: 1, bakcoff: 2 } });
    assert.deepEqual(unknown, [
      { code: "BDC_CONFIG_UNKNOWN_KEY", path: ["retry", "bakcoff"], message: 'unknown key "bakcoff"', hint: 'did you mean "backoff"? valid keys: backoff, times', at: "key" },
    ]);
    assert.deepEqual(problems(fields, { retry: {} }), [
      { code: "BDC_CONFIG_MISSING_KEY", path: ["retry", "times"], message: 'missing required key "times" (an integer)', at: "key" },
    ]);
    assert.deepEqual(problems(fields, { retry: 3 }), [{ code: "BDC_CONFIG_TYPE", path: ["retry"], message: "expected a mapping, got 3", at: "value" }]);
  });

  test("refinements: the constraint is named even when the field has a doc", () => {
    assert.deepEqual(problems(Toy, { n: 1, model: "m", temperature: 5 }), [
      { code: "BDC_CONFIG_VALUE", path: ["temperature"], message: "expected a number between 0 and 2, got 5", at: "value" },
    ]);
    assert.deepEqual(problems(Toy, { n: -1, model: "m" }), [{ code: "BDC_CONFIG_VALUE", path: ["n"], message: "expected an integer >= 0, got -1", at: "value" }]);
    assert.deepEqual(problems(Toy, { n: 1.5, model: "m" }), [{ code: "BDC_CONFIG_VALUE", path: ["n"], message: "expected an integer, got 1.5", at: "value" }]);
    assert.deepEqual(problems({ k: option(Schema.Int.pipe(Schema.positive()), 1, "count") }, { k: 0 }), [
      { code: "BDC_CONFIG_VALUE", path: ["k"], message: "expected an integer > 0, got 0", at: "value" },
    ]);
    assert.deepEqual(problems({ s: required(Schema.String.pipe(Schema.minLength(1)), "name") }, { s: "" }), [
      { code: "BDC_CONFIG_VALUE", path: ["s"], message: 'expected a string of at least 1 character(s), got ""', at: "value" },
    ]);
  });

  test("a refinement with its own 'a/an ...' description uses it", () => {
    const even = Schema.Number.pipe(Schema.filter((n) => n % 2 === 0, { description: "an even number" }));
    assert.deepEqual(problems({ a: even }, { a: 3 }), [{ code: "BDC_CONFIG_VALUE", path: ["a"], message: "expected an even number, got 3", at: "value" }]);
  });

  test("unknown keys point at the key and suggest the nearest valid key", () => {
    assert.deepEqual(problems(Toy, { n: 1, model: "m", cc: 2 }), [
      { code: "BDC_CONFIG_UNKNOWN_KEY", path: ["cc"], message: 'unknown key "cc"', hint: 'did you mean "c"? valid keys: c, model, n, tags, temperature, value', at: "key" },
    ]);
    const [far] = problems(Toy, { n: 1, model: "m", zzzzzzzz: 2 });
    assert.equal(far!.hint, "valid keys: c, model, n, tags, temperature, value");
  });

  test("missing required keys point at the key and name the expected type", () => {
    assert.deepEqual(problems(Toy, {}), [
      { code: "BDC_CONFIG_MISSING_KEY", path: ["n"], message: 'missing required key "n" (an integer >= 0)', at: "key" },
      { code: "BDC_CONFIG_MISSING_KEY", path: ["model"], message: 'missing required key "model" (a string)', at: "key" },
    ]);
    assert.deepEqual(problems({ v: Schema.Literal("a", "b") }, {}), [
      { code: "BDC_CONFIG_MISSING_KEY", path: ["v"], message: 'missing required key "v" (one of "a", "b")', at: "key" },
    ]);
  });

  test("every problem is reported, not just the first", () => {
    const ps = problems(Toy, { c: "x", value: "y", cc: 1 });
    assert.deepEqual(ps.map((p) => [p.code, p.path.join(".")]).sort(), [
      ["BDC_CONFIG_MISSING_KEY", "model"],
      ["BDC_CONFIG_MISSING_KEY", "n"],
      ["BDC_CONFIG_TYPE", "c"],
      ["BDC_CONFIG_UNKNOWN_KEY", "cc"],
      ["BDC_CONFIG_VALUE", "value"],
    ]);
  });

  test("the input itself not being a mapping", () => {
    assert.deepEqual(problems(Toy, 5), [{ code: "BDC_CONFIG_TYPE", path: [], message: "expected a mapping, got 5", at: "value" }]);
  });
});

describe("describeAst", () => {
  test("names types for messages and docs", () => {
    assert.equal(describeAst(Schema.String.ast), "a string");
    assert.equal(describeAst(Schema.Number.ast), "a number");
    assert.equal(describeAst(Schema.Boolean.ast), "a boolean");
    assert.equal(describeAst(Schema.Array(Schema.String).ast), "a list");
    assert.equal(describeAst(Schema.Struct({}).ast), "a mapping");
    assert.equal(describeAst(Schema.Literal("x").ast), '"x"');
    assert.equal(describeAst(Schema.Literal("x", "y").ast), 'one of "x", "y"');
    assert.equal(describeAst(Schema.Union(Schema.String, Schema.Number).ast), "a string or a number");
    assert.equal(describeAst(Schema.Int.ast), "an integer");
    assert.equal(describeAst(Schema.Int.pipe(Schema.positive()).ast), "an integer > 0");
    assert.equal(describeAst(Schema.Number.pipe(Schema.between(0, 2)).annotations({ description: "temperature" }).ast), "a number between 0 and 2");
  });
});

describe("encodeConfig", () => {
  test("encodeConfig round-trips decoded values", () => {
    const schema = Schema.Struct(Toy) as unknown as Schema.Schema<Record<string, unknown>, Record<string, unknown>>;
    const r = decodeConfig(schema, { n: 2, model: "m", value: "mean" });
    assert.ok(r.ok);
    assert.deepEqual(encodeConfig(schema, r.value), { c: 1, value: "mean", temperature: 0, n: 2, model: "m" });
  });
});

test("PathOrName: resolved when written as a path (./x, ../x, /x), kept when a name (org/name)", () => {
  const schema = Schema.Struct({ model: PathOrName.pipe(Schema.minLength(1)), other: Schema.String });
  const resolve = (model: string) => {
    const config: Record<string, unknown> = { model, other: "./x" };
    resolveFilePaths(schema, config, () => "/base");
    return config;
  };
  assert.deepEqual(resolve("./tiny"), { model: "/base/tiny", other: "./x" });
  assert.equal(resolve("../m").model, "/m");
  assert.equal(resolve("/abs/m").model, "/abs/m");
  assert.equal(resolve("Qwen/Qwen2.5-Coder-0.5B-Instruct").model, "Qwen/Qwen2.5-Coder-0.5B-Instruct");
  assert.equal(resolve("tiny").model, "tiny");
});
