/**
 * Plugin configuration schemas: small helpers over Effect Schema, and the translation of
 * Effect's parse issues into located, coded, human sentences
 * (`expected a number, got "high"`, `unknown key "cc" (did you mean "c"?)`).
 */
import * as path from "node:path";
import { Either, ParseResult, Schema, SchemaAST as AST } from "effect";
import type { ConfigPath, PathSegment } from "./errors.ts";
import { describeValue } from "./workflow/layers.ts";
import { choicesHint } from "./util/suggest.ts";

/** A config struct; `make` receives its decoded (Type) side. */
export type ConfigSchema<A = any> = Schema.Schema<A, any, never> & { readonly fields: Schema.Struct.Fields };

/**
 * An optional key with a default, documented for `bdc describe`, the JSON Schema and editors:
 * `c: option(Schema.Number, 1.0, "exploration constant of PUCB")`.
 */
export function option<S extends Schema.Schema.Any>(schema: S, defaultValue: Schema.Schema.Type<S>, description: string) {
  return Schema.optionalWith(
    schema.annotations({ description, default: defaultValue }) as unknown as Schema.Schema<
      Schema.Schema.Type<S>,
      Schema.Schema.Encoded<S>,
      never
    >,
    { default: () => defaultValue as Exclude<Schema.Schema.Type<S>, undefined> },
  );
}

/** A required key: `path: required(Schema.String, "JSONL file of problems")`. */
export function required<S extends Schema.Schema.Any>(schema: S, description: string): S {
  return schema.annotations({ description }) as S;
}

/** An optional key without default (absent means "not set"). */
export function optional<S extends Schema.Schema.All>(schema: S, description: string) {
  return Schema.optional((schema as Schema.Schema.Any).annotations({ description }) as S);
}

const FilePathId = Symbol.for("@bdc/core/FilePath");

/**
 * A file or directory path in a plugin's config. The kernel resolves a relative value from
 * the directory of the YAML file that wrote it (an overlay's path is relative to the overlay;
 * a `--set` value to the current directory), so `make` always receives an absolute path.
 */
export const FilePath: Schema.Schema<string> = Schema.String.annotations({ [FilePathId]: true, title: "path" });

const StepNameId = Symbol.for("@bdc/core/StepName");

/**
 * The name of a step of the same workflow in a plugin's config (`from: search`): checked when the
 * workflow is resolved (an unknown or switched-off step is a located error with the steps there
 * are), and every step that uses the instance - directly or through the instances it references -
 * waits for the named step, as if it were in its `needs`.
 */
export const StepName: Schema.Schema<string> = Schema.String.pipe(Schema.minLength(1)).annotations({ [StepNameId]: true, title: "step" });

/** Config keys holding a StepName ("one") or a list of them ("many"). */
export function stepNameKeys(schema: Schema.Schema.Any): Map<string, "one" | "many"> {
  const out = new Map<string, "one" | "many">();
  const ast = Schema.typeSchema(schema).ast;
  if (!AST.isTypeLiteral(ast)) return out;
  const marked = (t: AST.AST): boolean => StepNameId in t.annotations || (AST.isUnion(t) && t.types.some(marked)) || (AST.isRefinement(t) && marked(t.from));
  for (const p of ast.propertySignatures) {
    const members = AST.isUnion(p.type) ? p.type.types : [p.type];
    if (members.some(marked)) out.set(String(p.name), "one");
    else if (members.some((m) => AST.isTupleType(m) && m.rest.some((r) => marked(r.type)))) out.set(String(p.name), "many");
  }
  return out;
}

const PathOrNameId = Symbol.for("@bdc/core/PathOrName");

/**
 * A path when written as one (`./x`, `../x`, `/x`), else a name (e.g. a Hugging Face hub id
 * `org/name`): only a path is resolved, as a FilePath is.
 */
export const PathOrName: Schema.Schema<string> = Schema.String.annotations({ [PathOrNameId]: true, title: "path or name" });

/** Written as a path: explicitly relative or absolute. */
export const isWrittenAsPath = (v: string): boolean => /^(\.{1,2}([/\\]|$)|[/\\]|[A-Za-z]:[/\\])/.test(v);

