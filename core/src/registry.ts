/**
 * Finding plugins. Built-in plugins are found exactly like third-party ones: a package lists
 * its plugins in the `bdc.plugins` field of its package.json (`{"select/pucb": "./src/pucb.ts"}`),
 * and the project's root package.json either depends on that package or registers modules
 * itself under its own `bdc.plugins`. A workflow may also `use:` a file path or a package name.
 *
 * Discovery reads package.json files only; a plugin module is imported when first used, so
 * listing ids is cheap and one broken plugin does not break unrelated workflows.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Schema } from "effect";
import { BdcError, type Origin } from "./errors.ts";
import type { AnyPlugin } from "./plugin.ts";
import { choicesHint } from "./util/suggest.ts";

export interface PluginEntry {
  readonly id: string;
  readonly slot: string;
  /** Absolute path of the module whose default export is the plugin. */
  readonly module: string;
  /** The package that registered it (or "(project)" for the root's own registrations). */
  readonly pkg: string;
}

interface PackageJson {
  name?: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  bdc?: { plugins?: Record<string, string>; commands?: Record<string, string> };
  exports?: unknown;
  main?: string;
}

const ID_PATTERN = /^[a-z][a-z0-9-]*\/[a-z0-9][a-z0-9._-]*$/;

/** A CLI command contributed by a package (`bdc.commands: {"ask": "./src/ask-command.ts"}`). */
export interface CommandEntry {
  readonly name: string;
  readonly module: string;
  readonly pkg: string;
}

export class PluginRegistry {
  private readonly loaded = new Map<string, Promise<AnyPlugin>>();

  private constructor(
    readonly root: string,
    private readonly byId: ReadonlyMap<string, PluginEntry>,
    /** Ids registered by more than one package: an error when used. */
    readonly conflicts: ReadonlyMap<string, ReadonlyArray<PluginEntry>>,
    readonly commands: ReadonlyArray<CommandEntry> = [],
  ) {}

  /** Reads the project's package.json and its dependencies' `bdc` fields. */
  static discover(startDir: string = process.cwd()): PluginRegistry {
    const root = findProjectRoot(startDir);
    const found: PluginEntry[] = [];
    const commands: CommandEntry[] = [];
    const register = (dir: string, pkg: PackageJson, pkgName: string) => {
      found.push(...manifestEntries(dir, pkg, pkgName));
      for (const [name, rel] of Object.entries(pkg.bdc?.commands ?? {})) commands.push({ name, module: path.resolve(dir, rel), pkg: pkgName });
    };
    const rootPkg = readPackageJson(path.join(root, "package.json"));
    if (rootPkg !== undefined) {
      register(root, rootPkg, "(project)");
      const deps = { ...rootPkg.dependencies, ...rootPkg.devDependencies };
      for (const name of Object.keys(deps).sort()) {
        const dir = packageDir(root, name);
        const pkg = dir === undefined ? undefined : readPackageJson(path.join(dir, "package.json"));
        if (dir !== undefined && pkg?.bdc !== undefined) register(dir, pkg, name);
      }
    }
    const byId = new Map<string, PluginEntry>();
    const conflicts = new Map<string, PluginEntry[]>();
    for (const entry of found) {
      const prev = byId.get(entry.id);
      if (prev === undefined) byId.set(entry.id, entry);
      else if (prev.module !== entry.module) conflicts.set(entry.id, [...(conflicts.get(entry.id) ?? [prev]), entry]);
    }
    return new PluginRegistry(root, byId, conflicts, commands);
  }

  /** A registry over explicit entries (tests, embedding). */
  static of(root: string, entries: ReadonlyArray<PluginEntry>): PluginRegistry {
    return new PluginRegistry(root, new Map(entries.map((e) => [e.id, e])), new Map());
  }

  ids(slot?: string): string[] {
    return [...this.byId.values()].filter((e) => slot === undefined || e.slot === slot).map((e) => e.id).sort();
  }

