import assert from "node:assert/strict";
import { test } from "node:test";
import { BdcError } from "@bdc/core";
import { GraphBuilder } from "./builder.ts";
import { DeviceUploader } from "./device-tensors.ts";
import { identityModel } from "./identity-model.ts";
import { serializeInline } from "./onnx-writer.ts";
import { openSession, ort, sessionOptions, webgpuFailure, webgpuUnavailableReason, WEBGPU_INSTALL_HINT } from "./session.ts";

test("device: webgpu asks ORT for its bundled WebGPU provider and keeps the named outputs on the device; the CPU ignores them", () => {
  const gpu = sessionOptions({ device: "webgpu", threads: 2, outputsOnDevice: ["present.0", "present.1"] });
  assert.deepEqual(gpu.executionProviders, [{ name: "webgpu" }]);
  assert.deepEqual(gpu.preferredOutputLocation, { "present.0": "gpu-buffer", "present.1": "gpu-buffer" });
  const cpu = sessionOptions({ device: "cpu", threads: 2, outputsOnDevice: ["present.0"] });
  assert.deepEqual(cpu.executionProviders, ["cpu"]);
  assert.equal(cpu.preferredOutputLocation, undefined);
  assert.equal(sessionOptions({ device: "webgpu" }).preferredOutputLocation, undefined, "nothing asked, everything comes back to the host");
  assert.ok(ort.listSupportedBackends().some((b) => b.name === "webgpu" && b.bundled), "onnxruntime-node bundles the WebGPU provider");
});

test("device: webgpu without a GPU adapter is BDC_DEVICE_UNAVAILABLE with what to install, never a CPU run; with one, the model runs on it", async () => {
  const reason = await webgpuUnavailableReason();
  const model = identityModel("float32", 1);
  if (reason === undefined) {
    const session = await openSession(model, { device: "webgpu" });
    const out = await session.run({ x: new ort.Tensor("float32", Float32Array.of(1, 2, 3), [3]) });
    assert.deepEqual(Array.from(out["y"]!.data as Float32Array), [1, 2, 3]);
    await session.release();
    return;
  }
  await assert.rejects(openSession(model, { device: "webgpu" }), (e: unknown) => {
    assert.ok(e instanceof BdcError);
    assert.equal(e.code, "BDC_DEVICE_UNAVAILABLE");
    // The same sentence whether the loader is missing (checked first) or ORT finds no adapter.
    assert.equal(e.message, `device: webgpu was asked for an in-memory model, but ${reason}`);
    assert.equal(e.hint, WEBGPU_INSTALL_HINT);
    assert.match(e.hint ?? "", /apt install libvulkan1/);
    return true;
  });
});

test("ORT's own error when Dawn finds no adapter becomes one sentence naming it", async () => {
  // Straight to ORT, past our loader check: what a machine with the Vulkan loader but no GPU sees.
  let raw: unknown;
  try {
    const s = await ort.InferenceSession.create(identityModel("float32", 1), { executionProviders: [{ name: "webgpu" }], logSeverityLevel: 4 });
    await s.release();
  } catch (e) {
    raw = e;
  }
  if (raw === undefined) {
    assert.equal(await webgpuUnavailableReason(), undefined, "ORT opened a WebGPU session, so the probe finds the GPU too");
    return;
  }
  assert.match(webgpuFailure(raw), /^ONNX Runtime's WebGPU provider found no GPU adapter \(Dawn: "No supported adapters"\)$/);
  assert.match(webgpuFailure(new Error("something else\nsecond line")), /^ONNX Runtime's WebGPU provider failed to start: something else$/);
});

test("device_id on webgpu is refused rather than silently ignored (ORT 1.30 takes no adapter index)", async () => {
  await assert.rejects(openSession(identityModel("float32", 1), { device: "webgpu", deviceId: 1 }), (e: unknown) => {
    assert.ok(e instanceof BdcError && e.code === "BDC_DEVICE_UNAVAILABLE");
    assert.match(e.message, /device_id is for CUDA/);
    return true;
  });
});

test("DeviceUploader copies a tensor through its one-node session; dispose frees its copies, not the originals", async () => {
  const up = new DeviceUploader({ device: "cpu", threads: 1 });
  const host = new ort.Tensor("float32", Float32Array.from({ length: 6 }, (_, i) => i / 3), [2, 3]);
  const copy = await up.upload(host);
  assert.deepEqual(copy.dims, [2, 3]);
  assert.deepEqual(Array.from(copy.data as Float32Array), Array.from(host.data as Float32Array));
  const half = await up.upload(new ort.Tensor("float16", Uint16Array.of(0x3c00, 0x4000), [2]));
  assert.deepEqual(Array.from(half.data as Uint16Array), [0x3c00, 0x4000], "float16 goes through its own session");
  await up.dispose();
  assert.equal((host.data as Float32Array).length, 6, "the original is left alone");
  assert.throws(() => copy.data, "the copy is freed");
  // Feeding a model with an uploaded tensor is what the caches do: here on the CPU provider.
  const g = new GraphBuilder("sum");
  g.output(g.reduceSum(g.input("x", "float32", [2, 3]), [1]), "y");
  const s = await openSession(serializeInline(g.build()), { device: "cpu", threads: 1 });
  const second = new DeviceUploader({ device: "cpu", threads: 1 });
  const out = await s.run({ x: await second.upload(host) });
  assert.deepEqual(Array.from(out["y"]!.data as Float32Array).map((v) => Math.round(v * 3)), [3, 12]);
  await second.dispose();
  await s.release();
});
