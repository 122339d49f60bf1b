/**
 * What every problem dataset of this package shares: the common config keys, id filters, the
 * handling of malformed rows, and `ProblemDataset`, which implements both the kernel's
 * `DatasetImpl<PublicProblem>` (items, for search) and `HiddenTestSource` (hidden tests and
 * reference solutions, for scoring).
 *
 * Items are built from the public part of a row only. The hidden tests and references are not
 * kept: `hiddenTests(id)` / `references(id)` read the problem's row again from the file (by byte
 * offset, or parquet row) and parse it again. Search code, which only receives items, cannot
 * reach them.
 */
import * as fs from "node:fs";
import { Schema } from "effect";
import { BdcError, FilePath, option, optional, required, type DatasetImpl, type Item, type KernelServices, type PreflightProblem } from "@bdc/core";
import type { HiddenTestSource, PublicProblem, TestCase } from "../types.ts";
import { openRows, parseError, type FormatOption, type Row, type RowAt, type RowLoc, type RowSource } from "./rows.ts";

// ---------------------------------------------------------------------------------------------
// Config

export const OnMalformed = Schema.Literal("error", "skip");
export type OnMalformed = typeof OnMalformed.Type;

/** "4000-4099", "0-99,3000-3099", "12": inclusive ranges of numeric ids. */
export function parseRanges(text: string): Array<[number, number]> | undefined {
  const parts = text.split(",").map((p) => p.trim());
  const out: Array<[number, number]> = [];
  for (const p of parts) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(p);
    if (m === null) return undefined;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) return undefined;
    out.push([a, b]);
  }
  return out.length === 0 ? undefined : out;
}

export const IdRanges = Schema.String.pipe(
  Schema.filter((s) => parseRanges(s) !== undefined || 'expected id ranges such as "4000-4099" or "0-99,3000-3099"', {
    description: "a string of id ranges",
  }),
);

export const IdsFilter = Schema.Union(IdRanges, Schema.Array(Schema.Union(Schema.String, Schema.Int)));
export type IdsFilter = typeof IdsFilter.Type;

/**
 * A list keeps exactly the ids listed; a range string keeps ids whose number (the id itself, or
 * its trailing number: "HumanEval/12" -> 12) lies in one of the ranges.
 */
export function idMatcher(ids: IdsFilter | undefined): ((id: string) => boolean) | undefined {
  if (ids === undefined) return undefined;
  if (typeof ids === "string") {
    const ranges = parseRanges(ids)!;
    return (id) => {
      const m = /(\d+)$/.exec(id);
      if (m === null) return false;
      const n = Number(m[1]);
      return ranges.some(([a, b]) => n >= a && n <= b);
    };
  }
  const set = new Set(ids.map(String));
  return (id) => set.has(id);
}

export const commonFields = {
  path: required(FilePath, "the dataset file (relative to the YAML file that sets it)"),
  format: option(Schema.Literal("auto", "jsonl", "parquet"), "auto", "file format; auto: parquet for *.parquet, else JSONL (*.gz is decompressed)"),
  limit: optional(Schema.Int.pipe(Schema.positive()), "keep only the first N problems (after the filters)"),
  time_limit_ms: optional(Schema.Int.pipe(Schema.positive()), "per-test time limit for every problem, replacing the dataset's own"),
  on_malformed: option(
    OnMalformed,
    "error",
    "a malformed row (bad JSON, missing fields, unparseable tests): error = fail the load naming file:line; skip = leave the row out with a warning (log line and a malformed_row event)",
  ),
};

export function fileExists(file: string): PreflightProblem[] {
  return fs.existsSync(file)
    ? []
    : [
        {
          code: "BDC_FILE_NOT_FOUND",
          path: ["path"],
          message: `no such file: ${file}`,
          hint: "a relative path is resolved from the directory of the YAML file that sets it; `bdc data pull apps|codecontests` downloads those datasets",
        },
      ];
}

// ---------------------------------------------------------------------------------------------
// Row parsing helpers: a malformed row throws RowError with a message (the caller adds file:line).

export class RowError extends Error {}

export const fail = (message: string): never => {
  throw new RowError(message);
};

