// step/embed with a fake encoder: config, which text of an item, output rows, batching of the
// items the engine runs at once, failures. The real encoder/local over a tiny checkpoint, run by
// the CLI with resume, is tests/local-model/local-model.test.ts.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { BdcError, type StepContext, type StepImpl } from "@bdc/core";
import { PluginTester, testPlugin } from "@bdc/core/testing";
import { openSafetensorsFile } from "../checkpoint/safetensors.ts";
import { readVectorRows } from "../vectors.ts";
import embedStep, { EMBEDDINGS_FILE, itemText, type EmbedOutput } from "./embed-step.ts";
import type { Encoder } from "@bdc/policy";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-embed-step-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
/** The vector an output names, read back from the step's binary file. */
const vectorOf = (o: EmbedOutput, from = dir) => readVectorRows(path.join(from, o.file), [o.row]).vectors;

/** Vectors [len, 1, 0, ...] normalised; records each call's texts. */
function fakeEncoder(dimension = 4, delayMs = 0): Encoder & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    name: "enc",
    model: "fake-model",
    dimension,
    calls,
    async embed(texts) {
      calls.push([...texts]);
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      return texts.map((t) => {
        if (t === "boom") throw new Error("the encoder broke");
        const v = new Float32Array(dimension);
        v[0] = t.length;
        v[1] = 1;
        const n = Math.hypot(...v);
        return v.map((x) => x / n);
      });
    },
  };
}

const ctx = (signal = new AbortController().signal): StepContext => ({
  step: "embed",
  signal,
  dir,
  emit: () => {},
  log: () => {},
  outputs: () => [],
});

testPlugin(embedStep, {
  valid: [{}, { field: "statement" }, { field: "{question}\n{solution}", batch_size: 4 }],
  invalid: [
    { config: { field: "" }, code: "BDC_CONFIG_VALUE", path: "field" },
    { config: { batch_size: 0 }, code: "BDC_CONFIG_VALUE", path: "batch_size" },
    { config: { input: "problems" }, code: "BDC_CONFIG_UNKNOWN_KEY", path: "input" },
  ],
  contract: { config: {}, deps: { encoder: fakeEncoder() }, items: [{ id: "a", data: { text: "hello" } }, { id: "b", data: { text: "" } }] },
});

test("field: a dot path (lists by index), or a template of {dot.path} placeholders", () => {
  const data = { text: "t", problem: { statement: "s", tests: [{ input: "1 2" }], n: 3 }, q: "Q", a: "A" };
  assert.equal(itemText(data, "text", "x"), "t");
  assert.equal(itemText(data, "problem.statement", "x"), "s");
  assert.equal(itemText(data, "problem.tests.0.input", "x"), "1 2");
  assert.equal(itemText(data, "problem.n", "x"), "3");
  assert.equal(itemText(data, "{q}\n{a}", "x"), "Q\nA");
  assert.equal(itemText(data, "Q: {q} ({problem.statement}) {not a placeholder}", "x"), "Q: Q (s) {not a placeholder}");
  const fails = (d: unknown, field: string, re: RegExp) =>
    assert.throws(() => itemText(d, field, "item-7"), (e: BdcError) => e.code === "BDC_ITEM_FAILED" && re.test(e.message), field);
  fails(data, "txt", /item "item-7" has no field "txt" \(it has: text, problem, q, a\)/);
  fails(data, "problem.body", /has no field "problem\.body" \(problem: it has: statement, tests, n\)/);
  fails(data, "problem.tests.3.input", /has no field "problem\.tests\.3\.input" \(problem\.tests: it has: 0\)/);
  fails(data, "problem", /field "problem" is a mapping, not text/);
  fails(data, "{q}{answer}", /has no field "answer"/);
  fails("plain", "text", /has no field "text" \(the item is a string\)/);
  fails({ text: null }, "text", /field "text" is null, not text/);
});

