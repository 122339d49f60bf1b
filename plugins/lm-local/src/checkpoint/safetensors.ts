/**
 * Hugging Face safetensors, read and written without a dependency.
 *
 * The format: an 8-byte little-endian header length N, N bytes of JSON
 * (`{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, offsets relative
 * to the end of the header), then the tensor bytes, row-major, little-endian. Large checkpoints
 * are split into shards named by `model.safetensors.index.json` (`weight_map`: name -> file).
 *
 * Reading never maps or loads a whole file: `readFloat32` reads one tensor's bytes at its offset,
 * so a 7B checkpoint costs memory only for the tensors asked for.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import { fileInvalid, fileMissing, isObject, readJsonObject, writeJson } from "./files.ts";
import { bfloat16ArrayToFloat32, float16ArrayToFloat32, float32ArrayToBfloat16, float32ArrayToFloat16 } from "@bdc/onnx-graph";

/** The dtypes this module converts to and from float32. */
export type FloatDtype = "F32" | "F16" | "BF16";
/** Every dtype name of the format (a checkpoint may hold others than floats; they can be described, not converted). */
export type SafetensorsDtype = FloatDtype | "F64" | "I64" | "I32" | "I16" | "I8" | "U64" | "U32" | "U16" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2";

export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

export const SINGLE_FILE = "model.safetensors";
export const INDEX_FILE = "model.safetensors.index.json";
/** The Rust reference implementation refuses larger headers; so do we (a corrupt length must not allocate gigabytes). */
const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** The file that holds it. */
  readonly file: string;
  /** Absolute position of its first byte in `file`. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** The weights of a checkpoint directory (one file or shards), read tensor by tensor. */
