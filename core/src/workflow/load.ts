/**
 * Reading a workflow: the file, the files it `extends`, overlays and `--set` values, merged in
 * that order with provenance. YAML syntax errors of every file are reported together.
 */
import * as path from "node:path";
import { BdcError, BdcErrors, toBdcErrors, type Origin } from "../errors.ts";
import { isPlainObject, mergeLayers, parseSetArg, type Layer, type Merged } from "./layers.ts";
import { displayPath, positionOf, readYamlFile, type YamlSource } from "./source.ts";

export interface LoadOptions {
  readonly file: string;
  readonly overlays?: ReadonlyArray<string>;
  readonly sets?: ReadonlyArray<string>;
  /** Directory that relative command-line paths are resolved from (default: process.cwd()). */
  readonly cwd?: string;
}

export interface Loaded extends Merged {
  readonly main: YamlSource;
  readonly layers: ReadonlyArray<Layer>;
  readonly cwd: string;
}

export function loadWorkflow(options: LoadOptions): Loaded {
  const cwd = options.cwd ?? process.cwd();
  const errors: BdcError[] = [];
  const layers: Layer[] = [];
  const addFile = (file: string, from: string, chain: ReadonlyArray<string>, origin?: Origin): YamlSource | undefined => {
    const abs = path.resolve(from, file);
    if (chain.includes(abs)) {
      errors.push(new BdcError({ code: "BDC_CONFIG_VALUE", message: `extends cycle: ${[...chain, abs].map((f) => displayPath(f, cwd)).join(" -> ")}`, origin }));
      return undefined;
    }
    let src: YamlSource;
    try {
      src = readYamlFile(abs, cwd);
    } catch (e) {
      // A file named by `extends:` is located at that line and resolved from that file.
      const located = (err: BdcError) =>
        err.origin !== undefined || origin === undefined ? err : err.with({ origin, hint: err.code === "BDC_FILE_NOT_FOUND" ? "extends paths are resolved from the directory of the file that contains them" : err.hint });
      errors.push(...toBdcErrors(e).map(located));
      return undefined;
    }
    const ext = isPlainObject(src.value) ? src.value.extends : undefined;
    const bases = Array.isArray(ext) ? ext : ext === undefined ? [] : [ext];
    bases.forEach((base, i) => {
      if (typeof base !== "string") return; // the schema check reports it
      const pos = positionOf(src, Array.isArray(ext) ? ["extends", i] : ["extends"]);
      addFile(base, path.dirname(abs), [...chain, abs], pos && { kind: "file", file: src.display, ...pos });
    });
    layers.push({ kind: "file", source: src });
    return src;
  };

  const main = addFile(options.file, cwd, []);
  for (const overlay of options.overlays ?? []) addFile(overlay, cwd, []);
  for (const set of options.sets ?? []) {
    try {
      layers.push(parseSetArg(set));
    } catch (e) {
      errors.push(...toBdcErrors(e));
    }
  }
  if (errors.length > 0 || main === undefined) throw new BdcErrors(errors);

  let merged: Merged;
  try {
    merged = mergeLayers(layers);
  } catch (e) {
    throw new BdcErrors(toBdcErrors(e));
  }
  const { extends: _resolved, ...value } = merged.value;
  return { value, provenance: merged.provenance, main, layers, cwd };
}
