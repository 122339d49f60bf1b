/**
 * dataset/codecontests: DeepMind CodeContests problems (Hugging Face `deepmind/code_contests`
 * rows, parquet or JSONL): `name, description, public_tests {input, output}, private_tests,
 * generated_tests, solutions {language, solution}, difficulty, time_limit {seconds, nanos},
 * memory_limit_bytes`.
 *
 * - public tests = `public_tests` (`split: "public-tests"`); hidden = `private_tests` then
 *   `generated_tests` (config `hidden`). A problem without public tests uses the examples of its
 *   statement (`"statement-examples"`), else its hidden tests (`"same-as-hidden"`); a problem
 *   without hidden tests is scored on its public ones (`"same-as-hidden"`); one with no test at
 *   all is left out with a warning.
 * - difficulty as in the paper: raw 0-10 -> "easy", 11 and above -> "hard" (the raw number is
 *   kept in `rawDifficulty`; `raw_difficulties: "11-25"` filters on it).
 * - only problems with a Python 3 solution (language 3) are kept unless
 *   `require_python3_solution: false`; references = those solutions.
 * - the row's time limit (and memory limit) is used when present; `time_limit_ms` replaces it.
 */
import { Schema } from "effect";
import { definePlugin, option, optional } from "@bdc/core";
import type { PublicProblem, TestCase } from "../types.ts";
import {
  commonFields,
  defined,
  fail,
  field,
  fileExists,
  IdRanges,
  isArray,
  isNumber,
  isObject,
  isString,
  parseRanges,
  preview,
  ProblemDataset,
  type ParsedProblem,
  type Skipped,
} from "./common.ts";
import { parseStdioExamples } from "./examples.ts";
import type { Row } from "./rows.ts";

const PLUGIN = "dataset/codecontests";
const PYTHON3 = 3;

export type CodeContestsProblem = PublicProblem & { readonly rawDifficulty: number };

/** The paper's split of CodeContests difficulties: 0-10 easy, 11-25 hard (above 25 counts as hard too). */
export const difficultyName = (raw: number): "easy" | "hard" => (raw <= 10 ? "easy" : "hard");

function tests(row: Row, key: string): TestCase[] {
  const v = row[key];
  if (v === undefined || v === null) return [];
  if (!isObject(v)) return fail(`field "${key}" is not a mapping {input, output}: ${preview(v)}`);
  const input = v.input ?? [];
  const output = v.output ?? [];
  if (!isArray(input) || !input.every(isString)) return fail(`${key}.input is not a list of strings`);
  if (!isArray(output) || !output.every(isString)) return fail(`${key}.output is not a list of strings`);
  if (input.length !== output.length) return fail(`${key} has ${input.length} inputs but ${output.length} outputs`);
  return input.map((inp, i) => ({ kind: "stdio", input: inp, output: output[i]! }));
}

function python3Solutions(row: Row): string[] {
  const v = row.solutions;
  if (v === undefined || v === null) return [];
  if (!isObject(v)) return fail(`field "solutions" is not a mapping {language, solution}: ${preview(v)}`);
  const lang = v.language ?? [];
  const sol = v.solution ?? [];
  if (!isArray(lang) || !lang.every(isNumber)) return fail("solutions.language is not a list of numbers");
  if (!isArray(sol) || !sol.every(isString)) return fail("solutions.solution is not a list of strings");
  if (lang.length !== sol.length) return fail(`solutions has ${lang.length} languages but ${sol.length} solutions`);
  return sol.filter((_, i) => lang[i] === PYTHON3);
}

function timeLimitMs(row: Row): number | undefined {
  const t = row.time_limit;
  if (t === undefined || t === null) return undefined;
  if (!isObject(t)) return fail(`field "time_limit" is not a mapping {seconds, nanos}: ${preview(t)}`);
  const s = t.seconds ?? 0;
  const ns = t.nanos ?? 0;
  if (!isNumber(s) || !isNumber(ns)) return fail(`field "time_limit" has non-numeric parts: ${preview(t)}`);
  const ms = Math.round(s * 1000 + ns / 1e6);
  return ms > 0 ? ms : undefined;
}

