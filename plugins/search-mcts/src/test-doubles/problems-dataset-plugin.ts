// Test double: a problem dataset whose items are PublicProblems; the hidden tests (held only
// here, behind hiddenTests) contain the string HIDDEN-SECRET-7f3a, which must never reach search.
import { Schema } from "effect";
import { definePlugin, option } from "@bdc/core";
import type { HiddenTestSource, PublicProblem, TestCase } from "@bdc/reward-python";

export const SECRET = "HIDDEN-SECRET-7f3a";

export function problem(i: number): PublicProblem {
  return {
    id: `p${i}`,
    source: "scripted",
    difficulty: "introductory",
    statement: `Problem ${i}: print the depth of your reasoning.`,
    style: "stdio",
    publicTests: [
      { kind: "stdio", input: `PUBLIC-IN-${i}-a`, output: "2" },
      { kind: "stdio", input: `PUBLIC-IN-${i}-b`, output: "2" },
    ],
    split: "first-half",
  };
}

export default definePlugin({
  id: "dataset/scripted-problems",
  version: "1.0.0",
  description: "Test double: n problems with public tests; hidden tests only through hiddenTests()",
  config: Schema.Struct({ n: option(Schema.Int.pipe(Schema.positive()), 2, "problems") }),
  make: (config) => {
    const source: HiddenTestSource = {
      hiddenTests: async (id): Promise<TestCase[]> => [{ kind: "stdio", input: `${SECRET} ${id}`, output: SECRET }],
      references: async () => [`print("${SECRET}")`],
    };
    return { ...source, items: () => Array.from({ length: config.n }, (_, i) => ({ id: `p${i}`, data: problem(i) })) };
  },
});