export function field<T>(row: Row, key: string, check: (v: unknown) => v is T, what: string): T {
  const v = row[key];
  if (v === undefined || v === null) return fail(`missing field "${key}"`);
  if (!check(v)) return fail(`field "${key}" is not ${what}: ${preview(v)}`);
  return v;
}

export const isString = (v: unknown): v is string => typeof v === "string";
export const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
export const isStringOrNumber = (v: unknown): v is string | number => isString(v) || isNumber(v);
export const isArray = (v: unknown): v is unknown[] => Array.isArray(v);
export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export function preview(v: unknown): string {
  const s = typeof v === "string" ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** A field holding JSON text (APPS `input_output`, `solutions`). */
export function jsonField(row: Row, key: string): unknown {
  const text = field(row, key, isString, "a string");
  try {
    return JSON.parse(text);
  } catch (e) {
    return fail(`field "${key}" is not valid JSON: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The dataset

/** A problem as a dataset reads it from one row: the public part, and what only scoring sees. */
export interface ParsedProblem {
  readonly problem: PublicProblem;
  readonly hidden: ReadonlyArray<TestCase>;
  readonly references: ReadonlyArray<string>;
}

/** A row that is well formed but not a usable problem (no tests), or filtered by a plugin rule. */
export interface Skipped {
  readonly skip: string;
  /** Report it (log line + event); false for documented filters such as "no Python 3 solution". */
  readonly warn: boolean;
}

export interface DatasetDef {
  readonly plugin: string;
  /** Parquet columns to read (all when absent). */
  readonly columns?: ReadonlyArray<string>;
  /** Cheap id (and difficulty) of a row, so filters skip rows before they are fully parsed. */
  peek?(row: Row): { readonly id?: string; readonly difficulty?: string };
  /** A plugin's own filter on the raw row (after the id and difficulty filters, before parsing). */
  keep?(row: Row): boolean;
  /** Parses a row; throws RowError for a malformed one. */
  parse(row: Row): ParsedProblem | Skipped;
}

export interface DatasetOptions {
  readonly path: string;
  readonly format: FormatOption;
  readonly limit?: number | undefined;
  readonly time_limit_ms?: number | undefined;
  readonly on_malformed: OnMalformed;
  readonly ids?: IdsFilter | undefined;
  readonly difficulties?: ReadonlyArray<string> | undefined;
}

interface Entry {
  readonly problem: PublicProblem;
  readonly loc: RowLoc;
  readonly at: RowAt;
}

interface Index {
  readonly order: ReadonlyArray<Entry>;
  readonly byId: ReadonlyMap<string, Entry>;
}

export class ProblemDataset implements DatasetImpl<PublicProblem>, HiddenTestSource {
  private readonly rows: RowSource;
  private loading: Promise<Index> | undefined;
  private readonly keepId: ((id: string) => boolean) | undefined;
  private readonly keepDifficulty: ((d: string) => boolean) | undefined;

  constructor(
    private readonly def: DatasetDef,
    private readonly options: DatasetOptions,
    private readonly kernel: Pick<KernelServices, "log" | "emit">,
  ) {
    this.rows = openRows(options.path, options.format, def.plugin, def.columns);
    this.keepId = idMatcher(options.ids);
    const ds = options.difficulties;
    this.keepDifficulty = ds === undefined ? undefined : (d) => ds.includes(d);
  }

  async *items(signal?: AbortSignal): AsyncIterable<Item<PublicProblem>> {
    const index = await this.load(signal);
    for (const e of index.order) yield { id: e.problem.id, data: e.problem };
  }

  /** The problems as search sees them, in file order. */
  async problems(signal?: AbortSignal): Promise<ReadonlyArray<PublicProblem>> {
    return (await this.load(signal)).order.map((e) => e.problem);
  }

  async hiddenTests(problemId: string): Promise<ReadonlyArray<TestCase>> {
    return (await this.reread(problemId)).hidden;
  }

  async references(problemId: string): Promise<ReadonlyArray<string>> {
    return (await this.reread(problemId)).references;
  }

  private async reread(id: string): Promise<ParsedProblem> {
    const index = await this.load();
    const e = index.byId.get(id);
    if (e === undefined) {
      throw new BdcError({
        code: "BDC_DATASET_UNKNOWN_ID",
        message: `no problem "${id}" in ${this.options.path}${this.filtered() ? " (with this instance's filters)" : ""}`,
        plugin: this.def.plugin,
      });
    }
    const row = await this.rows.fetch(e.loc, e.at);
    let parsed: ParsedProblem | Skipped;
    try {
      parsed = this.def.parse(row);
    } catch (err) {
      if (err instanceof RowError) throw parseError(e.at, err.message, this.def.plugin);
      throw err;
    }
    if ("skip" in parsed || parsed.problem.id !== id) {
      throw new BdcError({ code: "BDC_DATASET_CHANGED", message: `${e.at.file}:${e.at.line}: the row no longer holds problem "${id}"`, plugin: this.def.plugin });
    }
    return parsed;
  }

  private filtered(): boolean {
    return this.keepId !== undefined || this.keepDifficulty !== undefined || this.options.limit !== undefined;
  }

  private load(signal?: AbortSignal): Promise<Index> {
    if (this.loading === undefined) {
      const p = this.scan(signal);
      this.loading = p;
      p.catch(() => {
        if (this.loading === p) this.loading = undefined;
      });
    }
    return this.loading;
  }

  private async scan(signal?: AbortSignal): Promise<Index> {
    const { plugin } = this.def;
    const order: Entry[] = [];
    const byId = new Map<string, Entry>();
    const splits: Record<string, number> = {};
    const skipped: Record<string, number> = {};
    let malformed = 0;
    const bad = (at: RowAt, message: string) => {
      if (this.options.on_malformed === "error") throw parseError(at, message, plugin, "fix or remove the row, or set on_malformed: skip to leave malformed rows out");
      malformed++;
      this.kernel.log(`${at.file}:${at.line}: ${message} (row skipped)`);
      this.kernel.emit("malformed_row", { file: at.file, line: at.line, message });
    };
    for await (const s of this.rows.scan(signal)) {
      if (this.options.limit !== undefined && order.length >= this.options.limit) break;
      if ("error" in s) {
        bad(s.at, s.error);
        continue;
      }
      const peek = this.def.peek?.(s.row) ?? {};
      if (peek.id !== undefined && this.keepId !== undefined && !this.keepId(peek.id)) continue;
      if (peek.difficulty !== undefined && this.keepDifficulty !== undefined && !this.keepDifficulty(peek.difficulty)) continue;
      if (this.def.keep !== undefined && !this.def.keep(s.row)) continue;
      let parsed: ParsedProblem | Skipped;
      try {
        parsed = this.def.parse(s.row);
      } catch (err) {
        if (!(err instanceof RowError)) throw err;
        bad(s.at, err.message);
        continue;
      }
      if ("skip" in parsed) {
        skipped[parsed.skip] = (skipped[parsed.skip] ?? 0) + 1;
        if (parsed.warn) {
          this.kernel.log(`${s.at.file}:${s.at.line}: ${parsed.skip} (problem skipped)`);
          this.kernel.emit("problem_skipped", { file: s.at.file, line: s.at.line, reason: parsed.skip });
        }
        continue;
      }
      let problem = parsed.problem;
      if (this.keepId !== undefined && !this.keepId(problem.id)) continue;
      if (this.keepDifficulty !== undefined && !this.keepDifficulty(problem.difficulty)) continue;
      const first = byId.get(problem.id);
      if (first !== undefined) {
        bad(s.at, `duplicate problem id "${problem.id}" (first at line ${first.at.line})`);
        continue;
      }
      if (this.options.time_limit_ms !== undefined) problem = { ...problem, timeLimitMs: this.options.time_limit_ms };
      const entry = { problem, loc: s.loc, at: s.at };
      order.push(entry);
      byId.set(problem.id, entry);
      splits[problem.split] = (splits[problem.split] ?? 0) + 1;
    }
    this.kernel.emit("dataset_loaded", { file: this.options.path, problems: order.length, splits, skipped, malformed });
    if (malformed > 0) this.kernel.log(`${this.options.path}: ${malformed} malformed row(s) skipped`);
    return { order, byId };
  }
}

/** Keeps only the keys whose value is defined (JSON drops undefined; items must round-trip). */
export function defined<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
