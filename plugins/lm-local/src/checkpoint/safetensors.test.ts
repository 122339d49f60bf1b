import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { BdcError } from "@bdc/core";
import { INDEX_FILE, openCheckpointWeights, openSafetensorsFile, writeCheckpointWeights, writeSafetensors, type TensorToWrite } from "./safetensors.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-safetensors-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (name = "model.safetensors") => {
  const dir = path.join(tmp, String(n++));
  fs.mkdirSync(dir);
  return path.join(dir, name);
};

/** A file with the given header object and `dataBytes` zero bytes after it. */
function rawFile(header: unknown, dataBytes: number, file = fresh()): string {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
  return file;
}

function rejects(fn: () => unknown, code: string, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BdcError, String(e));
    assert.equal(e.code, code, e.message);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

const representable = [0, -0, 1, -2, 0.5, 1.5, 3.140625, -0.25, 1024, 2 ** -14, 2 ** -24, 1023 * 2 ** -24, 65504, Infinity, -Infinity, NaN];

test("round trip F32, F16 and BF16: representable values come back exactly", () => {
  const f32 = new Float32Array([...representable, 0.1, 1e-30, 3.4e38, Math.PI]);
  const bf16 = new Float32Array([0, -0, 1, -2, 0.5, 3.140625, 2 ** -133, 2 ** -126, 1.5 * 2 ** 100, Infinity, -Infinity, NaN]);
  const file = fresh();
  writeSafetensors(file, [
    { name: "a.f32", dtype: "F32", shape: [4, 5], data: f32 },
    { name: "b.f16", dtype: "F16", shape: [representable.length], data: new Float32Array(representable) },
    { name: "c.bf16", dtype: "BF16", shape: [3, 2, 2], data: bf16 },
    { name: "d.empty", dtype: "F32", shape: [0, 3], data: new Float32Array(0) },
    { name: "e.scalar", dtype: "F16", shape: [], data: new Float32Array([7]) },
  ]);
  const w = openSafetensorsFile(file);
  assert.deepEqual(w.names(), ["a.f32", "b.f16", "c.bf16", "d.empty", "e.scalar"]);
  const same = (got: Float32Array, want: Float32Array) => {
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) assert.ok(Object.is(got[i], want[i]), `[${i}]: ${got[i]} vs ${want[i]}`);
  };
  same(w.readFloat32("a.f32"), f32);
  same(w.readFloat32("b.f16"), new Float32Array(representable));
  same(w.readFloat32("c.bf16"), bf16);
  same(w.readFloat32("d.empty"), new Float32Array(0));
  same(w.readFloat32("e.scalar"), new Float32Array([7]));
  assert.deepEqual(w.info("c.bf16").shape, [3, 2, 2]);
  assert.equal(w.info("c.bf16").dtype, "BF16");
  assert.equal(w.info("c.bf16").byteLength, 24);
  assert.deepEqual(w.metadata(), { format: "pt" });
  w.close();
});

test("F16 and BF16 writing rounds to nearest even; the bytes are little-endian bit patterns", () => {
  const file = fresh();
  writeSafetensors(file, [
    { name: "h", dtype: "F16", shape: [3], data: new Float32Array([1, 1 + 2 ** -11, 0.1]) },
    { name: "b", dtype: "BF16", shape: [3], data: new Float32Array([1, 1 + 3 * 2 ** -8, 0.1]) },
  ]);
  const w = openSafetensorsFile(file);
  assert.deepEqual([...w.readBytes("h")], [0x00, 0x3c, 0x00, 0x3c, 0x66, 0x2e]); // 0.1 -> 0x2e66
  assert.deepEqual([...w.readBytes("b")], [0x80, 0x3f, 0x82, 0x3f, 0xcd, 0x3d]); // 0.1 -> 0x3dcd
  assert.equal(w.readFloat32("h")[2], 0.0999755859375);
  assert.equal(w.readFloat32("b")[2], 0.10009765625);
  w.close();
});

