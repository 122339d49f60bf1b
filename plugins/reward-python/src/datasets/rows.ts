/**
 * Rows of a dataset file, JSONL (optionally gzipped) or parquet, with where each row came from
 * (`file:line` for JSONL, `file:row` for parquet, 1-based) and a locator to read one row again
 * later. Datasets keep only the locator of each problem, not its hidden tests: the hidden half
 * is re-read from the file when scoring asks for it, so a large split is never held in memory.
 */
import * as fs from "node:fs";
import * as zlib from "node:zlib";
import { BdcError } from "@bdc/core";

export type Format = "jsonl" | "parquet";
export type FormatOption = "auto" | Format;

/** Where a row is in its file: a line of a JSONL file, or a row number of a parquet file (1-based). */
export interface RowAt {
  readonly file: string;
  readonly line: number;
}

export type RowLoc = { readonly kind: "bytes"; readonly offset: number; readonly length: number } | { readonly kind: "row"; readonly index: number };

export type Row = Record<string, unknown>;

export type Scanned = { readonly at: RowAt; readonly loc: RowLoc; readonly row: Row } | { readonly at: RowAt; readonly error: string };

export interface RowSource {
  readonly file: string;
  readonly format: Format;
  /** Every row of the file in order; a row that does not parse is reported, not thrown. */
  scan(signal?: AbortSignal): AsyncIterable<Scanned>;
  /** One row again, by the locator `scan` gave. */
  fetch(loc: RowLoc, at: RowAt): Promise<Row>;
}

export function detectFormat(file: string, format: FormatOption): Format {
  if (format !== "auto") return format;
  return /\.parquet$/i.test(file) ? "parquet" : "jsonl";
}

export function openRows(file: string, format: FormatOption, plugin: string, columns?: ReadonlyArray<string>): RowSource {
  const f = detectFormat(file, format);
  return f === "parquet" ? new ParquetRows(file, plugin, columns) : new JsonlRows(file, plugin);
}

export const parseError = (at: RowAt, message: string, plugin: string, hint?: string): BdcError =>
  new BdcError({ code: "BDC_DATASET_PARSE", message: `${at.file}:${at.line}: ${message}`, plugin, ...(hint === undefined ? {} : { hint }) });

function fileError(file: string, plugin: string, cause: unknown): BdcError {
  const e = cause as NodeJS.ErrnoException;
  if (e.code === "ENOENT") {
    return new BdcError({ code: "BDC_FILE_NOT_FOUND", message: `no such file: ${file}`, hint: "a relative path is resolved from the directory of the YAML file that sets it; `bdc data pull` downloads APPS and CodeContests", plugin });
  }
  return new BdcError({ code: "BDC_DATASET_PARSE", message: `${file}: cannot read: ${e.message}`, plugin, cause });
}

interface Stamp {
  readonly size: number;
  readonly mtimeMs: number;
}

const stampOf = (file: string): Stamp => {
  const st = fs.statSync(file);
  return { size: st.size, mtimeMs: st.mtimeMs };
};

function checkStamp(file: string, stamp: Stamp | undefined, plugin: string): void {
  let now: Stamp;
  try {
    now = stampOf(file);
  } catch (cause) {
    throw fileError(file, plugin, cause);
  }
  if (stamp !== undefined && (now.size !== stamp.size || now.mtimeMs !== stamp.mtimeMs)) {
    throw new BdcError({
      code: "BDC_DATASET_CHANGED",
      message: `${file}: the file changed after the dataset was loaded; its hidden tests cannot be read consistently`,
      hint: "do not replace dataset files while a run uses them; start the run again",
      plugin,
    });
  }
}

function parseJsonLine(text: string): { row: Row } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    return { error: `not valid JSON: ${(cause as Error).message}` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { error: "expected a JSON object per line" };
  return { row: value as Row };
}

const NL = 10;

