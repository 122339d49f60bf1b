import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import type { DatasetImpl, Item } from "@bdc/core";
import { PluginTester, testPlugin } from "@bdc/core/testing";
import jsonlDataset from "./jsonl-dataset.ts";
import inspectStep from "./inspect-step.ts";
import exportStep from "./export-jsonl-step.ts";

const fixtures = path.join(import.meta.dirname, "fixtures");

testPlugin(jsonlDataset, {
  valid: [{ path: "rows.jsonl" }, { path: "rows.jsonl", id_field: "name", limit: 2, offset: 1 }, { step: "export" }, { step: "export", file: "D_p2t.jsonl" }],
  invalid: [
    { config: { path: 3 }, code: "BDC_CONFIG_TYPE", path: "path" },
    { config: { path: "x", limit: 0 }, code: "BDC_CONFIG_VALUE", path: "limit" },
    { config: { path: "x", lmit: 2 }, code: "BDC_CONFIG_UNKNOWN_KEY", path: "lmit" },
  ],
  contract: { config: { path: "rows.jsonl" }, baseDir: fixtures },
});

testPlugin(inspectStep, {
  valid: [{}, { max_fields: 3 }],
  invalid: [{ config: { max_fields: "many" }, code: "BDC_CONFIG_TYPE", path: "max_fields" }],
  contract: { config: {}, items: [{ id: "a", data: { q: "text", n: 3 } }, { id: "b", data: "plain" }] },
});

testPlugin(exportStep, {
  valid: [{ from: "solve" }, { from: "solve", file: "pairs.jsonl" }],
  invalid: [{ config: { from: "solve", file: "../escape.jsonl" }, code: "BDC_CONFIG_VALUE", path: "file" }],
});

test("dataset/jsonl step: reads the file an earlier step of the run wrote, when items are asked for; path or step, one of them", async () => {
  const run = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-jsonl-step-"));
  try {
    const tester = new PluginTester(jsonlDataset);
    assert.match(JSON.stringify([...(await jsonlDataset.preflight!({ file: "D_train.jsonl", offset: 0 } as never, { instance: "pairs", baseDir: run, env: {} }))]), /give the file as path: \(a file\) or step:/);
    const ds = await tester.make<DatasetImpl & { items(): AsyncIterable<Item> }>({ step: "export" }, {}, { runDir: run });
    // Built before the step wrote the file: read only when the items are asked for.
    fs.mkdirSync(path.join(run, "steps", "export"), { recursive: true });
    fs.writeFileSync(path.join(run, "steps", "export", "D_train.jsonl"), '{"id": "p2t-a", "messages": []}\n{"id": "t2s-a", "messages": []}\n');
    const ids: string[] = [];
    for await (const item of ds.items()) ids.push(item.id);
    assert.deepEqual(ids, ["p2t-a", "t2s-a"]);
    const missing = await tester.make<DatasetImpl & { items(): AsyncIterable<Item> }>({ step: "nope" }, {}, { runDir: run });
    await assert.rejects(async () => {
      for await (const _ of missing.items()) void _;
    }, /steps\/nope\/D_train\.jsonl[\s\S]*/);
  } finally {
    fs.rmSync(run, { recursive: true, force: true });
  }
});
