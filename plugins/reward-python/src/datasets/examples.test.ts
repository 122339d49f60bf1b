import * as assert from "node:assert/strict";
import { test } from "node:test";
import { docExampleScript, parseCallExamples, parseDocExamples, parseStdioExamples, PyLiteral } from "./examples.ts";

test("Codeforces statements: the input/output specification is not an example; several examples; Note ends them", () => {
  const statement = [
    "Some story.",
    "",
    "-----Input-----",
    "",
    "The first line contains n.",
    "",
    "-----Output-----",
    "",
    "Print the answer.",
    "",
    "-----Examples-----",
    "Input",
    "3",
    "1 2 3",
    "",
    "Output",
    "6",
    "",
    "Input",
    "2",
    "",
    "5 5",
    "",
    "Output",
    "10 ",
    "",
    "",
    "",
    "-----Note-----",
    "",
    "In the first example 1 + 2 + 3 = 6.",
    "Input",
    "9",
    "Output",
    "9",
  ].join("\n");
  assert.deepEqual(parseStdioExamples(statement), [
    { input: "3\n1 2 3\n", output: "6\n" },
    // Blank lines inside an input are kept; trailing spaces too (the judge decides about them).
    { input: "2\n\n5 5\n", output: "10 \n" },
  ]);
});

test("bare Input/Output headings before any Example heading are the specification", () => {
  assert.deepEqual(parseStdioExamples("Input\n\nThe first line has n.\n\nOutput\n\nPrint n.\n"), []);
  assert.deepEqual(parseStdioExamples("Input\nn\nOutput\nn\n\nExamples\nInput\n4\nOutput\n4\n"), [{ input: "4\n", output: "4\n" }]);
});

test("CodeChef, AtCoder and other sample headings", () => {
  const codechef = "-----Input:-----\n- First line: T\n\n-----Output:-----\nAnswers.\n\n-----Constraints-----\n1 <= T\n\n-----Sample Input:-----\n2\n3\n4\n\n-----Sample Output:-----\n9\n16\n\n-----EXPLANATION:-----\n3*3 = 9";
  assert.deepEqual(parseStdioExamples(codechef), [{ input: "2\n3\n4\n", output: "9\n16\n" }]);
  const atcoder = "Sample Input 1\n3\n\nSample Output 1\nYes\n\nThe answer is Yes, since 3 is odd.\n\nSample Input 2\n4\n\nSample Output 2\nNo\n\nNO\n";
  // AtCoder explains a sample right after its output, without a heading: prose ends the output.
  assert.deepEqual(parseStdioExamples(atcoder), [
    { input: "3\n", output: "Yes\n" },
    // A second paragraph of data stays.
    { input: "4\n", output: "No\n\nNO\n" },
  ]);
  assert.deepEqual(parseStdioExamples("-----Example Input-----\n1\n-----Example Output-----\n2\n"), [{ input: "1\n", output: "2\n" }]);
  assert.deepEqual(parseStdioExamples("Example\nInput:\n5\nOutput:\n25\n"), [{ input: "5\n", output: "25\n" }]);
  assert.deepEqual(parseStdioExamples("SAMPLE INPUT\n1 1\n\nSAMPLE OUTPUT\n2"), [{ input: "1 1\n", output: "2\n" }]);
  assert.deepEqual(parseStdioExamples("-----Sample Input 1 -----\n7\n-----Sample Output 1 -----\n49\n"), [{ input: "7\n", output: "49\n" }]);
  assert.deepEqual(parseStdioExamples("No examples at all."), []);
  // An input without an output is not an example.
  assert.deepEqual(parseStdioExamples("Examples\nInput\n1\n\n-----Note-----\nOutput\n2"), []);
});

test("ASCII art and dashes inside an example are data, not headings", () => {
  assert.deepEqual(parseStdioExamples("Examples\nInput\n3\n------\n#..\nOutput\n1\n"), [{ input: "3\n------\n#..\n", output: "1\n" }]);
});

test("Python literals", () => {
  assert.deepEqual(PyLiteral.parse("[1, -2.5, 'a\\'b', \"c\", True, None, (1, 2), {'k': [false, null]}]"), [1, -2.5, "a'b", "c", true, null, [1, 2], { k: [false, null] }]);
  assert.deepEqual(PyLiteral.parse("  1e3 "), 1000);
  assert.deepEqual(PyLiteral.tryParse("1 + 2"), { ok: false });
  assert.deepEqual(PyLiteral.tryParse("abc"), { ok: false });
  assert.deepEqual(PyLiteral.tryParse("[1, 2"), { ok: false });
  assert.deepEqual(PyLiteral.parseArgs('nums = [1,2,3], k = 3, s = "x"'), [[1, 2, 3], 3, "x"]);
  assert.deepEqual(PyLiteral.parseArgs("[3, 2, 1]"), [[3, 2, 1]]);
  assert.equal(PyLiteral.parseArgs("n = n - 1"), undefined);
});

test("LeetCode-style examples of call-based problems", () => {
  const statement = [
    "Return the k-th thing.",
    "",
    "Example 1:",
    "",
    "Input: nums = [1,2,3], k = 2",
    "Output: 2",
    "Explanation: the second.",
    "",
    "Example 2:",
    "Input: nums = [",
    "  4, 5",
    "], k = 1",
    "",
    "Output: [4,",
    " 5]",
    "",
    "Example 3:",
    "Input: grid = <an image>",
    "Output: 3",
    "",
    "Example 4:",
    "Input: s = \"ab\", flag = true",
    "Output: false",
    "",
    "Constraints:",
    "1 <= k",
  ].join("\n");
  assert.deepEqual(parseCallExamples(statement), [
    { args: [[1, 2, 3], 2], expected: 2 },
    { args: [[4, 5], 1], expected: [4, 5] },
    { args: ["ab", true], expected: false },
  ]);
  assert.deepEqual(parseCallExamples("Examples:\n\ns = \"leetcode\"\nreturn 0."), []);
});

test("HumanEval docstring examples: doctests and arrow lines with literal values only", () => {
  const prompt = [
    "def f(xs, n=0):",
    '    """ Things.',
    "    f(0) -> 0",
    "    f(n) -> f(n-1) + 1",
    "    f([1], 2) ==> 19 - 5 = 14",
    "    f([true]) => false",
    "    >>> x = [1, 2]",
    "    >>> f(x)",
    "    [1,",
    "    2]",
    "    >>> print(f('a'))",
    "    a",
    "    >>> f([])",
    "    []",
    "    >>> g(1)",
    "    1",
    '    """',
  ].join("\n");
  const examples = parseDocExamples(prompt, "f");
  assert.deepEqual(
    examples.map((e) => [e.call, e.expected, e.setup]),
    [
      ["f(0)", "0", []],
      ["f([True])", "False", []],
      ["f([])", "[]", ["x = [1, 2]"]],
    ],
  );
  assert.equal(
    docExampleScript(examples[2]!),
    'x = [1, 2]\n_result = f([])\n_expected = []\nassert _result == _expected or (isinstance(_expected, float) and isinstance(_result, (int, float)) and abs(_result - _expected) <= 1e-6 * max(1.0, abs(_expected))), "f([])" + " returned " + repr(_result) + ", expected " + repr(_expected)\n',
  );
});