/** JSONL, one object per line; `.gz` files are decompressed into memory once. */
class JsonlRows implements RowSource {
  readonly format = "jsonl" as const;
  private stamp: Stamp | undefined;
  private gz: Buffer | undefined;

  constructor(
    readonly file: string,
    private readonly plugin: string,
  ) {}

  private get gzipped(): boolean {
    return /\.gz$/i.test(this.file);
  }

  private async *chunks(): AsyncIterable<Buffer> {
    if (this.gzipped) {
      if (this.gz === undefined) {
        let raw: Buffer;
        try {
          raw = await fs.promises.readFile(this.file);
        } catch (cause) {
          throw fileError(this.file, this.plugin, cause);
        }
        try {
          this.gz = zlib.gunzipSync(raw);
        } catch (cause) {
          throw new BdcError({ code: "BDC_DATASET_PARSE", message: `${this.file}: not a valid gzip file: ${(cause as Error).message}`, plugin: this.plugin });
        }
      }
      yield this.gz;
      return;
    }
    const stream = fs.createReadStream(this.file, { highWaterMark: 1 << 20 });
    try {
      for await (const chunk of stream) yield chunk as Buffer;
    } catch (cause) {
      throw fileError(this.file, this.plugin, cause);
    }
  }

  async *scan(signal?: AbortSignal): AsyncIterable<Scanned> {
    try {
      this.stamp = stampOf(this.file);
    } catch (cause) {
      throw fileError(this.file, this.plugin, cause);
    }
    let pending: Buffer[] = [];
    let lineStart = 0; // byte offset of the current line
    let lineNo = 0;
    const emit = (parts: Buffer[], length: number): Scanned | undefined => {
      lineNo++;
      const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
      const text = buf.toString("utf8");
      const at = { file: this.file, line: lineNo };
      const start = lineStart;
      lineStart += length + 1;
      if (text.trim() === "") return undefined;
      const parsed = parseJsonLine(text);
      return "error" in parsed ? { at, error: parsed.error } : { at, loc: { kind: "bytes", offset: start, length }, row: parsed.row };
    };
    for await (const chunk of this.chunks()) {
      signal?.throwIfAborted();
      let from = 0;
      for (;;) {
        const nl = chunk.indexOf(NL, from);
        if (nl < 0) break;
        const piece = chunk.subarray(from, nl);
        const parts = pending.length === 0 ? [piece] : [...pending, piece];
        const length = parts.reduce((n, b) => n + b.length, 0);
        pending = [];
        const out = emit(parts, length);
        if (out !== undefined) yield out;
        from = nl + 1;
      }
      if (from < chunk.length) pending.push(chunk.subarray(from));
    }
    if (pending.length > 0) {
      const length = pending.reduce((n, b) => n + b.length, 0);
      const out = emit(pending, length);
      if (out !== undefined) yield out;
    }
  }

