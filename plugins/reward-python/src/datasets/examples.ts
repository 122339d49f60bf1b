/**
 * Examples parsed from problem statements, used as public tests where a dataset gives too few
 * tests to split (see README.md in this folder):
 *
 * - stdio statements (APPS, CodeContests): `-----Example(s)-----` then `Input` / `Output` blocks
 *   (Codeforces), `Sample Input` / `Sample Output` (CodeChef, AtCoder, with or without dashes,
 *   numbers and colons), `Example Input` / `Input example`;
 * - call-based statements (APPS LeetCode problems): `Input: a = [1,2], k = 3` / `Output: 4`,
 *   the values read as Python literals;
 * - HumanEval docstrings: doctest lines (`>>> f(x)` then the expected line) and
 *   `f(x) == y` / `f(x) ==> y` / `f(x) ➞ y` / `f(x) => y` lines, turned into assert scripts.
 */

export interface StdioExample {
  readonly input: string;
  readonly output: string;
}

// ---------------------------------------------------------------------------------------------
// stdio statements

type LineKind = { kind: "group" } | { kind: "in" | "out"; qualified: boolean; inline: string } | { kind: "stop" } | { kind: "text" };

const DASHED = /^\s*[-=]{3,}\s*(.*?)\s*[-=]{3,}\s*$/;
const GROUP = /^(?:(?:sample|example)s?(?: ?test(?:s| ?cases?)?)?|test ?cases?(?: examples?)?)(?: ?#?\d+)?$/;
const IO_WORD = /^(?:(sample|example)s? ?)?(?:test ?)?(input|output)s?(?: ?(sample|example)s?)?(?: ?#?\d+)?$/;
const STOP = /^(?:notes?|explanations?|hints?|constraints?|scoring|subtasks?|remarks?|comments?|illustrations?|input format|output format|clarifications?|footnotes?)(?: ?#?\d+)?$/;
const STOP_INLINE = /^\s*(?:notes?|explanations?|hints?|constraints?)\b.*:/i;

function normalize(text: string): string {
  return text
    .replace(/[\u00a0\t]/g, " ")
    .trim()
    .replace(/^[#*_\s]+|[#*_\s]+$/g, "")
    .replace(/\s*:$/, "")
    .replace(/\s+/g, " ")
    .toLowerCase();
}

function classify(line: string): LineKind {
  const dashed = DASHED.exec(line);
  const raw = dashed === null ? line : dashed[1]!;
  // `Sample Input 1: 3 4` or `Input: 3` keeps what follows the colon as the block's first line.
  const colon = /^([^:]{1,40}):\s*(\S.*)$/.exec(raw.trim());
  const head = normalize(colon === null ? raw : colon[1]!);
  const inline = colon === null ? "" : colon[2]!;
  if (head === "") return { kind: "text" };
  if (inline === "" && GROUP.test(head)) return { kind: "group" };
  const io = IO_WORD.exec(head);
  if (io !== null) return { kind: io[2] === "input" ? "in" : "out", qualified: io[1] !== undefined || io[3] !== undefined, inline };
  if (STOP.test(head) || (dashed === null && STOP_INLINE.test(line))) return { kind: "stop" };
  return dashed === null ? { kind: "text" } : { kind: "stop" };
}

function trimBlankLines(lines: string[]): string[] {
  let a = 0;
  let b = lines.length;
  while (a < b && lines[a]!.trim() === "") a++;
  while (b > a && lines[b - 1]!.trim() === "") b--;
  return lines.slice(a, b);
}

/** A line of explanation rather than data: several words, ending like a sentence. */
function isProse(line: string): boolean {
  const words = line.trim().split(/\s+/);
  const alpha = words.filter((w) => /^[A-Za-z][a-z]+[,.;:!?]?$/.test(w)).length;
  return words.length >= 4 && alpha >= 3 && (/[.:!?]$/.test(line.trim()) || /,\s/.test(line));
}

/**
 * An output block up to the first blank line that is followed by prose (AtCoder statements
 * explain a sample right after its output, with no heading in between).
 */
function withoutProse(lines: string[]): string[] {
  for (let i = 1; i < lines.length; i++) {
    if (lines[i - 1]!.trim() !== "" || lines[i]!.trim() === "") continue;
    if (isProse(lines[i]!)) return lines.slice(0, i);
  }
  return lines;
}

/**
 * Input/output pairs of a statement's examples, in order. Bare `Input` / `Output` headers count
 * only after an `Example(s)` / `Sample` header (before it they head the input/output
 * specification); `Sample Input` and the like count anywhere. Each text ends with a newline.
 */
export function parseStdioExamples(statement: string): StdioExample[] {
  const lines = statement.replace(/\r\n?/g, "\n").split("\n");
  const pairs: StdioExample[] = [];
  let inExamples = false;
  let block: { kind: "in" | "out"; lines: string[] } | undefined;
  let pendingInput: string | undefined;
  const close = () => {
    if (block === undefined) return;
    const text = trimBlankLines(block.kind === "out" ? withoutProse(block.lines) : block.lines).join("\n");
    if (block.kind === "in") pendingInput = text === "" ? undefined : `${text}\n`;
    else if (pendingInput !== undefined && text !== "") {
      pairs.push({ input: pendingInput, output: `${text}\n` });
      pendingInput = undefined;
    }
    block = undefined;
  };
  for (const line of lines) {
    const c = classify(line);
    switch (c.kind) {
      case "group":
        close();
        inExamples = true;
        break;
      case "in":
      case "out":
        if (c.qualified || inExamples) {
          close();
          if (c.kind === "out" && pendingInput === undefined) break;
          block = { kind: c.kind, lines: c.inline === "" ? [] : [c.inline] };
        } else {
          close();
          inExamples = false;
        }
        break;
      case "stop":
        close();
        inExamples = false;
        pendingInput = undefined;
        break;
      case "text":
        block?.lines.push(line.replace(/\u00a0/g, " "));
        break;
    }
  }
  close();
  return pairs;
}

// ---------------------------------------------------------------------------------------------
// Python literals

class LiteralError extends Error {}

/** Reads Python (or JSON) literals: numbers, strings, True/False/None, lists, tuples (as lists), dicts with string keys. */
export class PyLiteral {
  pos = 0;
  constructor(readonly text: string) {}

  static parse(text: string): unknown {
    const p = new PyLiteral(text);
    const v = p.value();
    p.ws();
    if (p.pos !== text.length) throw new LiteralError(`unexpected text after the value: ${JSON.stringify(text.slice(p.pos, p.pos + 20))}`);
    return v;
  }

  static tryParse(text: string): { ok: true; value: unknown } | { ok: false } {
    try {
      return { ok: true, value: PyLiteral.parse(text) };
    } catch (e) {
      if (e instanceof LiteralError) return { ok: false };
      throw e;
    }
  }

  ws(): void {
    while (this.pos < this.text.length && /[\s\u00a0]/.test(this.text[this.pos]!)) this.pos++;
  }

  private fail(what: string): never {
    throw new LiteralError(`${what} at ${this.pos}`);
  }

  value(depth = 0): unknown {
    if (depth > 50) this.fail("too deeply nested");
    this.ws();
    const ch = this.text[this.pos];
    if (ch === undefined) this.fail("expected a value");
    if (ch === "[" || ch === "(") return this.seq(ch === "[" ? "]" : ")", depth);
    if (ch === "{") return this.dict(depth);
    if (ch === '"' || ch === "'") return this.str();
    const word = /^(True|False|None|true|false|null)\b/.exec(this.text.slice(this.pos));
    if (word !== null) {
      this.pos += word[1]!.length;
      return word[1] === "True" || word[1] === "true" ? true : word[1] === "False" || word[1] === "false" ? false : null;
    }
    const num = /^[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?/.exec(this.text.slice(this.pos));
    if (num !== null && !/^[A-Za-z_]/.test(this.text.slice(this.pos + num[0].length))) {
      this.pos += num[0].length;
      const n = Number(num[0].replace(/_/g, ""));
      if (!Number.isFinite(n)) this.fail("number out of range");
      return n;
    }
    return this.fail("expected a value");
  }

  private seq(close: string, depth: number): unknown[] {
    this.pos++;
    const out: unknown[] = [];
    for (;;) {
      this.ws();
      if (this.text[this.pos] === close) {
        this.pos++;
        return out;
      }
      out.push(this.value(depth + 1));
      this.ws();
      if (this.text[this.pos] === ",") this.pos++;
      else if (this.text[this.pos] !== close) this.fail(`expected "," or "${close}"`);
    }
  }

  private dict(depth: number): Record<string, unknown> {
    this.pos++;
    const out: Record<string, unknown> = {};
    for (;;) {
      this.ws();
      if (this.text[this.pos] === "}") {
        this.pos++;
        return out;
      }
      const key = this.value(depth + 1);
      if (typeof key !== "string") this.fail("dict keys must be strings");
      this.ws();
      if (this.text[this.pos] !== ":") this.fail('expected ":"');
      this.pos++;
      out[key] = this.value(depth + 1);
      this.ws();
      if (this.text[this.pos] === ",") this.pos++;
      else if (this.text[this.pos] !== "}") this.fail('expected "," or "}"');
    }
  }

  private str(): string {
    const q = this.text[this.pos]!;
    this.pos++;
    let out = "";
    for (;;) {
      const ch = this.text[this.pos];
      if (ch === undefined || ch === "\n") this.fail("unterminated string");
      this.pos++;
      if (ch === q) return out;
      if (ch !== "\\") {
        out += ch;
        continue;
      }
      const e = this.text[this.pos++];
      const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"', b: "\b", f: "\f", v: "\v", a: "\x07" };
      if (e !== undefined && e in simple) out += simple[e];
      else if (e === "x" || e === "u") {
        const len = e === "x" ? 2 : 4;
        const hex = this.text.slice(this.pos, this.pos + len);
        if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) this.fail("bad escape");
        out += String.fromCharCode(parseInt(hex, 16));
        this.pos += len;
      } else out += `\\${e ?? ""}`;
    }
  }

  /** `a = [1, 2], k = 3` or `[1, 2], 3`: argument values in order (names dropped). */
  static parseArgs(text: string): unknown[] | undefined {
    const p = new PyLiteral(text);
    const args: unknown[] = [];
    try {
      for (;;) {
        p.ws();
        const named = /^[A-Za-z_]\w*\s*=(?!=)/.exec(text.slice(p.pos));
        if (named !== null) p.pos += named[0].length;
        args.push(p.value());
        p.ws();
        if (p.pos === text.length) return args;
        if (text[p.pos] !== ",") return undefined;
        p.pos++;
      }
    } catch (e) {
      if (e instanceof LiteralError) return undefined;
      throw e;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// call-based statements (LeetCode style)

export interface CallExample {
  readonly args: unknown[];
  readonly expected: unknown;
}

const CALL_STOP = /^\s*(?:example|input|explanation|note|constraints?|follow[- ]up|hint)s?\b/i;

/**
 * `Input: x = 1, y = [2]` / `Output: 3` pairs of a LeetCode-style statement, the values parsed
 * as Python literals. Examples whose values do not parse are left out.
 */
export function parseCallExamples(statement: string): CallExample[] {
  const lines = statement.replace(/\r\n?/g, "\n").split("\n");
  const out: CallExample[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*(?:\*\*)?Input(?:\*\*)?\s*:\s*(.*)$/i.exec(lines[i]!);
    if (m === null) continue;
    const input = [m[1]!];
    let j = i + 1;
    let outLine: RegExpExecArray | null = null;
    for (; j < lines.length && j < i + 40; j++) {
      outLine = /^\s*(?:\*\*)?Output(?:\*\*)?\s*:\s*(.*)$/i.exec(lines[j]!);
      if (outLine !== null || CALL_STOP.test(lines[j]!)) break;
      input.push(lines[j]!);
    }
    if (outLine === null) continue;
    const output = [outLine[1]!];
    for (let k = j + 1; k < lines.length && k < j + 40; k++) {
      if (lines[k]!.trim() === "" || CALL_STOP.test(lines[k]!)) break;
      output.push(lines[k]!);
    }
    i = j;
    const args = PyLiteral.parseArgs(input.join("\n").trim());
    const outText = output.join("\n").trim().replace(/\.$/, "");
    const expected = PyLiteral.tryParse(outText);
    if (args === undefined || args.length === 0 || !expected.ok) continue;
    out.push({ args, expected: expected.value });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// HumanEval docstrings

export interface DocExample {
  /** The call, e.g. `f([1, 2], 3)`. */
  readonly call: string;
  /** The expected value as Python source, e.g. `[1, 2]`. */
  readonly expected: string;
  /** Doctest statements before it that printed nothing (`>>> x = 3`). */
  readonly setup: ReadonlyArray<string>;
}

/** True when brackets and quotes of a Python expression balance (a cheap well-formedness check). */
export function balanced(src: string): boolean {
  const stack: string[] = [];
  const pairs: Record<string, string> = { ")": "(", "]": "[", "}": "{" };
  for (let i = 0; i < src.length; i++) {
    const ch = src[i]!;
    if (ch === '"' || ch === "'") {
      const end = findQuoteEnd(src, i);
      if (end < 0) return false;
      i = end;
    } else if (ch === "(" || ch === "[" || ch === "{") stack.push(ch);
    else if (ch in pairs) {
      if (stack.pop() !== pairs[ch]) return false;
    }
  }
  return stack.length === 0;
}

function findQuoteEnd(src: string, start: number): number {
  const q = src[start]!;
  for (let i = start + 1; i < src.length; i++) {
    if (src[i] === "\\") i++;
    else if (src[i] === q) return i;
  }
  return -1;
}

/** Index just after the parenthesised argument list that starts at `open` (a "("), or -1. */
function callEnd(src: string, open: number): number {
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    const ch = src[i]!;
    if (ch === '"' || ch === "'") {
      const end = findQuoteEnd(src, i);
      if (end < 0) return -1;
      i = end;
    } else if (ch === "(" || ch === "[" || ch === "{") depth++;
    else if (ch === ")" || ch === "]" || ch === "}") {
      depth--;
      if (depth === 0) return ch === ")" ? i + 1 : -1;
    }
  }
  return -1;
}

const ARROW = /^\s*(==>|==|➞|=>|->|⟹|→)\s*(.+?)\s*$/;

/**
 * Examples of `entry` in a HumanEval prompt: doctests (`>>> entry(...)` followed by the
 * expected output) and one-line `entry(...) == value` examples (also `==>`, `➞`, `=>`, `->`).
 */
export function parseDocExamples(prompt: string, entry: string): DocExample[] {
  const lines = prompt.replace(/\r\n?/g, "\n").split("\n");
  const out: DocExample[] = [];
  const setup: string[] = [];
  const callRe = new RegExp(`^\\s*(?:>>>\\s*)?(${escapeRe(entry)}\\s*\\()`);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const doc = /^\s*>>>\s?(.*)$/.exec(line);
    if (doc !== null) {
      let src = doc[1]!;
      while (i + 1 < lines.length && /^\s*\.\.\.(\s|$)/.test(lines[i + 1]!)) src += `\n${lines[++i]!.replace(/^\s*\.\.\.\s?/, "")}`;
      const expected: string[] = [];
      while (i + 1 < lines.length && lines[i + 1]!.trim() !== "" && !/^\s*>>>/.test(lines[i + 1]!) && !/^\s*("""|''')/.test(lines[i + 1]!)) {
        expected.push(lines[++i]!.trim());
      }
      const exp = expected.join("\n").replace(/("""|''')\s*$/, "").trim();
      if (exp === "") {
        if (balanced(src)) setup.push(src.trim());
      } else if (PyLiteral.tryParse(exp).ok && !/^\s*print\s*\(/.test(src) && new RegExp(`\\b${escapeRe(entry)}\\s*\\(`).test(src) && balanced(src) && balanced(exp) && !exp.includes("\n") && !/^Traceback/.test(exp)) {
        out.push({ call: src.trim(), expected: exp, setup: [...setup] });
      }
      continue;
    }
    const m = callRe.exec(line);
    if (m === null) continue;
    const start = line.indexOf(m[1]!);
    const end = callEnd(line, start + m[1]!.length - 1);
    if (end < 0) continue;
    const arrow = ARROW.exec(line.slice(end));
    if (arrow === null) continue;
    // Prose examples are looser than doctests: keep them only when the arguments and the
    // expected value are literals (not `f(n) -> f(n-1) + ...` or `-> 19 - 5 - 6 = 8`).
    const exp = arrow[2]!.replace(/\s+#.*$/, "").trim();
    const argText = line.slice(start + m[1]!.length, end - 1).trim();
    if (argText !== "" && PyLiteral.parseArgs(argText) === undefined) continue;
    if (exp === "" || !PyLiteral.tryParse(exp).ok) continue;
    out.push({ call: pythonWords(line.slice(start, end)), expected: pythonWords(exp), setup: [] });
  }
  return out;
}

/** JSON's true/false/null (outside strings) as Python's True/False/None. */
function pythonWords(src: string): string {
  let out = "";
  for (let i = 0; i < src.length; i++) {
    const ch = src[i]!;
    if (ch === '"' || ch === "'") {
      const end = findQuoteEnd(src, i);
      out += src.slice(i, end + 1);
      i = end;
      continue;
    }
    const w = /^(true|false|null)\b/.exec(src.slice(i));
    if (w !== null && !/\w/.test(src[i - 1] ?? "")) {
      out += w[1] === "true" ? "True" : w[1] === "false" ? "False" : "None";
      i += w[1]!.length - 1;
    } else out += ch;
  }
  return out;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** An assert script for one docstring example (run after the solution, in its namespace). */
export function docExampleScript(ex: DocExample): string {
  const label = JSON.stringify(ex.call.length > 200 ? `${ex.call.slice(0, 200)}...` : ex.call);
  return [
    ...ex.setup,
    `_result = ${ex.call}`,
    `_expected = ${ex.expected}`,
    `assert _result == _expected or (isinstance(_expected, float) and isinstance(_result, (int, float)) and abs(_result - _expected) <= 1e-6 * max(1.0, abs(_expected))), ${label} + " returned " + repr(_result) + ", expected " + repr(_expected)`,
    "",
  ].join("\n");
}