/**
 * Config keys holding a FilePath ("one"), a list of them ("many"), a name -> FilePath map
 * ("map"), or a PathOrName ("one-if-path").
 */
export function filePathKeys(schema: Schema.Schema.Any): Map<string, "one" | "many" | "map" | "one-if-path"> {
  const out = new Map<string, "one" | "many" | "map" | "one-if-path">();
  const ast = Schema.typeSchema(schema).ast;
  if (!AST.isTypeLiteral(ast)) return out;
  const marked = (id: symbol) => (t: AST.AST): boolean => id in t.annotations || (AST.isUnion(t) && t.types.some(marked(id))) || (AST.isRefinement(t) && marked(id)(t.from));
  const isPath = marked(FilePathId);
  for (const p of ast.propertySignatures) {
    const members = AST.isUnion(p.type) ? p.type.types : [p.type];
    if (members.some(isPath)) out.set(String(p.name), "one");
    else if (members.some(marked(PathOrNameId))) out.set(String(p.name), "one-if-path");
    else if (members.some((m) => AST.isTupleType(m) && m.rest.some((r) => isPath(r.type)))) out.set(String(p.name), "many");
    else if (members.some((m) => AST.isTypeLiteral(m) && m.indexSignatures.some((i) => isPath(i.type)))) out.set(String(p.name), "map");
  }
  return out;
}

/**
 * Makes the FilePath values of a decoded config absolute, each from the directory `dirOf`
 * gives for its key path (e.g. ["path"] or ["files", 2]).
 */
export function resolveFilePaths(schema: Schema.Schema.Any, config: Record<string, unknown>, dirOf: (key: ReadonlyArray<string | number>) => string): void {
  for (const [key, arity] of filePathKeys(schema)) {
    const v = config[key];
    if (arity === "one" && typeof v === "string") config[key] = path.resolve(dirOf([key]), v);
    if (arity === "one-if-path" && typeof v === "string" && isWrittenAsPath(v)) config[key] = path.resolve(dirOf([key]), v);
    if (arity === "many" && Array.isArray(v)) config[key] = v.map((x, i) => (typeof x === "string" ? path.resolve(dirOf([key, i]), x) : x));
    if (arity === "map" && typeof v === "object" && v !== null && !Array.isArray(v)) {
      config[key] = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, typeof x === "string" ? path.resolve(dirOf([key, k]), x) : x]));
    }
  }
}

export interface ConfigProblem {
  readonly code: "BDC_CONFIG_TYPE" | "BDC_CONFIG_VALUE" | "BDC_CONFIG_UNKNOWN_KEY" | "BDC_CONFIG_MISSING_KEY";
  readonly path: ConfigPath;
  readonly message: string;
  readonly hint?: string | undefined;
  /** Point at the key (unknown/missing keys) rather than the value. */
  readonly at: "key" | "value";
}

export type Decoded<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly problems: ConfigProblem[] };

const decodeOptions = { errors: "all", onExcessProperty: "error" } as const;

export function decodeConfig<A, I>(schema: Schema.Schema<A, I, never>, input: unknown): Decoded<A> {
  const result = Schema.decodeUnknownEither(schema, decodeOptions)(input);
  if (Either.isRight(result)) return { ok: true, value: result.right };
  return { ok: false, problems: issueProblems(result.left.issue) };
}

export function encodeConfig<A, I>(schema: Schema.Schema<A, I, never>, value: A): I {
  return Schema.encodeSync(schema)(value);
}

/** Turns an Effect parse issue tree into flat problems with paths relative to the decoded value. */
export function issueProblems(issue: ParseResult.ParseIssue): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  walk(issue, [], undefined, out);
  return dedupe(out);
}

