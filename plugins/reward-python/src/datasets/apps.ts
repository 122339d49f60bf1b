/**
 * dataset/apps: APPS problems in the Hugging Face `codeparrot/apps` row format
 * (`problem_id, question, solutions, input_output, difficulty, url, starter_code`; `solutions`
 * and `input_output` are JSON strings; `input_output = {inputs, outputs, fn_name?}`), from JSONL
 * or parquet.
 *
 * Public/hidden split (the paper's, plus a rule for the one-test problems it cannot split):
 * - n >= 2 tests: the first floor(n/2) are public, the rest hidden (`split: "first-half"`);
 * - n == 1: public = the examples parsed from the statement, hidden = the given test
 *   (`"statement-examples"`); when no example parses, public = hidden = the given test
 *   (`"same-as-hidden"`);
 * - n == 0 (an empty `input_output`): the problem cannot be scored; it is left out with a
 *   warning (log line and a `problem_skipped` event), never silently.
 */
import { Schema } from "effect";
import { definePlugin, optional } from "@bdc/core";
import type { TestCase } from "../types.ts";
import {
  commonFields,
  defined,
  fail,
  field,
  fileExists,
  IdsFilter,
  isArray,
  isObject,
  isString,
  isStringOrNumber,
  jsonField,
  preview,
  ProblemDataset,
  type ParsedProblem,
  type Skipped,
} from "./common.ts";
import { parseCallExamples, parseStdioExamples } from "./examples.ts";
import type { Row } from "./rows.ts";

const PLUGIN = "dataset/apps";
export const APPS_DIFFICULTIES = ["introductory", "interview", "competition"] as const;

/** stdio inputs and outputs are strings; some rows hold lists of lines (joined as the APPS harness does). */
function text(v: unknown, what: string): string {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) return v.map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join("\n");
  return fail(`${what} is neither a string nor a list of lines: ${preview(v)}`);
}

/** The tests of an APPS row, in order; throws RowError when `input_output` is malformed. */
export function appsTests(row: Row): { tests: TestCase[]; fnName: string | undefined } {
  const raw = row.input_output;
  if (raw === undefined || raw === null) return fail('missing field "input_output"');
  if (typeof raw === "string" && raw.trim() === "") return { tests: [], fnName: undefined };
  const io = jsonField(row, "input_output");
  if (!isObject(io)) return fail(`field "input_output" is not a JSON object: ${preview(io)}`);
  const fnName = io.fn_name;
  if (fnName !== undefined && fnName !== null && (typeof fnName !== "string" || fnName === "")) return fail(`input_output.fn_name is not a name: ${preview(fnName)}`);
  const inputs = io.inputs ?? [];
  const outputs = io.outputs ?? [];
  if (!isArray(inputs)) return fail(`input_output.inputs is not a list: ${preview(inputs)}`);
  if (!isArray(outputs)) return fail(`input_output.outputs is not a list: ${preview(outputs)}`);
  if (inputs.length !== outputs.length) return fail(`input_output has ${inputs.length} inputs but ${outputs.length} outputs`);
  const tests: TestCase[] = inputs.map((input, i) => {
    if (typeof fnName === "string") {
      if (!Array.isArray(input)) return fail(`input_output.inputs[${i}] is not a list of call arguments: ${preview(input)}`);
      return { kind: "call", fnName, args: input, expected: outputs[i] };
    }
    return { kind: "stdio", input: text(input, `input_output.inputs[${i}]`), output: text(outputs[i], `input_output.outputs[${i}]`) };
  });
  return { tests, fnName: typeof fnName === "string" ? fnName : undefined };
}

/** Public tests and the rule used, per the module doc. */
export function splitApps(
  tests: ReadonlyArray<TestCase>,
  statement: string,
  fnName: string | undefined,
): { split: "first-half" | "statement-examples" | "same-as-hidden"; publicTests: TestCase[]; hidden: TestCase[] } {
  const n = tests.length;
  if (n >= 2) {
    const half = Math.floor(n / 2);
    return { split: "first-half", publicTests: tests.slice(0, half), hidden: tests.slice(half) };
  }
  let examples: TestCase[];
  if (fnName === undefined) {
    examples = parseStdioExamples(statement).map((e) => ({ kind: "stdio", input: e.input, output: e.output }));
  } else {
    const arity = tests[0]?.kind === "call" ? tests[0].args.length : undefined;
    examples = parseCallExamples(statement)
      .filter((e) => arity === undefined || e.args.length === arity)
      .map((e) => ({ kind: "call", fnName, args: e.args, expected: e.expected }));
  }
  if (examples.length > 0) return { split: "statement-examples", publicTests: examples, hidden: [...tests] };
  return { split: "same-as-hidden", publicTests: [...tests], hidden: [...tests] };
}

function parseSolutions(row: Row): string[] {
  const raw = row.solutions;
  if (raw === undefined || raw === null || (typeof raw === "string" && raw.trim() === "")) return [];
  const list = typeof raw === "string" ? jsonField(row, "solutions") : raw;
  if (!isArray(list) || !list.every(isString)) return fail(`field "solutions" is not a list of strings: ${preview(list)}`);
  return list;
}

export function parseAppsRow(row: Row): ParsedProblem | Skipped {
  const id = String(field(row, "problem_id", isStringOrNumber, "a string or number"));
  const statement = field(row, "question", isString, "a string");
  const difficulty = field(row, "difficulty", isString, "a string");
  const starter = row.starter_code;
  if (starter !== undefined && starter !== null && typeof starter !== "string") return fail(`field "starter_code" is not a string: ${preview(starter)}`);
  const { tests, fnName } = appsTests(row);
  const references = parseSolutions(row);
  if (tests.length === 0) return { skip: `problem ${id} has no tests (empty input_output)`, warn: true };
  const { split, publicTests, hidden } = splitApps(tests, statement, fnName);
  return {
    problem: defined({
      id,
      source: "apps",
      difficulty,
      statement,
      starterCode: typeof starter === "string" && starter.trim() !== "" ? starter : undefined,
      fnName,
      style: fnName === undefined ? ("stdio" as const) : ("call" as const),
      publicTests,
      split,
    }),
    hidden,
    references,
  };
}

export default definePlugin({
  id: PLUGIN,
  version: "0.1.0",
  description: "APPS problems (codeparrot/apps rows, JSONL or parquet): public tests = first half of the tests, or the statement's examples for one-test problems",
  config: Schema.Struct({
    ...commonFields,
    difficulties: optional(Schema.Array(Schema.Literal(...APPS_DIFFICULTIES)), "keep only these difficulties (default: all)"),
    ids: optional(IdsFilter, 'keep only these problem ids: a range string ("4000-4099", "0-99,3000-3099") or a list of ids'),
  }),
  preflight: (config) => fileExists(config.path),
  make(config, _deps, kernel) {
    return new ProblemDataset(
      {
        plugin: PLUGIN,
        columns: ["problem_id", "question", "solutions", "input_output", "difficulty", "url", "starter_code"],
        peek: (row) => ({
          ...(isStringOrNumber(row.problem_id) ? { id: String(row.problem_id) } : {}),
          ...(isString(row.difficulty) ? { difficulty: row.difficulty } : {}),
        }),
        parse: parseAppsRow,
      },
      config,
      kernel,
    );
  },
});