test("one row per item: {id, row, dimension, model, file}, the vector in the binary file; embeddings.safetensors at the end", async () => {
  const own = fs.mkdtempSync(path.join(dir, "one-"));
  const step = await new PluginTester(embedStep).make<StepImpl<unknown, EmbedOutput>>({ field: "{q}|{a}" }, { encoder: fakeEncoder(3) });
  const c = { ...ctx(), dir: own };
  const out = await step.run({ id: "p1", data: { q: "ab", a: "c" } }, c);
  const second = await step.run({ id: "p2", data: { q: "a", a: "" } }, c);
  assert.deepEqual(Object.keys(out), ["id", "row", "dimension", "model", "file"]);
  assert.deepEqual([out.id, out.row, second.row, out.dimension, out.model], ["p1", 0, 1, 3, "fake-model"]);
  const n = Math.hypot(4, 1);
  assert.deepEqual(vectorOf(out, own), Float32Array.from([4 / n, 1 / n, 0]), "float32 values, exactly");
  await step.summarize!([{ id: "p2", output: second }, { id: "p1", output: out }], c);
  const file = openSafetensorsFile(path.join(own, EMBEDDINGS_FILE));
  assert.deepEqual(JSON.parse(file.metadata()["ids"]!), ["p2", "p1"], "in item order");
  assert.deepEqual(file.readFloat32("embeddings").subarray(3, 6), vectorOf(out, own));
  file.close();
});

test("items the engine runs at once go to the encoder together, up to batch_size", async () => {
  const encoder = fakeEncoder(4, 5);
  const step = await new PluginTester(embedStep).make<StepImpl<unknown, EmbedOutput>>({ batch_size: 3 }, { encoder });
  const items = Array.from({ length: 7 }, (_, i) => ({ id: `i${i}`, data: { text: "x".repeat(i + 1) } }));
  const outs = await Promise.all(items.map((it) => step.run(it, ctx())));
  assert.deepEqual(outs.map((o) => o.id), items.map((i) => i.id), "each item gets its own vector back");
  outs.forEach((o, i) => assert.ok(Math.abs(vectorOf(o)[0]! - (i + 1) / Math.hypot(i + 1, 1)) < 1e-6, `vector of ${o.id}`));
  assert.deepEqual(encoder.calls.map((c) => c.length), [3, 3, 1]);
  const summary = await step.summarize!(outs.map((o) => ({ id: o.id, output: o })), ctx());
  assert.deepEqual(summary, { embedded: 7, failed: 0, dimension: 4, model: "fake-model", encoder_calls: 3, mean_batch: 2.33, file: EMBEDDINGS_FILE });

  // One at a time (concurrency 1): one call per item.
  encoder.calls.length = 0;
  for (const it of items.slice(0, 2)) await step.run(it, ctx());
  assert.deepEqual(encoder.calls.map((c) => c.length), [1, 1]);
});

test("a failing encoder call fails the items of that batch only; an aborted item stops waiting", async () => {
  const encoder = fakeEncoder(4, 5);
  const step = await new PluginTester(embedStep).make<StepImpl<unknown, EmbedOutput>>({ batch_size: 2 }, { encoder });
  const results = await Promise.allSettled(["boom", "ok", "fine", "good"].map((text, i) => step.run({ id: `i${i}`, data: { text } }, ctx())));
  assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected", "fulfilled", "fulfilled"]);
  assert.match(String((results[0] as PromiseRejectedResult).reason), /the encoder broke/);

  const abort = new AbortController();
  const pending = Promise.resolve(step.run({ id: "slow", data: { text: "late" } }, ctx(abort.signal)));
  abort.abort(new Error("stopped"));
  await assert.rejects(pending, /stopped/);
  await assert.rejects(async () => step.run({ id: "x", data: { text: "y" } }, ctx(abort.signal)), /stopped/, "an item aborted before it starts never queues");
});

test("a vector of another length than the encoder's dimension fails the item", async () => {
  const encoder = { ...fakeEncoder(4), dimension: 8 };
  const step = await new PluginTester(embedStep).make<StepImpl<unknown, EmbedOutput>>({}, { encoder });
  await assert.rejects(async () => step.run({ id: "a", data: { text: "t" } }, ctx()), (e: BdcError) => e.code === "BDC_PLUGIN_INVALID" && /4 values; it declares dimension 8/.test(e.message));
});
