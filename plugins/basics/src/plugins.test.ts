import * as path from "node:path";
import { testPlugin } from "@bdc/core/testing";
import jsonlDataset from "./jsonl-dataset.ts";
import inspectStep from "./inspect-step.ts";
import exportStep from "./export-jsonl-step.ts";

const fixtures = path.join(import.meta.dirname, "fixtures");

testPlugin(jsonlDataset, {
  valid: [{ path: "rows.jsonl" }, { path: "rows.jsonl", id_field: "name", limit: 2, offset: 1 }],
  invalid: [
    { config: {}, code: "BDC_CONFIG_MISSING_KEY", path: "path" },
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
