import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compareCall, compareStdout, pyEquals } from "./compare.ts";
import { pyFloat, pyRound3, pySplit, pySplitlines, pyStrip } from "./py.ts";

const apps = (actual: string, expected: string) => compareStdout(actual, expected, "apps");
const strict = (actual: string, expected: string, options?: { relTol?: number; absTol?: number }) =>
  compareStdout(actual, expected, "strict", options);
const accepted = (stage: string) => ({ ok: true, stage });
const REJECTED = { ok: false };

describe("Python string and float semantics", () => {
  test("splitlines drops the break after the last line and splits \\r\\n once", () => {
    assert.deepEqual(pySplitlines(""), []);
    assert.deepEqual(pySplitlines("\n"), [""]);
    assert.deepEqual(pySplitlines("a\r\nb\rc\n\nd\n"), ["a", "b", "c", "", "d"]);
    assert.deepEqual(pySplitlines("a\x0bb\x0cc\x1dd\u2028e"), ["a", "b", "c", "d", "e"]);
  });

  test("strip and split use Python's whitespace (\\x1c and \\x85 yes, \\ufeff no)", () => {
    assert.equal(pyStrip(" \t\x1c x \x85\r\n"), "x");
    assert.equal(pyStrip("\ufeffx"), "\ufeffx");
    assert.deepEqual(pySplit("  a\x1cb\u3000c  "), ["a", "b", "c"]);
    assert.deepEqual(pySplit(" \n "), []);
  });

  test("float() accepts what Python accepts", () => {
    for (const [s, x] of [["1_000", 1000], [" 2.5\n", 2.5], ["1.", 1], [".5", 0.5], ["-Infinity", -Infinity], ["+inf", Infinity], ["1e400", Infinity]] as const) {
      assert.equal(pyFloat(s), x, s);
    }
    assert.ok(Number.isNaN(pyFloat("nAn")));
    for (const s of ["", ".", "e5", "1e", "1__0", "_1", "0x10", "1 2", "\x1f3", "infinit"]) assert.equal(pyFloat(s), undefined, s);
  });

  test("round(x, 3) rounds the exact binary value, ties to even", () => {
    assert.equal(pyRound3(0.0625), 0.062); // exact tie, even neighbour
    assert.equal(pyRound3(-0.0625), -0.062);
    assert.equal(pyRound3(0.1875), 0.188);
    assert.equal(pyRound3(2.6755), 2.675); // 2.6755 is stored just below the tie
    assert.equal(pyRound3(1.0004), 1);
    assert.equal(pyRound3(123456.7895), 123456.789); // stored just below the tie, as Python rounds it
  });
});