  async fetch(loc: RowLoc, at: RowAt): Promise<Row> {
    if (loc.kind !== "bytes") throw new Error("JSONL rows are located by byte offset");
    let buf: Buffer;
    if (this.gzipped) {
      if (this.gz === undefined) for await (const _ of this.chunks()) void _;
      buf = this.gz!.subarray(loc.offset, loc.offset + loc.length);
    } else {
      checkStamp(this.file, this.stamp, this.plugin);
      buf = Buffer.alloc(loc.length);
      const fh = await fs.promises.open(this.file, "r").catch((cause) => {
        throw fileError(this.file, this.plugin, cause);
      });
      try {
        let done = 0;
        while (done < loc.length) {
          const { bytesRead } = await fh.read(buf, done, loc.length - done, loc.offset + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
      } finally {
        await fh.close();
      }
    }
    const parsed = parseJsonLine(buf.toString("utf8"));
    if ("error" in parsed) throw parseError(at, parsed.error, this.plugin);
    return parsed.row;
  }
}

/** Parquet converts int64 to bigint; rows are JSON-like here, so they become numbers. */
function plain(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Uint8Array) return Buffer.from(value).toString("utf8");
  if (value !== null && typeof value === "object" && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

type Hyparquet = typeof import("hyparquet");
type AsyncBuffer = import("hyparquet").AsyncBuffer;
type FileMetaData = import("hyparquet").FileMetaData;

/** Parquet, read row group by row group with hyparquet (pure JS). */
class ParquetRows implements RowSource {
  readonly format = "parquet" as const;
  private opened: Promise<{ hp: Hyparquet; buf: AsyncBuffer; meta: FileMetaData; columns: string[] | undefined; groups: Array<{ start: number; end: number }> }> | undefined;
  private stamp: Stamp | undefined;
  /** The last row group read by `fetch` (scoring asks for problems in file order). */
  private cached: { group: number; rows: Promise<Row[]> } | undefined;

  constructor(
    readonly file: string,
    private readonly plugin: string,
    private readonly wanted?: ReadonlyArray<string>,
  ) {}

  private open() {
    this.opened ??= (async () => {
      try {
        this.stamp = stampOf(this.file);
      } catch (cause) {
        throw fileError(this.file, this.plugin, cause);
      }
      const hp = await import("hyparquet");
      try {
        const buf = await hp.asyncBufferFromFile(this.file);
        const meta = await hp.parquetMetadataAsync(buf);
        const top = new Set(hp.parquetSchema(meta).children.map((c) => c.element.name));
        const columns = this.wanted === undefined ? undefined : this.wanted.filter((c) => top.has(c));
        const groups: Array<{ start: number; end: number }> = [];
        let start = 0;
        for (const rg of meta.row_groups) {
          const n = Number(rg.num_rows);
          groups.push({ start, end: start + n });
          start += n;
        }
        return { hp, buf, meta, columns, groups };
      } catch (cause) {
        if (cause instanceof BdcError) throw cause;
        throw new BdcError({ code: "BDC_DATASET_PARSE", message: `${this.file}: not a readable parquet file: ${(cause as Error).message}`, plugin: this.plugin, cause });
      }
    })();
    this.opened.catch(() => (this.opened = undefined));
    return this.opened;
  }

  private async readGroup(g: number): Promise<Row[]> {
    const { hp, buf, meta, columns, groups } = await this.open();
    const { start, end } = groups[g]!;
    try {
      const rows = await hp.parquetReadObjects({ file: buf, metadata: meta, rowStart: start, rowEnd: end, ...(columns === undefined ? {} : { columns }) });
      return rows.map((r) => plain(r) as Row);
    } catch (cause) {
      throw new BdcError({ code: "BDC_DATASET_PARSE", message: `${this.file}:${start + 1}: cannot decode parquet rows ${start + 1}-${end}: ${(cause as Error).message}`, plugin: this.plugin, cause });
    }
  }

  async *scan(signal?: AbortSignal): AsyncIterable<Scanned> {
    this.opened = undefined;
    const { groups } = await this.open();
    for (const [g, { start }] of groups.entries()) {
      signal?.throwIfAborted();
      const rows = await this.readGroup(g);
      for (const [i, row] of rows.entries()) {
        yield { at: { file: this.file, line: start + i + 1 }, loc: { kind: "row", index: start + i }, row };
      }
    }
  }

  async fetch(loc: RowLoc, at: RowAt): Promise<Row> {
    if (loc.kind !== "row") throw new Error("parquet rows are located by index");
    checkStamp(this.file, this.stamp, this.plugin);
    const { groups } = await this.open();
    const g = groups.findIndex((x) => loc.index >= x.start && loc.index < x.end);
    if (g < 0) throw parseError(at, "row not found (the file changed?)", this.plugin);
    if (this.cached?.group !== g) {
      const rows = this.readGroup(g);
      this.cached = { group: g, rows };
      rows.catch(() => {
        if (this.cached?.rows === rows) this.cached = undefined;
      });
    }
    const rows = await this.cached.rows;
    return rows[loc.index - groups[g]!.start]!;
  }
}
