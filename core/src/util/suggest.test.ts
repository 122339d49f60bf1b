import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { choicesHint, editDistance, nearest } from "./suggest.ts";

describe("editDistance", () => {
  test("edit distance with adjacent swaps counting one edit", () => {
    assert.equal(editDistance("", ""), 0);
    assert.equal(editDistance("abc", "abc"), 0);
    assert.equal(editDistance("", "abc"), 3);
    assert.equal(editDistance("abc", ""), 3);
    assert.equal(editDistance("kitten", "sitting"), 3);
    assert.equal(editDistance("steps", "step"), 1);
    assert.equal(editDistance("pcub", "pucb"), 1);
    assert.equal(editDistance("inpsect", "inspect"), 1);
    assert.equal(editDistance("flaw", "lawn"), 2);
  });

  test("is symmetric", () => {
    for (const [a, b] of [["validte", "validate"], ["jsnl", "jsonl"], ["x", "xyz"]] as const) {
      assert.equal(editDistance(a, b), editDistance(b, a));
    }
  });
});

describe("nearest", () => {
  test("finds a plausible typo", () => {
    assert.equal(nearest("step", ["name", "plugins", "steps", "run"]), "steps");
    assert.equal(nearest("cc", ["c", "value"]), "c");
    assert.equal(nearest("validte", ["run", "validate", "plugins"]), "validate");
    assert.equal(nearest("dataset/jsnl", ["dataset/jsonl", "step/inspect"]), "dataset/jsonl");
    assert.equal(nearest("prnt", ["print", "json", "overlay", "set"]), "print");
  });

  test("ignores case when comparing and returns the candidate's spelling", () => {
    assert.equal(nearest("STEPS", ["steps", "plugins"]), "steps");
    assert.equal(nearest("pucb", ["PUCB"]), "PUCB");
  });

  test("nothing when no candidate is close enough", () => {
    assert.equal(nearest("zzzzzz", ["steps", "plugins"]), undefined);
    assert.equal(nearest("anything", []), undefined);
  });

  test("the threshold is max(2, a third of the candidate's length), and a typo keeps part of the word", () => {
    assert.equal(nearest("ab", ["xy"]), undefined); // distance 2: nothing of the word is left
    assert.equal(nearest("median", ["max", "mean"]), "mean"); // distance 2 <= 2
    assert.equal(nearest("abc", ["xyz"]), undefined); // 3 > 2
    assert.equal(nearest("abcdefghi", ["abcxyzghi"]), "abcxyzghi"); // 3 <= 9/3
    assert.equal(nearest("abcdefghi", ["abwxyzghi"]), undefined); // 4 > 3
  });

  test("the first of equally near candidates wins", () => {
    assert.equal(nearest("abc", ["abd", "abe"]), "abd");
  });
});

describe("choicesHint", () => {
  test("a suggestion and the sorted list", () => {
    assert.equal(choicesHint("cc", ["value", "c"], "valid keys"), 'did you mean "c"? valid keys: c, value');
  });

  test("only the list when nothing is close", () => {
    assert.equal(choicesHint("zzzzzz", ["b", "a"]), "valid choices: a, b");
  });

  test("an empty list says so", () => {
    assert.equal(choicesHint("x", [], "select instances"), "select instances: (none)");
  });

  test("does not reorder the caller's array", () => {
    const candidates = ["b", "a"];
    choicesHint("a", candidates);
    assert.deepEqual(candidates, ["b", "a"]);
  });
});
