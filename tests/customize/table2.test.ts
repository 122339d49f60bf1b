/**
 * Table 2's driver (benchmarks/src/table2.ts) end to end on tiny generated artifacts: every row
 * of workflows/student-eval.yaml - w/o tuning, SFT on all, SFT on each cluster, TIES/DARE/TWIN
 * merged from the experts, DisenLoRA composed per problem - runs on two bundled problems and
 * lands in one table in the paper's layout. The numbers mean nothing (random weights); the wiring
 * does.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { checkSandbox } from "@bdc/reward-python";
import { table2 } from "../../benchmarks/src/table2.ts";
import { makeTinyArtifacts, trainTinyHypernet } from "./tiny-artifacts.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-table2-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
process.env["BDC_ONNX_CACHE"] = path.join(tmp, "onnx");

test("every Table 2 row runs through workflows/student-eval.yaml and lands in one table (APPS columns)", { timeout: 300_000 }, async () => {
  const art = makeTinyArtifacts(tmp, { arch: "llama", seed: 12, trainRows: 4, valRows: 2 });
  const hypernet = trainTinyHypernet(art, path.join(tmp, "hn"), path.join(tmp, "onnx"));
  const encoderOverlay = path.join(tmp, "encoder.yaml");
  fs.writeFileSync(encoderOverlay, `plugins:\n  encoder: { use: encoder/onnx, with: { model: ${art.sentence}, threads: 1 } }\n`);
  const lines: string[] = [];
  const markdown = await table2({
    model: art.model,
    experts: art.experts,
    sft: art.experts[0],
    hypernet,
    dataset: "apps",
    limit: 2,
    merges: ["ties", "dare", "twin"],
    sets: ["plugins.student.with.max_tokens=12", "plugins.student.with.threads=1", "plugins.student.with.cache=off", ...(checkSandbox().ok ? [] : ["plugins.reward.with.sandbox=none"])],
    encoderOverlay,
    out: path.join(tmp, "table2"),
    io: { out: () => {}, err: (t) => void lines.push(t), cwd: tmp, env: process.env, isTTY: false },
    log: (l) => lines.push(l),
  });
  const rows = markdown.trim().split("\n");
  assert.match(rows[0]!, /^\| method \| APPS [a-z]+ PR \| APPS [a-z]+ AC \|.* APPS overall PR \| APPS overall AC \|$/);
  assert.deepEqual(rows.slice(2).map((r) => r.split(" | ")[0]!.slice(2)), ["w/o tuning", "SFT on all", "SFT on cluster 0", "SFT on cluster 1", "TIES", "DARE", "TWIN", "DisenLoRA"], lines.join(""));
  for (const r of rows.slice(2)) assert.match(r, /\| \d+\.\d\d \| \d+\.\d\d \|$/, `a scored row: ${r}`);
  assert.ok(fs.existsSync(path.join(tmp, "table2/apps/disenlora/steps/solve/gates.html")), "the DisenLoRA row draws its gates");
  assert.ok(fs.existsSync(path.join(tmp, "table2/merges/twin/adapter_config.json")));
  assert.match(fs.readFileSync(path.join(tmp, "table2/table2.csv"), "utf8"), /^method,dataset,difficulty/);
});
