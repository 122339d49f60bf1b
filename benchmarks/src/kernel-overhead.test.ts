// Smoke test of the kernel-overhead benchmark: small and fast, it checks that the benchmark
// runs end to end, yields finite numbers, and that the kernel persisted every item.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { RUN_FILES } from "@bdc/core";
import { benchKernelOverhead, formatKernelOverhead } from "./kernel-overhead.ts";

test("kernel-overhead runs with few items and persists every item", async () => {
  const items = 300;
  const seen: Array<{ mode: string; lines: number; ids: number }> = [];
  const result = await benchKernelOverhead({
    items,
    reps: 1,
    concurrency: [1, 8],
    warmup: false,
    onRunDir: ({ mode, dir }) => {
      const text = fs.readFileSync(path.join(dir, "steps", "noop", RUN_FILES.outputs), "utf8");
      const lines = text.split("\n").filter((l) => l !== "");
      const ids = new Set(lines.map((l) => (JSON.parse(l) as { id: string }).id)).size;
      seen.push({ mode, lines: lines.length, ids });
    },
  });

  assert.deepEqual(seen.map((s) => s.mode), ["kernel c=1", "resume", "kernel c=8"]);
  for (const s of seen) {
    assert.equal(s.lines, items, `${s.mode}: outputs.jsonl lines`);
    assert.equal(s.ids, items, `${s.mode}: distinct ids in outputs.jsonl`);
  }
  assert.equal(result.items, items);
  assert.deepEqual(result.kernel.map((k) => k.persisted), [[items], [items]]);
  assert.deepEqual(result.resume.resumed, [items]);

  const numbers = [
    result.setupMs.median,
    result.reference.ms.median,
    result.reference.usPerItem,
    result.resume.ms.median,
    result.resume.usPerItem,
    result.worstOverheadUsPerCall,
    ...result.kernel.flatMap((k) => [k.ms.median, k.usPerItem, k.overheadUsPerCall, k.ratio]),
  ];
  for (const n of numbers) assert.ok(Number.isFinite(n), `finite: ${n}`);
  assert.ok(result.reference.ms.median > 0 && result.kernel.every((k) => k.ms.median > 0));
  assert.equal(typeof result.pass, "boolean");

  const text = formatKernelOverhead(result);
  assert.match(text, /kernel c=1/);
  assert.match(text, /^(PASS|FAIL): kernel overhead /m);
});