function walk(issue: ParseResult.ParseIssue, path: PathSegment[], keys: ReadonlyArray<string> | undefined, out: ConfigProblem[]): void {
  switch (issue._tag) {
    case "Pointer": {
      const segs = (Array.isArray(issue.path) ? issue.path : [issue.path]) as PropertyKey[];
      walk(issue.issue, [...path, ...segs.map((s) => (typeof s === "symbol" ? String(s) : s))], keys, out);
      return;
    }
    case "Composite": {
      const subs = Array.isArray(issue.issues) ? issue.issues : [issue.issues];
      if (AST.isUnion(issue.ast)) return walkUnion(issue, subs as ParseResult.ParseIssue[], path, out);
      const ownKeys = structKeys(issue.ast) ?? keys;
      for (const sub of subs as ParseResult.ParseIssue[]) walk(sub, path, ownKeys, out);
      return;
    }
    case "Refinement":
      if (issue.kind === "From") return walk(issue.issue, path, keys, out);
      out.push({
        code: "BDC_CONFIG_VALUE",
        path,
        message: customMessage(issue) ?? `expected ${describeAst(issue.ast)}, got ${describeValue(issue.actual)}`,
        at: "value",
      });
      return;
    case "Transformation":
      return walk(issue.issue, path, structKeys(issue.ast) ?? keys, out);
    case "Type":
      out.push({
        code: "BDC_CONFIG_TYPE",
        path,
        message: `expected ${describeAst(issue.ast)}, got ${describeValue(issue.actual)}`,
        at: "value",
      });
      return;
    case "Missing":
      out.push({
        code: "BDC_CONFIG_MISSING_KEY",
        path,
        message: `missing required key "${String(path[path.length - 1])}" (${describeAst(propertyType(issue.ast))})`,
        at: "key",
      });
      return;
    case "Unexpected": {
      const key = String(path[path.length - 1]);
      out.push({
        code: "BDC_CONFIG_UNKNOWN_KEY",
        path,
        message: `unknown key "${key}"`,
        hint: keys === undefined ? undefined : choicesHint(key, keys, "valid keys"),
        at: "key",
      });
      return;
    }
    case "Forbidden":
      out.push({ code: "BDC_CONFIG_VALUE", path, message: issue.message ?? "value not allowed here", at: "value" });
      return;
  }
}

/**
 * A union failed: an optional key (X | undefined) reports X's problem; a union where one
 * member matched structurally (a nested problem) reports that member's problems; otherwise
 * one sentence lists the alternatives.
 */
function walkUnion(issue: ParseResult.Composite, subs: ParseResult.ParseIssue[], path: PathSegment[], out: ConfigProblem[]): void {
  const union = issue.ast as AST.Union;
  const members = union.types.filter((t) => !(issue.actual !== undefined && AST.isUndefinedKeyword(t)));
  const relevant = subs.filter((s) => !(s._tag === "Type" && AST.isUndefinedKeyword((s as ParseResult.Type).ast)));
  const nested = relevant.filter((s) => s._tag === "Composite" || s._tag === "Transformation" || s._tag === "Refinement");
  if (relevant.length === 1) return walk(relevant[0]!, path, undefined, out);
  if (nested.length === 1) return walk(nested[0]!, path, undefined, out);
  const literals = members.every(AST.isLiteral) ? members.map((m) => typeof (m as AST.Literal).literal) : [];
  out.push({
    code: literals.includes(typeof issue.actual) ? "BDC_CONFIG_VALUE" : "BDC_CONFIG_TYPE",
    path,
    message: `expected ${describeUnion(members)}, got ${describeValue(issue.actual)}`,
    hint: literals.length > 0 && typeof issue.actual === "string" ? choicesHint(issue.actual, members.map((m) => String((m as AST.Literal).literal)), "valid values") : undefined,
    at: "value",
  });
}

/**
 * A plugin's own wording for a failed check (`Schema.filter(f, {message: () => "must be even"})`
 * or a filter returning a string), followed by what was given.
 */
function customMessage(issue: ParseResult.Refinement): string | undefined {
  const own = issue.issue._tag === "Type" ? issue.issue.message : undefined;
  const annotated = AST.getMessageAnnotation(issue.ast)._tag === "Some" ? ParseResult.ArrayFormatter.formatIssueSync(issue)[0]?.message : undefined;
  const message = own ?? annotated;
  return message === undefined ? undefined : `${message}, got ${describeValue(issue.actual)}`;
}