describe("compareStdout apps: each stage accepts what the earlier ones reject", () => {
  test("exact: after strip, whole output and per line", () => {
    assert.deepEqual(apps("3\n", "3"), accepted("exact"));
    assert.deepEqual(apps("  3  \n\n", "\n3"), accepted("exact"));
    assert.deepEqual(apps("1 \n2  \n", "1\n2"), accepted("exact")); // trailing spaces per line
    assert.deepEqual(apps("1\r\n2\r\n", "1\n2"), accepted("exact")); // CRLF output
    assert.deepEqual(apps("", ""), accepted("exact"));
    assert.deepEqual(apps("", "\n"), accepted("exact"));
  });

  test("lines: expected has blank or CRLF lines", () => {
    assert.deepEqual(apps("1\n2", "1\n\n2"), accepted("lines"));
    assert.deepEqual(apps("1\n2\n", "1\r\n2\r\n"), accepted("lines"));
    // A whitespace-only expected line stays as "" and matches an empty output line.
    assert.deepEqual(apps("a\n\nb", "a\n \nb"), accepted("lines"));
  });

  test("lines-stripped: output has blank lines", () => {
    assert.deepEqual(apps("1\n\n2\n", "1\n2"), accepted("lines-stripped"));
  });

  test("floats: numpy.allclose, one number per line, equal counts", () => {
    assert.deepEqual(apps("0.3333333\n", "0.333333"), accepted("floats"));
    assert.deepEqual(apps("1e3\n2", "1000.0\n2.000001"), accepted("floats"));
    assert.deepEqual(apps("inf", "Infinity"), accepted("floats"));
    // Reference quirk: blank output lines are removed but not stripped at "lines-stripped",
    // so these fall through to "floats" (float() strips).
    assert.deepEqual(apps("1 \n\n2", "1\n2"), accepted("floats"));
    assert.deepEqual(apps("1\n2", "1"), REJECTED);
  });

  test("floats: the documented false positive on integers (relative 1e-5); strict rejects", () => {
    assert.deepEqual(apps("100001", "100000"), accepted("floats"));
    assert.deepEqual(apps("1000000008\n", "1000000007"), accepted("floats"));
    assert.deepEqual(strict("100001", "100000"), REJECTED);
    // Integers past the double range both become inf, which allclose treats as equal.
    assert.deepEqual(apps(`${"9".repeat(400)}8`, "9".repeat(401)), accepted("floats"));
    assert.deepEqual(apps("10001", "10000"), REJECTED);
  });

  test("token-sets: the documented false positive (order within a line ignored); strict rejects it", () => {
    assert.deepEqual(apps("3 1 2", "1 2 3"), accepted("token-sets"));
    assert.deepEqual(strict("3 1 2", "1 2 3"), REJECTED);
    // Duplicates are ignored too.
    assert.deepEqual(apps("1 1 2 3 3", "1 2 3"), accepted("token-sets"));
    assert.deepEqual(strict("1 1 2 3 3", "1 2 3"), REJECTED);
  });

  test("token-sets: reordered lines of a multiline output; strict rejects", () => {
    assert.deepEqual(apps("4 5\n1 2 3\n", "1 2 3\n4 5"), accepted("token-sets"));
    assert.deepEqual(strict("4 5\n1 2 3\n", "1 2 3\n4 5"), REJECTED);
    assert.deepEqual(apps("a \n\nb", "a\nb"), accepted("token-sets"));
  });

  test("token-sets: the round(float, 3) variant", () => {
    // Two numbers per line, so "floats" cannot parse the lines.
    assert.deepEqual(apps("1.0004 2", "1 2"), accepted("token-sets"));
    // Outside allclose but equal at 3 decimals: another false positive.
    assert.deepEqual(apps("0.3334", "0.3333"), accepted("token-sets"));
    assert.deepEqual(strict("0.3334", "0.3333"), REJECTED);
    assert.deepEqual(apps("0.335", "0.3333"), REJECTED);
    assert.deepEqual(apps("nan 1", "nan 1.0"), REJECTED); // nan != nan
  });

  test("rejected by every stage", () => {
    assert.deepEqual(apps("1 2 4", "1 2 3"), REJECTED);
    assert.deepEqual(apps("NO", "YES"), REJECTED);
    assert.deepEqual(apps("", "0"), REJECTED);
    assert.deepEqual(apps("0", ""), REJECTED);
    assert.deepEqual(apps("1 2\n3", "1\n2 3"), REJECTED);
    // Quirk: a whitespace-only expected line is an empty token set no output line has.
    assert.deepEqual(apps("b\na", "a\n \nb"), REJECTED);
  });
});