test("the header is JSON padded to 8 bytes, with __metadata__ format pt", () => {
  const file = fresh();
  writeSafetensors(file, [{ name: "x", dtype: "F32", shape: [1], data: new Float32Array([1]) }], { source: "test" });
  const bytes = fs.readFileSync(file);
  const len = Number(bytes.readBigUInt64LE(0));
  assert.equal(len % 8, 0);
  const header = JSON.parse(bytes.subarray(8, 8 + len).toString("utf8"));
  assert.deepEqual(header.__metadata__, { format: "pt", source: "test" });
  assert.deepEqual(header.x, { dtype: "F32", shape: [1], data_offsets: [0, 4] });
  assert.equal(bytes.length, 8 + len + 4);
});

test("header validation: truncated files, offsets past the end, inconsistent entries", () => {
  const good = fresh();
  writeSafetensors(good, [{ name: "w", dtype: "F32", shape: [4, 4], data: new Float32Array(16) }]);
  const bytes = fs.readFileSync(good);

  const cut = fresh();
  fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 10));
  rejects(() => openSafetensorsFile(cut), "BDC_MODEL_FILE_INVALID", new RegExp(cut.replace(/[/\\.]/g, "\\$&")), /tensor "w"/, /run past the end/, /truncated/);

  const tiny = fresh();
  fs.writeFileSync(tiny, bytes.subarray(0, 5));
  rejects(() => openSafetensorsFile(tiny), "BDC_MODEL_FILE_INVALID", /is 5 bytes long/);

  const headerCut = fresh();
  fs.writeFileSync(headerCut, bytes.subarray(0, 20));
  rejects(() => openSafetensorsFile(headerCut), "BDC_MODEL_FILE_INVALID", /declares a \d+-byte header but is only 20 bytes long/);

  rejects(() => openSafetensorsFile(rawFile("{not json", 0)), "BDC_MODEL_FILE_INVALID", /not valid UTF-8 JSON/);
  rejects(() => openSafetensorsFile(rawFile("[1,2]", 0)), "BDC_MODEL_FILE_INVALID", /not a JSON object/);
  rejects(() => openSafetensorsFile(rawFile({ w: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, 4)), "BDC_MODEL_FILE_INVALID", /data_offsets \[0, 8\] run past the end of the data \(4 bytes/);
  rejects(() => openSafetensorsFile(rawFile({ w: { dtype: "F16", shape: [2, 3], data_offsets: [0, 8] } }, 16)), "BDC_MODEL_FILE_INVALID", /dtype F16 and shape \[2, 3\] need 12 bytes but data_offsets \[0, 8\] span 8/);
  rejects(() => openSafetensorsFile(rawFile({ w: { dtype: "F33", shape: [1], data_offsets: [0, 4] } }, 4)), "BDC_MODEL_FILE_INVALID", /unknown dtype "F33"/);
  rejects(() => openSafetensorsFile(rawFile({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, 4)), "BDC_MODEL_FILE_INVALID", /shape/);
  rejects(() => openSafetensorsFile(rawFile({ w: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, 4)), "BDC_MODEL_FILE_INVALID", /data_offsets/);
  rejects(
    () => openSafetensorsFile(rawFile({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, 12)),
    "BDC_MODEL_FILE_INVALID",
    /overlap/,
  );
  const huge = fresh();
  const len = Buffer.alloc(16);
  len.writeBigUInt64LE(1n << 40n);
  fs.writeFileSync(huge, len);
  rejects(() => openSafetensorsFile(huge), "BDC_MODEL_FILE_INVALID", /header \(the limit is/);
});

test("other dtypes are described but not converted; unknown names are a clear error", () => {
  const file = rawFile({ ids: { dtype: "I64", shape: [2], data_offsets: [0, 16] }, __metadata__: { format: "pt" } }, 16);
  const w = openSafetensorsFile(file);
  assert.equal(w.info("ids").dtype, "I64");
  assert.equal(w.readBytes("ids").length, 16);
  rejects(() => w.readFloat32("ids"), "BDC_MODEL_DTYPE_UNSUPPORTED", /tensor "ids" is I64; only F32, F16 and BF16/);
  rejects(() => w.info("nope"), "BDC_MODEL_TENSOR_MISSING", /no tensor "nope"/);
  assert.equal(w.has("nope"), false);
});

function tensors(count: number, dtype: TensorToWrite["dtype"] = "F32"): TensorToWrite[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `layer.${i}.weight`,
    dtype,
    shape: [i + 1, 4],
    data: Float32Array.from({ length: (i + 1) * 4 }, (_, j) => i + j / 8),
  }));
}

test("sharded checkpoints: written as transformers names them, read through the index", () => {
  const dir = path.dirname(fresh());
  const ts = tensors(7, "BF16");
  const files = writeCheckpointWeights(dir, ts, { shards: 3 });
  assert.deepEqual(
    files.map((f) => path.basename(f)),
    ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors", INDEX_FILE],
  );
  const index = JSON.parse(fs.readFileSync(path.join(dir, INDEX_FILE), "utf8"));
  assert.equal(index.metadata.total_size, ts.reduce((a, t) => a + t.data.length * 2, 0));
  assert.deepEqual(Object.keys(index.weight_map), ts.map((t) => t.name));
  assert.equal(new Set(Object.values(index.weight_map)).size, 3);

  const w = openCheckpointWeights(dir);
  assert.deepEqual(w.names().sort(), ts.map((t) => t.name).sort());
  for (const t of ts) {
    assert.deepEqual([...w.readFloat32(t.name)], [...t.data]); // i + j/8 is exact in bfloat16
    assert.equal(path.basename(w.info(t.name).file), index.weight_map[t.name]);
  }
  w.close();

  // A single file replaces the shards' index (a stale index would be read instead of nothing).
  writeCheckpointWeights(dir, ts.slice(0, 2));
  assert.equal(fs.existsSync(path.join(dir, INDEX_FILE)), false);
  assert.deepEqual(openCheckpointWeights(dir).names(), ["layer.0.weight", "layer.1.weight"]);
});

test("sharded checkpoints: a missing shard or a wrong weight_map entry names the file", () => {
  const dir = path.dirname(fresh());
  writeCheckpointWeights(dir, tensors(4), { shards: 2 });
  const indexFile = path.join(dir, INDEX_FILE);
  const original = fs.readFileSync(indexFile, "utf8");
  const index = JSON.parse(original);
  index.weight_map["layer.0.weight"] = "model-00002-of-00002.safetensors";
  fs.writeFileSync(indexFile, JSON.stringify(index));
  rejects(() => openCheckpointWeights(dir), "BDC_MODEL_FILE_INVALID", /model\.safetensors\.index\.json/, /"layer\.0\.weight" in model-00002-of-00002\.safetensors, which does not hold it/);
  fs.writeFileSync(indexFile, original);
  fs.rmSync(path.join(dir, "model-00001-of-00002.safetensors"));
  rejects(() => openCheckpointWeights(dir), "BDC_MODEL_FILE_MISSING", /model-00001-of-00002\.safetensors: not found/);
});

test("a directory without weights: BDC_MODEL_FILE_MISSING with how to get a checkpoint", () => {
  const dir = path.dirname(fresh());
  assert.throws(
    () => openCheckpointWeights(dir),
    (e: unknown) => e instanceof BdcError && e.code === "BDC_MODEL_FILE_MISSING" && e.message.includes(dir) && /models pull/.test(e.hint ?? "") && /make-tiny/.test(e.hint ?? ""),
  );
  fs.writeFileSync(path.join(dir, "pytorch_model.bin"), "");
  assert.throws(() => openCheckpointWeights(dir), (e: unknown) => e instanceof BdcError && /pickle/.test(e.hint ?? ""));
});

test("the writer refuses inconsistent tensors", () => {
  const file = fresh();
  rejects(() => writeSafetensors(file, [{ name: "x", dtype: "F32", shape: [2, 2], data: new Float32Array(3) }]), "BDC_SAFETENSORS_WRITE", /shape \[2, 2\] has 4 elements but the data has 3/);
  rejects(() => writeSafetensors(file, [tensors(1)[0]!, tensors(1)[0]!]), "BDC_SAFETENSORS_WRITE", /repeated/);
  rejects(() => writeCheckpointWeights(path.dirname(file), tensors(2), { shards: 3 }), "BDC_SAFETENSORS_WRITE", /cannot split 2 tensors into 3 shards/);
});
