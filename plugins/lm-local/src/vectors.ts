/**
 * Embedding vectors on disk, not as JSON numbers: an append-only file of float32 rows behind a
 * 16-byte header ("BDCVEC1\0", the dimension as uint32, 4 reserved bytes). A step appends a row
 * as each item finishes and records its row number in the item's output, so `--resume` keeps
 * every finished vector; a row torn by a crash (a partial last row) is cut off on reopen. Rows
 * written for items that never finished are never referenced.
 */
import * as fs from "node:fs";
import { BdcError } from "@bdc/core";

const MAGIC = "BDCVEC1\0";
const HEADER = 16;

function header(dim: number): Uint8Array {
  const h = new Uint8Array(HEADER);
  h.set(new TextEncoder().encode(MAGIC));
  new DataView(h.buffer).setUint32(8, dim, true);
  return h;
}

function readDim(file: string, fd: number): number {
  const h = new Uint8Array(HEADER);
  if (fs.readSync(fd, h, 0, HEADER, 0) !== HEADER || new TextDecoder().decode(h.subarray(0, 8)) !== MAGIC) {
    throw new BdcError({ code: "BDC_VECTORS_FILE", message: `${file} is not a vectors file (no BDCVEC1 header)`, hint: "delete it and embed again" });
  }
  return new DataView(h.buffer).getUint32(8, true);
}

export class VectorAppender {
  private fd: number;
  private rows: number;

  constructor(
    readonly file: string,
    readonly dim: number,
  ) {
    if (!fs.existsSync(file)) fs.writeFileSync(file, header(dim));
    this.fd = fs.openSync(file, "r+");
    const have = readDim(file, this.fd);
    if (have !== dim) {
      fs.closeSync(this.fd);
      throw new BdcError({ code: "BDC_VECTORS_FILE", message: `${file} holds vectors of dimension ${have}; the encoder gives ${dim}`, hint: "the encoder changed: start a new run (or delete the step's folder)" });
    }
    const size = fs.fstatSync(this.fd).size;
    this.rows = Math.floor((size - HEADER) / (4 * dim));
    // A torn last row (a crash mid-write) is cut off.
    if (size !== HEADER + this.rows * 4 * dim) fs.ftruncateSync(this.fd, HEADER + this.rows * 4 * dim);
  }

  /** Appends one vector; returns its row number. */
  append(v: Float32Array): number {
    if (v.length !== this.dim) throw new BdcError({ code: "BDC_VECTORS_FILE", message: `a vector of ${v.length} values for a file of dimension ${this.dim}` });
    const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    let written = 0;
    const at = HEADER + this.rows * 4 * this.dim;
    while (written < bytes.length) written += fs.writeSync(this.fd, bytes, written, bytes.length - written, at + written);
    return this.rows++;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** The given rows of a vectors file, [rows.length, dim] row-major. */
export function readVectorRows(file: string, rows: ReadonlyArray<number>): { dim: number; vectors: Float32Array } {
  const fd = fs.openSync(file, "r");
  try {
    const dim = readDim(file, fd);
    const size = fs.fstatSync(fd).size;
    const count = Math.floor((size - HEADER) / (4 * dim));
    const out = new Float32Array(rows.length * dim);
    const bytes = new Uint8Array(out.buffer);
    rows.forEach((r, i) => {
      if (!Number.isInteger(r) || r < 0 || r >= count) throw new BdcError({ code: "BDC_VECTORS_FILE", message: `${file} has ${count} rows; row ${r} was asked for` });
      fs.readSync(fd, bytes, i * dim * 4, dim * 4, HEADER + r * dim * 4);
    });
    return { dim, vectors: out };
  } finally {
    fs.closeSync(fd);
  }
}
