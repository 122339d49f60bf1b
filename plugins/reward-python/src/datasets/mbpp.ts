/**
 * dataset/mbpp: MBPP problems (`task_id, text, code, test_list, test_setup_code,
 * challenge_test_list`; the "sanitized" variant's `prompt` and `test_imports` are read too),
 * from JSONL or parquet. Style "script": each test is one assert run after the program, with
 * the setup code before it.
 *
 * - public = the first assert of `test_list` (`split: "first-test"`); hidden = every assert of
 *   `test_list` (plus `challenge_test_list` with `include_challenge_tests: true`);
 * - `fnName` = the function of the reference code that the first test calls;
 * - references = [code]; difficulty "unrated"; the usual splits are id ranges: test "11-510",
 *   validation "511-600", train "601-974", prompt "1-10".
 */
import { Schema } from "effect";
import { definePlugin, option, optional } from "@bdc/core";
import type { TestCase } from "../types.ts";
import { commonFields, defined, fail, field, fileExists, IdsFilter, isArray, isString, isStringOrNumber, preview, ProblemDataset, type ParsedProblem, type Skipped } from "./common.ts";
import type { Row } from "./rows.ts";

const PLUGIN = "dataset/mbpp";

function stringList(row: Row, key: string): string[] {
  const v = row[key];
  if (v === undefined || v === null) return [];
  if (!isArray(v) || !v.every(isString)) return fail(`field "${key}" is not a list of strings: ${preview(v)}`);
  return v;
}

/** The function of `code` that `test` calls first (`assert f(1) == 2` -> "f"). */
export function calledFunction(code: string, test: string): string | undefined {
  const defs = new Set([...code.matchAll(/^\s*def\s+([A-Za-z_]\w*)\s*\(/gm)].map((m) => m[1]!));
  for (const m of test.matchAll(/([A-Za-z_]\w*)\s*\(/g)) if (defs.has(m[1]!)) return m[1]!;
  return undefined;
}

export function parseMbppRow(row: Row, includeChallenge: boolean): ParsedProblem | Skipped {
  const id = String(field(row, "task_id", isStringOrNumber, "a number or string"));
  const text = row.text ?? row.prompt;
  if (text === undefined || text === null) return fail('missing field "text"');
  if (!isString(text)) return fail(`field "text" is not a string: ${preview(text)}`);
  const code = field(row, "code", isString, "a string");
  if (row.test_list === undefined || row.test_list === null) return fail('missing field "test_list"');
  const asserts = [...stringList(row, "test_list"), ...(includeChallenge ? stringList(row, "challenge_test_list") : [])];
  const setupRaw = row.test_setup_code;
  if (setupRaw !== undefined && setupRaw !== null && !isString(setupRaw)) return fail(`field "test_setup_code" is not a string: ${preview(setupRaw)}`);
  const setup = isString(setupRaw) ? setupRaw : stringList(row, "test_imports").join("\n");
  if (asserts.length === 0) return { skip: `problem ${id} has no tests (empty test_list)`, warn: true };
  const script = (a: string): TestCase => ({ kind: "script", code: setup.trim() === "" ? `${a}\n` : `${setup.trimEnd()}\n${a}\n` });
  const hidden = asserts.map(script);
  return {
    problem: defined({
      id,
      source: "mbpp",
      difficulty: "unrated",
      statement: text,
      fnName: calledFunction(code, asserts[0]!),
      style: "script" as const,
      publicTests: [hidden[0]!],
      split: "first-test",
    }),
    hidden,
    references: [code],
  };
}

export default definePlugin({
  id: PLUGIN,
  version: "0.1.0",
  description: "MBPP problems (JSONL or parquet): public = the first assert, hidden = all asserts of test_list",
  config: Schema.Struct({
    ...commonFields,
    ids: optional(IdsFilter, 'keep only these task ids: a range string (test split: "11-510") or a list'),
    include_challenge_tests: option(Schema.Boolean, false, "add challenge_test_list to the hidden tests"),
  }),
  preflight: (config) => fileExists(config.path),
  make(config, _deps, kernel) {
    return new ProblemDataset(
      {
        plugin: PLUGIN,
        peek: (row) => (isStringOrNumber(row.task_id) ? { id: String(row.task_id) } : {}),
        parse: (row) => parseMbppRow(row, config.include_challenge_tests),
      },
      config,
      kernel,
    );
  },
});
