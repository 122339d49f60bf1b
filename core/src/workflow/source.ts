/**
 * YAML files with source positions, so that every error can point at `file:line:col`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from "yaml";
import { BdcError, BdcErrors, type ConfigPath } from "../errors.ts";

export interface YamlSource {
  /** Absolute path. */
  readonly file: string;
  /** Path as shown to the user (relative to the working directory when inside it). */
  readonly display: string;
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
  /** The plain JS value of the document. */
  readonly value: unknown;
}

export function displayPath(file: string, cwd: string = process.cwd()): string {
  const rel = path.relative(cwd, file);
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : file;
}

export function readYamlFile(file: string, cwd?: string): YamlSource {
  const abs = path.resolve(cwd ?? process.cwd(), file);
  let text: string;
  try {
    text = fs.readFileSync(abs, "utf8");
  } catch (cause) {
    const notFound = (cause as NodeJS.ErrnoException).code === "ENOENT";
    throw new BdcError({
      code: notFound ? "BDC_FILE_NOT_FOUND" : "BDC_USAGE",
      message: notFound ? `no such file: ${displayPath(abs, cwd)}` : `cannot read ${displayPath(abs, cwd)}: ${String(cause)}`,
      hint: notFound ? "check the path; relative paths are resolved from the current directory" : undefined,
      cause,
    });
  }
  return parseYamlText(text, abs, displayPath(abs, cwd));
}

export function parseYamlText(text: string, file: string, display: string = file): YamlSource {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const reported = new Set<number>();
    throw new BdcErrors(
      doc.errors.flatMap((err) => {
        const pos = lines.linePos(err.pos[0]);
        // An unclosed [ or { is noticed where the next line starts; point at the bracket itself.
        const open = /^Flow (map|sequence)|must be sufficiently indented and end with a [\]}]/.test(err.message) ? unclosedBracket(text, err.pos[0]) : undefined;
        if (open !== undefined) {
          if (reported.has(open.offset)) return [];
          reported.add(open.offset);
          const at = lines.linePos(open.offset);
          return new BdcError({
            code: "BDC_YAML_SYNTAX",
            message: `this "${open.char}" is not closed: add "${open.char === "[" ? "]" : "}"}" before the line ends (the parser noticed at ${pos.line}:${pos.col})`,
            hint: `a flow ${open.char === "[" ? "sequence [a, b]" : "mapping { k: v }"} must be closed on its own line, or continued with more indentation than its key`,
            origin: { kind: "file", file: display, line: at.line, col: at.col },
          });
        }
        return new BdcError({
          code: "BDC_YAML_SYNTAX",
          message: firstLine(err.message),
          hint: yamlHint(err.code),
          origin: { kind: "file", file: display, line: pos.line, col: pos.col },
        });
      }),
    );
  }
  return { file, display, doc, lines, value: doc.toJS({ maxAliasCount: 1000 }) };
}

/** The last "[" or "{" before `offset` that no bracket closes (outside quotes and comments), if any. */
function unclosedBracket(text: string, offset: number): { offset: number; char: "[" | "{" } | undefined {
  const stack: Array<{ offset: number; char: "[" | "{" }> = [];
  let quote: string | undefined;
  for (let i = 0; i < offset && i < text.length; i++) {
    const c = text[i]!;
    if (quote !== undefined) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = undefined;
      else if (c === "\n") quote = undefined;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(text[i - 1]!))) while (i < text.length && text[i] !== "\n") i++;
    else if (c === "[" || c === "{") stack.push({ offset: i, char: c });
    else if ((c === "]" && stack.at(-1)?.char === "[") || (c === "}" && stack.at(-1)?.char === "{")) stack.pop();
  }
  return stack.at(-1);
}

function firstLine(s: string): string {
  return s.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}

function yamlHint(code: string): string | undefined {
  switch (code) {
    case "DUPLICATE_KEY":
      return "each key may appear once per mapping; merge the two entries";
    case "TAB_AS_INDENT":
      return "YAML indents with spaces, not tabs";
    case "BAD_INDENT":
    case "MISSING_CHAR":
      return "check the indentation and that every `key: value` has its colon";
    default:
      return undefined;
  }
}

export interface Position {
  readonly line: number;
  readonly col: number;
}

/**
 * Position of the node at `path`, or of its deepest existing ancestor. With `at: "key"` a map
 * entry points at its key (right for "unknown key"), otherwise at its value.
 */
export function positionOf(src: YamlSource, target: ConfigPath, at: "key" | "value" = "value"): Position | undefined {
  let node: unknown = src.doc.contents;
  let pos = rangeStart(src, node as Node | null);
  for (let i = 0; i < target.length; i++) {
    const seg = target[i]!;
    const last = i === target.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair === undefined) return pos;
      const keyPos = rangeStart(src, pair.key as Node);
      node = pair.value;
      pos = last && at === "key" ? keyPos : (rangeStart(src, pair.value as Node | null) ?? keyPos);
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg];
      if (item === undefined) return pos;
      node = item;
      pos = rangeStart(src, item as Node) ?? pos;
    } else {
      return pos;
    }
  }
  return pos;
}

function rangeStart(src: YamlSource, node: Node | null | undefined): Position | undefined {
  const range = node?.range;
  if (range === undefined || range === null) return undefined;
  return src.lines.linePos(range[0]);
}