describe("compareStdout strict", () => {
  test("whitespace-insensitive token equality", () => {
    assert.deepEqual(strict("1 2 3\n", "1 2 3"), accepted("strict-tokens"));
    assert.deepEqual(strict("1\t2\r\n3\r\n", "1 2\n3"), accepted("strict-tokens"));
    assert.deepEqual(strict("", ""), accepted("strict-tokens"));
    assert.deepEqual(strict(" \n", ""), accepted("strict-tokens"));
    assert.deepEqual(strict("", "0"), REJECTED);
    assert.deepEqual(strict("1 2 3 4", "1 2 3"), REJECTED);
    assert.deepEqual(strict("yes", "YES"), REJECTED);
  });

  test("decimal numbers within max(absTol, relTol * |expected|), defaults 1e-6", () => {
    assert.deepEqual(strict("0.3333337", "0.333333"), accepted("strict-tokens"));
    assert.deepEqual(strict("1000000.5", "1000000.0"), accepted("strict-tokens"));
    assert.deepEqual(strict("1e-7", "0"), accepted("strict-tokens"));
    assert.deepEqual(strict("1", "1.0"), accepted("strict-tokens"));
    assert.deepEqual(strict("0.33334", "0.333333"), REJECTED);
    assert.deepEqual(strict("1.0 2.5", "1 2.6"), REJECTED);
    assert.deepEqual(strict("1.05", "1", { relTol: 0, absTol: 0.1 }), accepted("strict-tokens"));
    assert.deepEqual(strict("1.2", "1", { relTol: 0, absTol: 0.1 }), REJECTED);
  });

  test("integers compare as text, so big ones are exact", () => {
    assert.deepEqual(strict("12345678901234567891", "12345678901234567890"), REJECTED);
    assert.deepEqual(strict("007", "7"), REJECTED);
    assert.deepEqual(strict("-5", "-5"), accepted("strict-tokens"));
  });
});

describe("compareCall", () => {
  test("Python equality on JSON values", () => {
    const equal: [unknown, unknown][] = [
      [1, 1.0],
      [true, 1],
      [false, 0],
      [true, 1.0],
      [null, null],
      ["a", "a"],
      [[1, [2, true]], [1.0, [2, 1]]],
      [{ a: 1, b: [null] }, { b: [null], a: 1.0 }],
      [[], []],
    ];
    const unequal: [unknown, unknown][] = [
      [1, "1"],
      [true, 2],
      [null, 0],
      [null, false],
      [[1, 2], [2, 1]],
      [[1], [1, 1]],
      [{ a: 1 }, { a: 1, b: 2 }],
      [{ a: 1 }, [1]],
      [undefined, null],
      [undefined, undefined],
    ];
    for (const [a, b] of equal) {
      assert.equal(pyEquals(a, b), true, JSON.stringify([a, b]));
      assert.equal(pyEquals(b, a), true, JSON.stringify([b, a]));
    }
    for (const [a, b] of unequal) {
      assert.equal(pyEquals(a, b), false, String(JSON.stringify([a, b])));
      assert.equal(pyEquals(b, a), false, String(JSON.stringify([b, a])));
    }
  });

  test("stages: equal, then expected[0] for a non-empty list", () => {
    assert.deepEqual(compareCall(3, 3.0), { ok: true, stage: "call-equal" });
    assert.deepEqual(compareCall(3, [3]), { ok: true, stage: "call-first-element" });
    // A returned tuple arrives as a list: (1, 2) vs APPS's wrapped [[1, 2]].
    assert.deepEqual(compareCall([1, 2], [[1, 2]]), { ok: true, stage: "call-first-element" });
    assert.deepEqual(compareCall([[1, 2], [3, 4]], [[[1, 2], [3, 4]]]), { ok: true, stage: "call-first-element" });
    assert.deepEqual(compareCall([3], [3]), { ok: true, stage: "call-equal" });
    assert.deepEqual(compareCall(null, [null]), { ok: true, stage: "call-first-element" });
    assert.deepEqual(compareCall({ "1": 2 }, [{ "1": 2 }]), { ok: true, stage: "call-first-element" });
    // Reference quirk: the rule applies to any non-empty list, not only one-element lists.
    assert.deepEqual(compareCall(1, [1, 2]), { ok: true, stage: "call-first-element" });
    assert.deepEqual(compareCall(2, [1, 2]), { ok: false });
    assert.deepEqual(compareCall([], []), { ok: true, stage: "call-equal" });
    assert.deepEqual(compareCall(undefined, [null]), { ok: false });
    assert.deepEqual(compareCall("3", [3]), { ok: false });
  });
});
