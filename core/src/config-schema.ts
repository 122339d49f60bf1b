/**
 * Plugin configuration schemas: small helpers over Effect Schema, and the translation of
 * Effect's parse issues into located, coded, human sentences
 * (`expected a number, got "high"`, `unknown key "cc" (did you mean "c"?)`).
 */
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
        message: `expected ${describeAst(issue.ast)}, got ${describeValue(issue.actual)}`,
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
        message: `missing required key "${String(path[path.length - 1])}" (${describeAst(issue.ast as unknown as AST.AST)})`,
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
  out.push({
    code: "BDC_CONFIG_TYPE",
    path,
    message: `expected ${describeUnion(members)}, got ${describeValue(issue.actual)}`,
    at: "value",
  });
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
  if (AST.isRefinement(ast)) {
    const d = AST.getDescriptionAnnotation(ast);
    return d._tag === "Some" && isBuiltinDescription(d.value) ? d.value : describeAst(ast.from);
  }
  if (AST.isTransformation(ast)) return describeAst(ast.from);
  if (AST.isSuspend(ast)) return describeAst(ast.f());
  return keywordNames[ast._tag] ?? (AST.getDescriptionAnnotation(ast).pipe((o) => (o._tag === "Some" ? o.value : ast._tag)));
}

/**
 * Effect's built-in refinements describe themselves ("an integer", "a positive number",
 * "a string at least 1 character(s) long"); a user's field doc ("exploration constant") is
 * not a type and must not appear after "expected".
 */
function isBuiltinDescription(d: string): boolean {
  return /^(a|an) /.test(d);
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