  entries(): PluginEntry[] {
    return this.ids().map((id) => this.byId.get(id)!);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /**
   * Resolves a `use:` value: a registered id, a path (`./x.ts`, relative to `baseDir`), or a
   * package name. `origin` locates the `use:` for error messages.
   */
  async resolve(use: string, baseDir: string, origin?: Origin): Promise<{ plugin: AnyPlugin; source: string }> {
    if (use.startsWith(".") || path.isAbsolute(use)) {
      const file = path.resolve(baseDir, use);
      if (!fs.existsSync(file)) {
        throw new BdcError({
          code: "BDC_FILE_NOT_FOUND",
          message: `plugin module not found: ${use} (resolved to ${file})`,
          hint: "a relative `use:` path is resolved from the directory of the YAML file that contains it",
          origin,
        });
      }
      return { plugin: await this.importPlugin(file, undefined, origin), source: file };
    }
    if (ID_PATTERN.test(use) && !use.startsWith("@")) {
      const conflict = this.conflicts.get(use);
      if (conflict !== undefined) {
        throw new BdcError({
          code: "BDC_PLUGIN_CONFLICT",
          message: `plugin id "${use}" is registered by several packages: ${conflict.map((e) => e.pkg).join(", ")}`,
          hint: "remove one of the packages from package.json, or `use:` the module by path",
          origin,
        });
      }
      const entry = this.byId.get(use);
      if (entry === undefined) {
        const slot = use.slice(0, use.indexOf("/"));
        const sameSlot = this.ids(slot);
        throw new BdcError({
          code: "BDC_UNKNOWN_PLUGIN",
          message: `unknown plugin "${use}"`,
          hint: `${choicesHint(use, sameSlot.length > 0 ? sameSlot : this.ids(), sameSlot.length > 0 ? `registered ${slot} plugins` : "registered plugins")}\n(\`bdc plugins\` lists them all; a plugin in a file is used as \`use: ./path/to/plugin.ts\`)`,
          origin,
        });
      }
      return { plugin: await this.importPlugin(entry.module, entry.id, origin), source: entry.pkg };
    }
    return this.resolvePackage(use, origin);
  }

  private async resolvePackage(name: string, origin?: Origin): Promise<{ plugin: AnyPlugin; source: string }> {
    const dir = packageDir(this.root, name);
    const pkg = dir === undefined ? undefined : readPackageJson(path.join(dir, "package.json"));
    if (dir === undefined || pkg === undefined) {
      throw new BdcError({
        code: "BDC_UNKNOWN_PLUGIN",
        message: `"${name}" is neither a registered plugin id nor an installed package`,
        hint: `plugin ids look like <slot>/<name> (${choicesHint(name, this.ids(), "registered")}); a package must be installed in ${this.root}`,
        origin,
      });
    }
    const manifest = Object.entries(pkg.bdc?.plugins ?? {});
    if (manifest.length > 1) {
      throw new BdcError({
        code: "BDC_UNKNOWN_PLUGIN",
        message: `package "${name}" provides several plugins; name one by id`,
        hint: `its plugins: ${manifest.map(([id]) => id).join(", ")} (add the package to package.json dependencies to register them)`,
        origin,
      });
    }
    const module = manifest.length === 1 ? path.resolve(dir, manifest[0]![1]) : path.resolve(dir, mainOf(pkg));
    return { plugin: await this.importPlugin(module, manifest[0]?.[0], origin), source: name };
  }

  private importPlugin(module: string, expectedId: string | undefined, origin?: Origin): Promise<AnyPlugin> {
    let pending = this.loaded.get(module);
    if (pending === undefined) {
      pending = importDefault(module);
      this.loaded.set(module, pending);
    }
    return pending.then(
      (plugin) => {
        const problems = pluginShapeProblems(plugin);
        if (problems.length > 0) {
          throw new BdcError({
            code: "BDC_PLUGIN_INVALID",
            message: `${module} does not default-export a valid plugin: ${problems.join("; ")}`,
            hint: "a plugin is a plain object { id, version, description, config?, requires?, make } exported as default",
            origin,
          });
        }
        if (expectedId !== undefined && plugin.id !== expectedId) {
          throw new BdcError({
            code: "BDC_PLUGIN_INVALID",
            message: `${module} is registered as "${expectedId}" but its id is "${plugin.id}"`,
            hint: "make the bdc.plugins key in package.json equal to the plugin's id",
            origin,
          });
        }
        return plugin;
      },
      (cause) => {
        const first = cause instanceof Error ? cause.message.split("\n")[0]! : String(cause);
        const missing = /Cannot find (module|package) '([^']+)'/.exec(first)?.[2];
        const outside = path.relative(this.root, module).startsWith("..");
        throw new BdcError({
          code: "BDC_PLUGIN_LOAD",
          message: `cannot import plugin module ${module}: ${first}`,
          hint:
            missing !== undefined && outside
              ? `the file is outside the project (${this.root}), so its imports ("${missing}") are looked up from its own folder, where they are not installed: ` +
                `move it into the project (e.g. next to your workflow under ${this.root}), or make its folder a package that depends on @bdc/core and effect (pnpm add), or add the folder to pnpm-workspace.yaml`
              : "run `pnpm install`; if the module is yours, run it with tsx to see the full error",
          origin,
          cause,
        });
      },
    );
  }

  /** Imports every registered plugin (for `bdc plugins`, `bdc schema`); failures are returned, not thrown. */
  async loadAll(): Promise<{ plugins: Array<{ entry: PluginEntry; plugin: AnyPlugin }>; errors: BdcError[] }> {
    const plugins: Array<{ entry: PluginEntry; plugin: AnyPlugin }> = [];
    const errors: BdcError[] = [];
    for (const entry of this.entries()) {
      try {
        plugins.push({ entry, plugin: (await this.resolve(entry.id, this.root)).plugin });
      } catch (e) {
        errors.push(e instanceof BdcError ? e : new BdcError({ code: "BDC_PLUGIN_LOAD", message: String(e) }));
      }
    }
    return { plugins, errors };
  }
}

