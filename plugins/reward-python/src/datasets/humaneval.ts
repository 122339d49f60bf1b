/**
 * dataset/humaneval: HumanEval problems (`task_id, prompt, entry_point, canonical_solution,
 * test`) from `.jsonl`, `.jsonl.gz` or parquet. Style "script": the program is the completed
 * function; `starterCode` = the prompt, `fnName` = `entry_point`.
 *
 * HumanEval has no public/hidden distinction. Rule used here:
 * - hidden = the official check: one script test `test + "\ncheck(" + entry_point + ")"`;
 * - public = the examples of the prompt's docstring, one assert script each (doctest
 *   `>>> f(x)` + expected line, or `f(x) == y` / `==>` / `➞` / `=>` lines)
 *   (`split: "docstring-examples"`); when none parses, public = the hidden check itself
 *   (`"same-as-hidden"`).
 * - references = [prompt + canonical_solution]; difficulty "unrated".
 */
import { Schema } from "effect";
import { definePlugin, optional } from "@bdc/core";
import type { TestCase } from "../types.ts";
import { commonFields, defined, fail, field, fileExists, IdsFilter, isString, ProblemDataset, type ParsedProblem } from "./common.ts";
import { docExampleScript, parseDocExamples } from "./examples.ts";
import type { Row } from "./rows.ts";

const PLUGIN = "dataset/humaneval";

export function parseHumanEvalRow(row: Row): ParsedProblem {
  const id = field(row, "task_id", isString, "a string");
  const prompt = field(row, "prompt", isString, "a string");
  const entry = field(row, "entry_point", isString, "a string");
  if (!/^[A-Za-z_]\w*$/.test(entry)) return fail(`field "entry_point" is not a Python name: ${JSON.stringify(entry)}`);
  const canonical = field(row, "canonical_solution", isString, "a string");
  const test = field(row, "test", isString, "a string");
  const check: TestCase = { kind: "script", code: `${test}\ncheck(${entry})\n` };
  const examples: TestCase[] = parseDocExamples(prompt, entry).map((ex) => ({ kind: "script", code: docExampleScript(ex) }));
  return {
    problem: defined({
      id,
      source: "humaneval",
      difficulty: "unrated",
      statement: prompt,
      starterCode: prompt,
      fnName: entry,
      style: "script" as const,
      publicTests: examples.length > 0 ? examples : [check],
      split: examples.length > 0 ? "docstring-examples" : "same-as-hidden",
    }),
    hidden: [check],
    references: [prompt + canonical],
  };
}

export default definePlugin({
  id: PLUGIN,
  version: "0.1.0",
  description: "HumanEval problems (JSONL, JSONL.gz or parquet): public = the docstring examples as asserts, hidden = the official check",
  config: Schema.Struct({
    ...commonFields,
    ids: optional(IdsFilter, 'keep only these problems: a range of task numbers ("0-49") or a list of task ids ("HumanEval/3")'),
  }),
  preflight: (config) => fileExists(config.path),
  make(config, _deps, kernel) {
    return new ProblemDataset(
      {
        plugin: PLUGIN,
        peek: (row) => (isString(row.task_id) ? { id: row.task_id } : {}),
        parse: parseHumanEvalRow,
      },
      config,
      kernel,
    );
  },
});