export interface CodeContestsOptions {
  readonly hidden: ReadonlyArray<"private" | "generated">;
  readonly require_python3_solution: boolean;
}

export function parseCodeContestsRow(row: Row, options: CodeContestsOptions): ParsedProblem | Skipped {
  const id = field(row, "name", isString, "a string");
  if (id === "") return fail('field "name" is empty');
  const statement = field(row, "description", isString, "a string");
  const raw = field(row, "difficulty", isNumber, "a number");
  const publicGiven = tests(row, "public_tests");
  const hiddenGiven = options.hidden.flatMap((h) => tests(row, `${h}_tests`));
  const references = python3Solutions(row);
  const limit = timeLimitMs(row);
  const mem = row.memory_limit_bytes;
  if (mem !== undefined && mem !== null && !isNumber(mem)) return fail(`field "memory_limit_bytes" is not a number: ${preview(mem)}`);
  if (options.require_python3_solution && references.length === 0) return { skip: "no Python 3 solution", warn: false };
  if (publicGiven.length === 0 && hiddenGiven.length === 0) return { skip: `problem "${id}" has no tests`, warn: true };
  let split: string;
  let publicTests: TestCase[];
  let hidden: TestCase[];
  if (hiddenGiven.length === 0) {
    [split, publicTests, hidden] = ["same-as-hidden", publicGiven, publicGiven];
  } else if (publicGiven.length > 0) {
    [split, publicTests, hidden] = ["public-tests", publicGiven, hiddenGiven];
  } else {
    const examples: TestCase[] = parseStdioExamples(statement).map((e) => ({ kind: "stdio", input: e.input, output: e.output }));
    [split, publicTests, hidden] = examples.length > 0 ? ["statement-examples", examples, hiddenGiven] : ["same-as-hidden", hiddenGiven, hiddenGiven];
  }
  const problem: CodeContestsProblem = defined({
    id,
    source: "codecontests",
    difficulty: difficultyName(raw),
    rawDifficulty: raw,
    statement,
    style: "stdio" as const,
    publicTests,
    timeLimitMs: limit,
    memoryLimitMb: typeof mem === "number" && mem > 0 ? Math.round(mem / (1 << 20)) : undefined,
    split,
  });
  return { problem, hidden, references };
}

export default definePlugin({
  id: PLUGIN,
  version: "0.1.0",
  description: "CodeContests problems (deepmind/code_contests rows, parquet or JSONL): public = public_tests, hidden = private + generated; easy/hard as in the paper",
  config: Schema.Struct({
    ...commonFields,
    difficulties: optional(Schema.Array(Schema.Literal("easy", "hard")), "keep only these difficulties: easy (raw 0-10), hard (raw 11 and above)"),
    raw_difficulties: optional(IdRanges, 'keep only these raw difficulty numbers, e.g. "0-10" or "11-25"'),
    ids: optional(Schema.Array(Schema.String), "keep only the problems with these names"),
    hidden: option(Schema.Array(Schema.Literal("private", "generated")), ["private", "generated"], "which test sets are hidden (scoring) tests"),
    require_python3_solution: option(Schema.Boolean, true, "keep only problems with at least one Python 3 solution (the paper's rule)"),
  }),
  preflight: (config) => fileExists(config.path),
  make(config, _deps, kernel) {
    const ranges = config.raw_difficulties === undefined ? undefined : parseRanges(config.raw_difficulties)!;
    return new ProblemDataset(
      {
        plugin: PLUGIN,
        columns: ["name", "description", "public_tests", "private_tests", "generated_tests", "solutions", "difficulty", "time_limit", "memory_limit_bytes"],
        peek: (row) => ({
          ...(isString(row.name) ? { id: row.name } : {}),
          ...(isNumber(row.difficulty) ? { difficulty: difficultyName(row.difficulty) } : {}),
        }),
        keep: (row) => ranges === undefined || !isNumber(row.difficulty) || ranges.some(([a, b]) => (row.difficulty as number) >= a && (row.difficulty as number) <= b),
        parse: (row) => parseCodeContestsRow(row, config),
      },
      config,
      kernel,
    );
  },
});