export interface CheckpointWeights {
  /** The directory, or the file for a single opened file. */
  readonly source: string;
  names(): string[];
  has(name: string): boolean;
  /** Throws BDC_MODEL_TENSOR_MISSING for a name the checkpoint does not hold. */
  info(name: string): TensorInfo;
  /** The tensor as float32 (F16 and BF16 converted exactly); other dtypes: BDC_MODEL_DTYPE_UNSUPPORTED. */
  readFloat32(name: string): Float32Array;
  /** The tensor's raw little-endian bytes as stored (e.g. to hand F16 weights to a runtime unconverted). */
  readBytes(name: string): Uint8Array;
  /** `__metadata__` of the (first) file. */
  metadata(): Record<string, string>;
  /** Closes the open files; reading afterwards reopens them. */
  close(): void;
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

interface Header {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function readFully(fd: number, target: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < target.length) {
    // readSync caps one read at 2 GiB; loop for the rest (and for short reads).
    const n = fs.readSync(fd, target, done, Math.min(target.length - done, 0x40000000), position + done);
    if (n === 0) throw fileInvalid(file, `ended after ${position + done} bytes while reading ${target.length} bytes at offset ${position}: truncated`);
    done += n;
  }
}

/** Reads and validates the header of one safetensors file. */
export function readSafetensorsHeader(file: string, fd: number): Header {
  const size = fs.fstatSync(fd).size;
  if (size < 8) throw fileInvalid(file, `is ${size} bytes long; a safetensors file starts with an 8-byte header length: truncated or not safetensors`);
  const lengthBytes = new Uint8Array(8);
  readFully(fd, lengthBytes, 0, file);
  const headerLength = Number(new DataView(lengthBytes.buffer).getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES) throw fileInvalid(file, `declares a ${headerLength}-byte header (the limit is ${MAX_HEADER_BYTES}): not a safetensors file`);
  if (8 + headerLength > size) {
    throw fileInvalid(file, `declares a ${headerLength}-byte header but is only ${size} bytes long: truncated or not a safetensors file`);
  }
  const headerBytes = new Uint8Array(headerLength);
  readFully(fd, headerBytes, 8, file);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw fileInvalid(file, `the header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isObject(json)) throw fileInvalid(file, "the header is not a JSON object");
  const dataStart = 8 + headerLength;
  const dataSize = size - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  const spans: Array<{ name: string; begin: number; end: number }> = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === "__metadata__") {
      if (!isObject(entry)) throw fileInvalid(file, "__metadata__ in the header is not an object");
      metadata = Object.fromEntries(Object.entries(entry).map(([k, v]) => [k, String(v)]));
      continue;
    }
    const where = `tensor "${name}"`;
    if (!isObject(entry)) throw fileInvalid(file, `${where}: the header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== "string" || !(dtype in DTYPE_BYTES)) throw fileInvalid(file, `${where}: unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_BYTES).join(", ")})`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw fileInvalid(file, `${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      throw fileInvalid(file, `${where}: data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataSize) throw fileInvalid(file, `${where}: data_offsets [${begin}, ${end}] run past the end of the data (${dataSize} bytes after the header): truncated`);
    const d = dtype as SafetensorsDtype;
    const expected = numel(shape as number[]) * DTYPE_BYTES[d];
    if (end - begin !== expected) {
      throw fileInvalid(file, `${where}: dtype ${d} and shape [${shape.join(", ")}] need ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    tensors.set(name, { name, dtype: d, shape: shape as number[], file, byteOffset: dataStart + begin, byteLength: end - begin });
    spans.push({ name, begin, end });
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1]!;
    const cur = spans[i]!;
    if (cur.begin < prev.end) throw fileInvalid(file, `tensors "${prev.name}" and "${cur.name}" overlap (data_offsets [${prev.begin}, ${prev.end}] and [${cur.begin}, ${cur.end}])`);
  }
  return { tensors, metadata };
}

class FileWeights implements CheckpointWeights {
  private readonly fds = new Map<string, number>();

  constructor(
    readonly source: string,
    private readonly tensors: Map<string, TensorInfo>,
    private readonly meta: Record<string, string>,
  ) {}

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (info === undefined) {
      throw new BdcError({
        code: "BDC_MODEL_TENSOR_MISSING",
        message: `${this.source}: the checkpoint has no tensor "${name}" (it has ${this.tensors.size}, e.g. ${[...this.tensors.keys()].slice(0, 3).map((n) => `"${n}"`).join(", ")})`,
        hint: "the checkpoint does not match its config.json (another architecture, or a LoRA adapter rather than a model); download it again",
      });
    }
    return info;
  }

  readBytes(name: string): Uint8Array {
    const info = this.info(name);
    let fd = this.fds.get(info.file);
    if (fd === undefined) {
      fd = fs.openSync(info.file, "r");
      this.fds.set(info.file, fd);
    }
    // A fresh ArrayBuffer is aligned for any typed-array view over it.
    const bytes = new Uint8Array(new ArrayBuffer(info.byteLength));
    readFully(fd, bytes, info.byteOffset, info.file);
    return bytes;
  }

  readFloat32(name: string): Float32Array {
    const info = this.info(name);
    if (info.dtype !== "F32" && info.dtype !== "F16" && info.dtype !== "BF16") {
      throw new BdcError({
        code: "BDC_MODEL_DTYPE_UNSUPPORTED",
        message: `${info.file}: tensor "${name}" is ${info.dtype}; only F32, F16 and BF16 weights can be read`,
        hint: "use an unquantised checkpoint (float32, float16 or bfloat16 safetensors)",
      });
    }
    if (!littleEndian) throw new BdcError({ code: "BDC_INTERNAL", message: "safetensors reading needs a little-endian machine" });
    const bytes = this.readBytes(name);
    const n = info.byteLength / DTYPE_BYTES[info.dtype];
    if (info.dtype === "F32") return new Float32Array(bytes.buffer, 0, n);
    const bits = new Uint16Array(bytes.buffer, 0, n);
    return info.dtype === "F16" ? float16ArrayToFloat32(bits) : bfloat16ArrayToFloat32(bits);
  }

  metadata(): Record<string, string> {
    return { ...this.meta };
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }
}

function headerOf(file: string): Header {
  const fd = fs.openSync(file, "r");
  try {
    return readSafetensorsHeader(file, fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** One safetensors file (e.g. a LoRA adapter's `adapter_model.safetensors`). */
export function openSafetensorsFile(file: string): CheckpointWeights {
  if (!fs.existsSync(file)) throw fileMissing(file, "a safetensors weights file");
  const header = headerOf(file);
  return new FileWeights(file, header.tensors, header.metadata);
}

/**
 * The weights of a checkpoint directory: `model.safetensors`, else the shards that
 * `model.safetensors.index.json` names (transformers looks in the same order).
 */
export function openCheckpointWeights(dir: string): CheckpointWeights {
  const single = path.join(dir, SINGLE_FILE);
  if (fs.existsSync(single)) {
    const header = headerOf(single);
    return new FileWeights(dir, header.tensors, header.metadata);
  }
  const indexFile = path.join(dir, INDEX_FILE);
  if (!fs.existsSync(indexFile)) {
    const legacy = ["pytorch_model.bin", "pytorch_model.bin.index.json"].find((f) => fs.existsSync(path.join(dir, f)));
    throw fileMissing(
      single,
      `the weights: neither ${SINGLE_FILE} nor ${INDEX_FILE} is in ${dir}`,
      legacy === undefined
        ? undefined
        : `${dir} holds PyTorch pickle weights (${legacy}), which are not read (unsafe to load); pull the repo's safetensors revision or convert it with transformers' save_pretrained(safe_serialization=True)`,
    );
  }
  const index = readJsonObject(indexFile, "the shard index");
  const weightMap = index.weight_map;
  if (!isObject(weightMap)) throw fileInvalid(indexFile, `"weight_map" is not an object of tensor name -> shard file`);
  const byFile = new Map<string, string[]>();
  for (const [name, file] of Object.entries(weightMap)) {
    if (typeof file !== "string" || file.includes("/") || file.includes("\\")) throw fileInvalid(indexFile, `weight_map["${name}"] is ${JSON.stringify(file)}, not a file name`);
    byFile.set(file, [...(byFile.get(file) ?? []), name]);
  }
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> | undefined;
  for (const [file, names] of byFile) {
    const shard = path.join(dir, file);
    if (!fs.existsSync(shard)) throw fileMissing(shard, `a shard that ${INDEX_FILE} names`, "the download is incomplete; pull the checkpoint again");
    const header = headerOf(shard);
    metadata ??= header.metadata;
    for (const name of names) {
      if (!header.tensors.has(name)) throw fileInvalid(indexFile, `weight_map puts tensor "${name}" in ${file}, which does not hold it`);
    }
    for (const [name, info] of header.tensors) {
      const other = tensors.get(name);
      if (other !== undefined) throw fileInvalid(shard, `tensor "${name}" is also in ${path.basename(other.file)}`);
      tensors.set(name, info);
    }
  }
  return new FileWeights(dir, tensors, metadata ?? {});
}

/** A tensor to write: float32 values, stored as `dtype` (rounded to nearest even for F16/BF16). */
export interface TensorToWrite {
  readonly name: string;
  readonly dtype: FloatDtype;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

function writeError(file: string, message: string): BdcError {
  return new BdcError({ code: "BDC_SAFETENSORS_WRITE", message: `${file}: ${message}`, hint: "a bug in the caller of writeSafetensors; please report it" });
}

function tensorBytes(t: TensorToWrite): Uint8Array {
  if (t.dtype === "F32") return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const bits = t.dtype === "F16" ? float32ArrayToFloat16(t.data) : float32ArrayToBfloat16(t.data);
  return new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
}

/** The 8-byte length, the JSON header (space-padded to 8 bytes) and the data size of a file of `tensors`. */
function safetensorsHead(tensors: ReadonlyArray<TensorToWrite>, metadata: Record<string, string>, file: string): { head: Uint8Array; dataBytes: number } {
  if (!littleEndian) throw new BdcError({ code: "BDC_INTERNAL", message: "safetensors writing needs a little-endian machine" });
  const header: Record<string, unknown> = { __metadata__: { format: "pt", ...metadata } };
  let offset = 0;
  for (const t of tensors) {
    if (t.name === "" || t.name === "__metadata__" || Object.hasOwn(header, t.name)) throw writeError(file, `tensor name "${t.name}" is empty, reserved or repeated`);
    if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16") throw writeError(file, `tensor "${t.name}": dtype ${t.dtype} is not F32, F16 or BF16`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw writeError(file, `tensor "${t.name}": shape [${t.shape.join(", ")}] is not a list of non-negative integers`);
    if (numel(t.shape) !== t.data.length) throw writeError(file, `tensor "${t.name}": shape [${t.shape.join(", ")}] has ${numel(t.shape)} elements but the data has ${t.data.length}`);
    const length = t.data.length * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + length] };
    offset += length;
  }
  // The format wants the data to start 8-byte aligned; the reference pads the header with spaces.
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return { head, dataBytes: offset };
}

/** One safetensors file's bytes, in memory (small files: adapters, optimizer state). */
export function safetensorsBytes(tensors: ReadonlyArray<TensorToWrite>, metadata: Record<string, string> = {}): Uint8Array {
  const { head, dataBytes } = safetensorsHead(tensors, metadata, "<memory>");
  const out = new Uint8Array(head.length + dataBytes);
  out.set(head);
  let at = head.length;
  for (const t of tensors) {
    const bytes = tensorBytes(t);
    out.set(bytes, at);
    at += bytes.length;
  }
  return out;
}

/** Writes one safetensors file, a tensor at a time. `metadata` is added to `__metadata__` ({"format": "pt"}, which transformers expects). */
export function writeSafetensors(file: string, tensors: ReadonlyArray<TensorToWrite>, metadata: Record<string, string> = {}): void {
  const { head } = safetensorsHead(tensors, metadata, file);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, "w");
  try {
    fs.writeSync(fd, head);
    for (const t of tensors) fs.writeSync(fd, tensorBytes(t));
  } finally {
    fs.closeSync(fd);
  }
}

export function shardFileName(index: number, count: number): string {
  return `model-${String(index + 1).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.safetensors`;
}

/**
 * Writes a checkpoint's weights into `dir` as transformers does: `model.safetensors` for one
 * shard, else `model-0000i-of-0000N.safetensors` (tensors kept in order, split into N runs of
 * about equal bytes, none empty) and `model.safetensors.index.json`. Returns the files written.
 */
export function writeCheckpointWeights(dir: string, tensors: ReadonlyArray<TensorToWrite>, options: { shards?: number; metadata?: Record<string, string> } = {}): string[] {
  const shards = options.shards ?? 1;
  if (!Number.isInteger(shards) || shards < 1 || shards > Math.max(1, tensors.length)) {
    throw writeError(dir, `cannot split ${tensors.length} tensors into ${shards} shards (1 to ${tensors.length}, none empty)`);
  }
  // A stale file of the other layout would win over (or confuse) the new one when read back.
  fs.rmSync(path.join(dir, shards === 1 ? INDEX_FILE : SINGLE_FILE), { force: true });
  if (shards === 1) {
    const file = path.join(dir, SINGLE_FILE);
    writeSafetensors(file, tensors, options.metadata);
    return [file];
  }
  const bytes = tensors.map((t) => t.data.length * DTYPE_BYTES[t.dtype]);
  const groups: TensorToWrite[][] = [];
  let next = 0;
  let remaining = bytes.reduce((a, b) => a + b, 0);
  const totalSize = remaining;
  for (let s = 0; s < shards; s++) {
    const group: TensorToWrite[] = [];
    let size = 0;
    const target = remaining / (shards - s);
    const last = s === shards - 1 ? tensors.length : tensors.length - (shards - s - 1); // leave one per later shard
    // At least one tensor; then a tensor joins while at least half of it fits in the even share.
    while (next < last && (group.length === 0 || s === shards - 1 || size + bytes[next]! / 2 <= target)) {
      group.push(tensors[next]!);
      size += bytes[next]!;
      next++;
    }
    remaining -= size;
    groups.push(group);
  }
  const weightMap: Record<string, string> = {};
  const files: string[] = [];
  groups.forEach((group, i) => {
    const name = shardFileName(i, shards);
    const file = path.join(dir, name);
    writeSafetensors(file, group, options.metadata);
    for (const t of group) weightMap[t.name] = name;
    files.push(file);
  });
  const index = path.join(dir, INDEX_FILE);
  writeJson(index, { metadata: { total_size: totalSize }, weight_map: weightMap });
  files.push(index);
  return files;
}
