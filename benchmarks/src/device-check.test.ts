/**
 * The device check runs unattended on a lent GPU machine, so it is run here end to end on the
 * tiny shape with device: cpu (the only provider this machine has): every phase must produce
 * its numbers, results.json and table.md, and a shape the budget cannot fit is skipped, said.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { BdcError } from "@bdc/core";
import { webgpuUnavailableReason } from "@bdc/onnx-graph";
import { runDeviceCheck } from "./device-check.ts";

test("device-check on the tiny shape (CPU): correctness, speeds, training steps, placements, table; an unaffordable shape is skipped", async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-device-check-test-"));
  try {
    const options = { out, shapes: ["tiny"], device: "cpu" as const, budgetSeconds: 600, reps: 1, promptTokens: 32, decodeTokens: 8, train: [[1, 32]] as const };
    const results = await runDeviceCheck(options, () => {});
    const tiny = results.shapes["tiny"]!;
    assert.equal(tiny.skipped, undefined);
    const fp32 = tiny.ort["float32"] as { vs_cpu_fp32: { maxAbs: number; top1: number }; prefill_tokens_per_second: number; decode_tokens_per_second: number };
    assert.equal(fp32.vs_cpu_fp32.maxAbs, 0, "the CPU provider against itself");
    assert.ok(fp32.prefill_tokens_per_second > 0 && fp32.decode_tokens_per_second > 0);
    const fused = tiny.ort["float32 fused"] as { vs_cpu_fp32: { maxAbs: number }; decode_tokens_per_second: number };
    assert.ok(fused.vs_cpu_fp32.maxAbs < 1e-4, `fused attention vs the plain graph on the CPU provider: ${fused.vs_cpu_fp32.maxAbs}`);
    assert.ok(fused.decode_tokens_per_second > 0);
    assert.ok((tiny.placements?.["inference float16 fused"] as { providers: Record<string, number> }).providers["CPUExecutionProvider"]! > 0);
    const fp16 = tiny.ort["float16"] as { vs_cpu_fp32: { relative: number; top1: number } };
    assert.ok(fp16.vs_cpu_fp32.relative < 1e-2, `fp16 within 1% of the largest logit: ${fp16.vs_cpu_fp32.relative}`);
    const adapter = tiny.ort["adapter"] as { vs_cpu_fp32: { maxAbs: number }; adapter_moves_logits_by: number; decode_tokens_per_second: number };
    assert.equal(adapter.vs_cpu_fp32.maxAbs, 0);
    assert.ok(adapter.adapter_moves_logits_by > 1e-3, "the adapter changes the logits, so the comparison tests it");
    assert.ok(adapter.decode_tokens_per_second > 0);
    const step = tiny.ort["train 1x32"] as { seconds: number };
    assert.ok(step.seconds > 0, JSON.stringify(step));
    assert.ok((tiny.placements?.["inference float32"] as { providers: Record<string, number> }).providers["CPUExecutionProvider"]! > 0);
    assert.ok((tiny.placements?.["inference float16"] as { providers: Record<string, number> }).providers["CPUExecutionProvider"]! > 0);
    assert.ok((tiny.placements?.["training float32"] as { providers: Record<string, number> }).providers["CPUExecutionProvider"]! > 0);
    if (results.torch.backend !== "none") assert.ok(typeof (tiny.torch["float32"] as { prefill?: { tokens_per_second: number } }).prefill?.tokens_per_second === "number", JSON.stringify(tiny.torch));
    const table = fs.readFileSync(path.join(out, "table.md"), "utf8");
    assert.match(table, /^\| tiny \| float32 \| 0\.0e\+0 \/ 0\.0e\+0, 100% \|/m);
    assert.match(table, /^\| tiny \| 1x32 \| \d/m);
    assert.match(table, /^\| tiny \| float16 fused \| /m);
    assert.match(table, /^\| tiny \| float32 \+ LoRA r8 q,v \(factors fed from the host\) \| 0\.0e\+0/m);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, "results.json"), "utf8")).shapes.tiny.label, tiny.label);

    const tight = await runDeviceCheck({ ...options, budgetSeconds: 1 }, () => {});
    if ((await webgpuUnavailableReason()) !== undefined) {
      await assert.rejects(runDeviceCheck({ ...options, device: "webgpu" }, () => {}), (e: unknown) => e instanceof BdcError && e.code === "BDC_DEVICE_UNAVAILABLE" && /^device-check --device webgpu: /.test(e.message) && /libvulkan1/.test(e.hint ?? ""));
    }
    assert.match(tight.shapes["tiny"]!.skipped ?? "", /^not started: \d+ s of the budget left, the shape needs about 20 s$/);
    assert.match(fs.readFileSync(path.join(out, "table.md"), "utf8"), /\| tiny \| - \| not started/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