/** Missing-key issues carry the property signature; its `type` is the value's schema. */
function propertyType(ast: unknown): AST.AST {
  const a = ast as { type?: AST.AST } & AST.AST;
  return a.type !== undefined && typeof a.type === "object" && "_tag" in a.type ? a.type : a;
}

function structKeys(ast: AST.AST): string[] | undefined {
  if (AST.isTypeLiteral(ast)) return ast.propertySignatures.map((p) => String(p.name));
  if (AST.isTransformation(ast)) return structKeys(ast.from);
  return undefined;
}

const keywordNames: Partial<Record<AST.AST["_tag"], string>> = {
  StringKeyword: "a string",
  NumberKeyword: "a number",
  BooleanKeyword: "a boolean",
  BigIntKeyword: "an integer",
  UndefinedKeyword: "nothing",
  UnknownKeyword: "any value",
  AnyKeyword: "any value",
  ObjectKeyword: "a mapping",
  TypeLiteral: "a mapping",
  TupleType: "a list",
};

/** "a number", "an integer", `one of "max", "mean"`, "a list" ... for messages and docs. */
export function describeAst(ast: AST.AST): string {
  if (AST.isLiteral(ast)) return JSON.stringify(ast.literal);
  if (AST.isUnion(ast)) return describeUnion(ast.types);
  if (AST.isRefinement(ast)) return describeRefinement(ast);
  if (AST.isTransformation(ast)) return describeAst(ast.from);
  if (AST.isSuspend(ast)) return describeAst(ast.f());
  return keywordNames[ast._tag] ?? (AST.getDescriptionAnnotation(ast).pipe((o) => (o._tag === "Some" ? o.value : ast._tag)));
}

/**
 * "an integer > 0", "a number between 0 and 2", "a string matching /^x/". Built from the
 * refinements' JSON Schema annotations rather than their descriptions, because a field's doc
 * (`option(..., "exploration constant")`) replaces the description of the outermost refinement.
 */
function describeRefinement(ast: AST.Refinement): string {
  const constraints: Record<string, unknown> = {};
  let base: AST.AST = ast;
  let opaque: string | undefined;
  while (AST.isRefinement(base)) {
    const js = base.annotations[AST.JSONSchemaAnnotationId] as Record<string, unknown> | undefined;
    if (js !== undefined) {
      for (const [k, v] of Object.entries(js)) if (!(k in constraints)) constraints[k] = v;
    } else if (opaque === undefined) {
      const d = AST.getDescriptionAnnotation(base);
      if (d._tag === "Some" && /^(a|an) /.test(d.value)) opaque = d.value;
    }
    base = base.from;
  }
  if (Object.keys(constraints).length === 0 && opaque !== undefined) return opaque;
  let text = constraints.type === "integer" ? "an integer" : describeAst(base);
  const { minimum: min, maximum: max, exclusiveMinimum: xmin, exclusiveMaximum: xmax } = constraints;
  if (min !== undefined && max !== undefined) text += ` between ${min} and ${max}`;
  else {
    if (min !== undefined) text += ` >= ${min}`;
    if (xmin !== undefined) text += ` > ${xmin}`;
    if (max !== undefined) text += ` <= ${max}`;
  }
  if (xmax !== undefined) text += ` < ${xmax}`;
  if (constraints.minLength !== undefined) text += ` of at least ${constraints.minLength} character(s)`;
  if (constraints.maxLength !== undefined) text += ` of at most ${constraints.maxLength} character(s)`;
  if (constraints.minItems !== undefined) text += ` with at least ${constraints.minItems} item(s)`;
  if (constraints.maxItems !== undefined) text += ` with at most ${constraints.maxItems} item(s)`;
  if (constraints.pattern !== undefined) text += ` matching /${constraints.pattern}/`;
  return opaque !== undefined && text === describeAst(base) ? opaque : text;
}

function describeUnion(types: ReadonlyArray<AST.AST>): string {
  const members = types.filter((t) => !AST.isUndefinedKeyword(t));
  if (members.length > 0 && members.every(AST.isLiteral)) {
    return `one of ${members.map((m) => JSON.stringify((m as AST.Literal).literal)).join(", ")}`;
  }
  return [...new Set(members.map(describeAst))].join(" or ");
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${JSON.stringify(p.path)}|${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