async function importDefault(module: string): Promise<AnyPlugin> {
  const mod = (await import(pathToFileURL(module).href)) as { default?: AnyPlugin };
  return mod.default as AnyPlugin;
}

/** Why `u` is not a plugin (empty when it is one). */
export function pluginShapeProblems(u: unknown): string[] {
  if (typeof u !== "object" || u === null) return [`expected an object, got ${u === null ? "null" : typeof u}`];
  const p = u as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof p.id !== "string" || !ID_PATTERN.test(p.id)) problems.push(`id must look like "<slot>/<name>" in lower case, got ${JSON.stringify(p.id)}`);
  if (typeof p.version !== "string" || !/^\d+\.\d+\.\d+/.test(p.version)) problems.push(`version must be semver (e.g. "1.0.0"), got ${JSON.stringify(p.version)}`);
  if (typeof p.description !== "string" || p.description.trim() === "") problems.push("description must be a non-empty string");
  if (typeof p.make !== "function") problems.push("make must be a function (config, deps, kernel) => implementation");
  if (p.preflight !== undefined && typeof p.preflight !== "function") problems.push("preflight must be a function");
  if (p.config !== undefined && !(Schema.isSchema(p.config) && typeof (p.config as { fields?: unknown }).fields === "object")) {
    problems.push("config must be an Effect Schema.Struct");
  }
  if (p.requires !== undefined) {
    if (typeof p.requires !== "object" || p.requires === null) problems.push("requires must be an object");
    else {
      const fields = (p.config as { fields?: Record<string, unknown> } | undefined)?.fields ?? {};
      for (const [key, spec] of Object.entries(p.requires)) {
        if (typeof (spec as { slot?: unknown })?.slot !== "string") problems.push(`requires.${key}.slot must be a slot name`);
        if (key in fields) problems.push(`requires.${key} collides with the config key of the same name`);
      }
    }
  }
  return problems;
}

function manifestEntries(dir: string, pkg: PackageJson, pkgName: string): PluginEntry[] {
  return Object.entries(pkg.bdc?.plugins ?? {}).map(([id, rel]) => ({
    id,
    slot: id.slice(0, id.indexOf("/")),
    module: path.resolve(dir, rel),
    pkg: pkgName,
  }));
}

function readPackageJson(file: string): PackageJson | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as PackageJson;
  } catch {
    return undefined;
  }
}

/** Locates an installed package by walking up node_modules folders, like Node does. */
function packageDir(from: string, name: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "node_modules", name);
    if (fs.existsSync(path.join(candidate, "package.json"))) return fs.realpathSync(candidate);
    if (path.dirname(dir) === dir) return undefined;
  }
}

function mainOf(pkg: PackageJson): string {
  const exp = pkg.exports;
  if (typeof exp === "string") return exp;
  if (typeof exp === "object" && exp !== null) {
    const dot = (exp as Record<string, unknown>)["."] ?? exp;
    if (typeof dot === "string") return dot;
    if (typeof dot === "object" && dot !== null) {
      const d = dot as Record<string, unknown>;
      const target = d.import ?? d.default ?? d.node;
      if (typeof target === "string") return target;
    }
  }
  return pkg.main ?? "index.js";
}

/**
 * The project whose package.json declares the plugins: the nearest ancestor that has a `bdc`
 * field or depends on @bdc/core; otherwise the workspace this kernel is part of.
 */
export function findProjectRoot(startDir: string): string {
  for (let dir = path.resolve(startDir); ; dir = path.dirname(dir)) {
    const pkg = readPackageJson(path.join(dir, "package.json"));
    if (pkg !== undefined && (pkg.bdc !== undefined || pkg.dependencies?.["@bdc/core"] !== undefined || pkg.devDependencies?.["@bdc/core"] !== undefined)) {
      if (pkg.name !== "@bdc/core") return dir;
    }
    if (path.dirname(dir) === dir) break;
  }
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
}
