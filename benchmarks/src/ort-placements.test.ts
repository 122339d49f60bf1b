import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { GraphBuilder, writeModel } from "@bdc/onnx-graph";
import { nodePlacements, parsePlacements } from "./ort-placements.ts";

test("ORT's placement report is read from a real verbose log (the CPU provider takes every node)", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-placements-"));
  try {
    const g = new GraphBuilder("p");
    const x = g.input("x", "float32", [2, 3]);
    g.output(g.matMul(g.relu(x), g.weight("w", "float32", [3, 2], new Float32Array(6).fill(1))), "y");
    const { modelPath } = writeModel(g.build(), dir);
    const placement = await nodePlacements(modelPath, "cpu", 60_000);
    assert.deepEqual(Object.keys(placement.providers), ["CPUExecutionProvider"]);
    assert.ok(placement.providers["CPUExecutionProvider"]! >= 1);
    assert.deepEqual(placement.cpuOps, {});
    assert.equal(placement.fallbackWarning, false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a mixed placement (the shape ORT logs when a GPU provider lacks a kernel) lists the ops left on the CPU", () => {
  const log = [
    "2026-12-04 [V:onnxruntime:, session_state.cc:1377 VerifyEachNodeIsAssignedToAnEp] Node placements",
    "2026-12-04 [V:onnxruntime:, session_state.cc:1380 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 40",
    "2026-12-04 [V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]   MatMul (layers.0/attn/MatMul)",
    "2026-12-04 [V:onnxruntime:, session_state.cc:1380 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 3",
    "2026-12-04 [V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]   Gather (rope/Gather)",
    "2026-12-04 [V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]   ReduceSum (loss/ReduceSum)",
    "2026-12-04 [V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]   Gather (embed/Gather)",
    "2026-12-04 [W:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp] Some nodes were not assigned to the preferred execution providers which may or may not have an negative impact on performance.",
  ].join("\n");
  assert.deepEqual(parsePlacements(log), { providers: { WebGpuExecutionProvider: 40, CPUExecutionProvider: 3 }, cpuOps: { Gather: 2, ReduceSum: 1 }, fallbackWarning: true });
});
