/**
 * Layering of configuration: a workflow file, its `extends`, overlays and `--set` values are
 * deep-merged in order, and for every value we remember which layer wrote it, so that errors
 * point at the file and line (or the `--set` argument) the user must edit.
 *
 * Merge rule: mappings merge key by key; everything else (scalars, lists) is replaced whole.
 */
import { parse as parseYamlValue } from "yaml";
import { BdcError, type ConfigPath, type Origin, type PathSegment } from "../errors.ts";
import { positionOf, type YamlSource } from "./source.ts";

export type Layer =
  | { readonly kind: "file"; readonly source: YamlSource }
  | { readonly kind: "set"; readonly arg: string; readonly path: ConfigPath; readonly value: unknown };

type Json = Record<string, unknown>;

export const isPlainObject = (u: unknown): u is Json =>
  typeof u === "object" && u !== null && !Array.isArray(u) && Object.getPrototypeOf(u) === Object.prototype;

const keyOf = (p: ConfigPath) => JSON.stringify(p);

/** Which layer wrote which path. Only whole-value writes are recorded, not key-by-key merges. */
export class Provenance {
  private readonly writes = new Map<string, number>();
  constructor(readonly layers: ReadonlyArray<Layer>) {}

  record(path: ConfigPath, layer: number): void {
    this.writes.set(keyOf(path), layer);
  }

  /** The layer whose value is visible at `path`: the latest that wrote the path or an ancestor. */
  layerOf(path: ConfigPath): Layer | undefined {
    let best = -1;
    for (let n = path.length; n >= 0; n--) {
      const w = this.writes.get(keyOf(path.slice(0, n)));
      if (w !== undefined && w > best) best = w;
    }
    return best < 0 ? undefined : this.layers[best];
  }

  origin(path: ConfigPath, at: "key" | "value" = "value"): Origin | undefined {
    const layer = this.layerOf(path);
    if (layer === undefined) return undefined;
    if (layer.kind === "set") return { kind: "cli", arg: layer.arg };
    const pos = positionOf(layer.source, path, at);
    return pos === undefined ? undefined : { kind: "file", file: layer.source.display, line: pos.line, col: pos.col };
  }

  /** The file that defined the value at `path` (for resolving relative paths such as `use: ./x.ts`). */
  fileOf(path: ConfigPath): string | undefined {
    const layer = this.layerOf(path);
    return layer?.kind === "file" ? layer.source.file : undefined;
  }
}

export interface Merged {
  readonly value: Json;
  readonly provenance: Provenance;
}

export function mergeLayers(layers: ReadonlyArray<Layer>): Merged {
  const provenance = new Provenance(layers);
  let root: Json = {};
  layers.forEach((layer, index) => {
    if (layer.kind === "file") {
      const value = layer.source.value ?? {};
      if (!isPlainObject(value)) {
        throw new BdcError({
          code: "BDC_CONFIG_TYPE",
          message: `expected a mapping at the top of the file, got ${describeValue(value)}`,
          origin: { kind: "file", file: layer.source.display, line: 1, col: 1 },
          hint: "a workflow or overlay is a YAML mapping with keys such as `plugins:` and `steps:`",
        });
      }
      root = mergeInto(root, value, [], index, provenance);
    } else {
      root = setIn(root, layer.path, layer.value, index, provenance, layer.arg);
    }
  });
  return { value: root, provenance };
}

function mergeInto(target: Json, source: Json, at: ConfigPath, layer: number, prov: Provenance): Json {
  const out: Json = { ...target };
  for (const [key, value] of Object.entries(source)) {
    const path = [...at, key];
    const existing = out[key];
    if (isPlainObject(existing) && isPlainObject(value)) {
      out[key] = mergeInto(existing, value, path, layer, prov);
    } else {
      out[key] = isPlainObject(value) ? structuredClone(value) : value;
      prov.record(path, layer);
    }
  }
  return out;
}

function setIn(root: Json, path: ConfigPath, value: unknown, layer: number, prov: Provenance, arg: string): Json {
  const out: Json = { ...root };
  let node: Json | unknown[] = out;
  const mismatch = (i: number) => {
    const seg = path[i]!;
    const where = i === 0 ? "the top level" : `"${String(path[i - 1])}"`;
    return new BdcError({
      code: "BDC_SET_SYNTAX",
      message: Array.isArray(node) ? `${where} is a list: index it with [n], not ".${String(seg)}"` : `${where} is a mapping: name a key, not [${String(seg)}]`,
      origin: { kind: "cli", arg },
    });
  };
  for (let i = 0; i < path.length; i++) {
    if (Array.isArray(node) !== (typeof path[i] === "number")) throw mismatch(i);
    if (i === path.length - 1) break;
    const seg = path[i]!;
    const current: unknown = (node as Record<PathSegment, unknown>)[seg];
    let next: Json | unknown[];
    if (Array.isArray(current)) next = [...current];
    else if (isPlainObject(current)) next = { ...current };
    else if (current === undefined || current === null) next = typeof path[i + 1] === "number" ? [] : {};
    else {
      throw new BdcError({
        code: "BDC_SET_SYNTAX",
        message: `cannot set a key inside "${String(seg)}": its value is ${describeValue(current)}, not a mapping`,
        origin: { kind: "cli", arg },
      });
    }
    (node as Record<PathSegment, unknown>)[seg] = next;
    if (current === undefined || current === null) prov.record(path.slice(0, i + 1), layer);
    node = next;
  }
  (node as Record<PathSegment, unknown>)[path[path.length - 1]!] = value;
  prov.record(path, layer);
  return out;
}

/** Parses `plugins.select.with.c=2` / `steps.a.needs[0]=b`; the value is read as YAML. */
export function parseSetArg(arg: string): Layer {
  const eq = arg.indexOf("=");
  const rawPath = eq < 0 ? "" : arg.slice(0, eq).trim();
  const syntax = (message: string) =>
    new BdcError({
      code: "BDC_SET_SYNTAX",
      message,
      origin: { kind: "cli", arg: `--set ${arg}` },
      hint: "write --set PATH=VALUE, e.g. --set plugins.select.with.c=2 or --set plugins.claude.enabled=false",
    });
  if (eq < 0 || rawPath === "") throw syntax(`expected PATH=VALUE, got "${arg}"`);
  const path: PathSegment[] = [];
  for (const part of rawPath.split(".")) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (m === null || (m[1] === "" && m[2] === "")) throw syntax(`malformed path "${rawPath}"`);
    if (m[1] !== "") path.push(m[1]!);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) path.push(Number(idx[1]));
  }
  const rawValue = arg.slice(eq + 1);
  let value: unknown;
  try {
    value = rawValue.trim() === "" ? "" : parseYamlValue(rawValue);
  } catch (cause) {
    throw syntax(`the value "${rawValue}" is not valid YAML: ${(cause as Error).message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")}`);
  }
  return { kind: "set", arg: `--set ${arg}`, path, value };
}

export function describeValue(u: unknown): string {
  if (u === null) return "null";
  if (u === undefined) return "nothing";
  if (Array.isArray(u)) return "a list";
  if (typeof u === "object") return "a mapping";
  if (typeof u === "string") return JSON.stringify(u);
  return String(u);
}
