/**
 * Errors with a stable code, a location in the user's files and a hint.
 *
 * Every problem a user can cause (bad YAML, a typo in a plugin id, a config value of the wrong
 * type, a failing plugin) becomes a `BdcError`. The code is part of the public contract: docs,
 * tests and scripts match on it, so codes are only ever added, never renamed.
 */

/** Where a value came from: a position in a YAML file, or a `--set` argument. */
export type Origin =
  | { readonly kind: "file"; readonly file: string; readonly line: number; readonly col: number }
  | { readonly kind: "cli"; readonly arg: string };

export type PathSegment = string | number;
export type ConfigPath = ReadonlyArray<PathSegment>;

export const ErrorCodes = {
  BDC_USAGE: "command-line usage: unknown command or flag, missing argument",
  BDC_FILE_NOT_FOUND: "a workflow, overlay, plugin module or run directory does not exist",
  BDC_YAML_SYNTAX: "a YAML file does not parse",
  BDC_CONFIG_TYPE: "a value has the wrong type",
  BDC_CONFIG_VALUE: "a value has the right type but is out of range or not allowed",
  BDC_CONFIG_UNKNOWN_KEY: "a key that the format or the plugin does not define",
  BDC_CONFIG_MISSING_KEY: "a required key is absent",
  BDC_SET_SYNTAX: "a --set argument is not PATH=VALUE",
  BDC_UNKNOWN_PLUGIN: "`use:` names a plugin id that no installed package registers",
  BDC_PLUGIN_LOAD: "a plugin module failed to import",
  BDC_PLUGIN_INVALID: "a module's default export is not a valid plugin",
  BDC_PLUGIN_CONFLICT: "two packages register the same plugin id",
  BDC_UNKNOWN_INSTANCE: "a reference names a plugin instance that the workflow does not define",
  BDC_REF_SLOT: "a reference names an instance of the wrong slot",
  BDC_REF_DISABLED: "a reference names an instance that is switched off (enabled: false)",
  BDC_MISSING_INSTANCE: "a plugin requires an instance of a slot and the workflow has none",
  BDC_AMBIGUOUS_INSTANCE: "a plugin requires one instance of a slot and several could be meant",
  BDC_REF_CYCLE: "instances reference each other in a cycle",
  BDC_UNKNOWN_STEP: "a step names a step that does not exist",
  BDC_STEP_CYCLE: "step dependencies form a cycle",
  BDC_NO_STEPS: "the workflow has no enabled step to run",
  BDC_PREFLIGHT: "a plugin's own check before the run failed (e.g. a missing API key)",
  BDC_PLUGIN_MAKE: "a plugin failed to build its instance",
  BDC_DUPLICATE_ITEM: "a dataset or step yields two items with the same id",
  BDC_ITEM_FAILED: "a work item failed during the run",
  BDC_RESUME_MISMATCH: "--resume with a workflow that resolves differently from the run's",
  BDC_RUN_DIR: "a run directory is missing, locked by a live run, or not a run directory",
  BDC_INTERRUPTED: "the run was stopped (Ctrl-C or SIGTERM); resume it with --resume",
  BDC_INTERNAL: "a bug in bdc itself; please report it",
} as const;

export type ErrorCode = keyof typeof ErrorCodes | (string & {});

export interface BdcErrorInit {
  readonly code: ErrorCode;
  readonly message: string;
  readonly hint?: string | undefined;
  /** YAML path of the offending value, e.g. ["plugins", "select", "with", "c"]. */
  readonly path?: ConfigPath | undefined;
  readonly origin?: Origin | undefined;
  /** Id of the plugin that raised the error, when a plugin raised it. */
  readonly plugin?: string | undefined;
  readonly cause?: unknown;
}

export class BdcError extends Error {
  override readonly name = "BdcError";
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly path: ConfigPath | undefined;
  readonly origin: Origin | undefined;
  readonly plugin: string | undefined;

  constructor(init: BdcErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.hint = init.hint;
    this.path = init.path;
    this.origin = init.origin;
    this.plugin = init.plugin;
  }

  with(patch: Partial<BdcErrorInit>): BdcError {
    return new BdcError({ ...this.init(), ...patch });
  }

  init(): BdcErrorInit {
    return {
      code: this.code,
      message: this.message,
      hint: this.hint,
      path: this.path,
      origin: this.origin,
      plugin: this.plugin,
      cause: this.cause,
    };
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      ...(this.path === undefined ? {} : { path: formatPath(this.path) }),
      ...(this.origin === undefined ? {} : { at: formatOrigin(this.origin) }),
      ...(this.plugin === undefined ? {} : { plugin: this.plugin }),
    };
  }
}

/** Several errors found in one pass (validation reports all problems, not just the first). */
export class BdcErrors extends Error {
  override readonly name = "BdcErrors";
  constructor(readonly errors: ReadonlyArray<BdcError>) {
    super(errors.map((e) => `${e.message} [${e.code}]`).join("\n"));
  }
}

export const isBdcError = (u: unknown): u is BdcError => u instanceof BdcError;

/** Flattens anything thrown into a list of BdcErrors (unknown throwables become BDC_INTERNAL). */
export function toBdcErrors(u: unknown): BdcError[] {
  if (u instanceof BdcErrors) return [...u.errors];
  if (u instanceof BdcError) return [u];
  const message = u instanceof Error ? u.message : String(u);
  return [new BdcError({ code: "BDC_INTERNAL", message, cause: u })];
}

/** `plugins.select.with.c`, `steps.search.needs[1]`. */
export function formatPath(path: ConfigPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

export function formatOrigin(origin: Origin): string {
  return origin.kind === "file" ? `${origin.file}:${origin.line}:${origin.col}` : origin.arg;
}

/**
 * The one-line form users see, e.g.
 * `workflows/x.yaml:7:12 plugins.select.with.c  expected a number, got "high"  [BDC_CONFIG_TYPE]`
 * followed by indented `hint:` and `plugin:` lines when present.
 */
export function formatError(e: BdcError): string {
  const head = [
    e.origin === undefined ? undefined : formatOrigin(e.origin),
    e.path === undefined || e.path.length === 0 ? undefined : formatPath(e.path),
  ]
    .filter((s) => s !== undefined)
    .join(" ");
  let out = `${head === "" ? "" : `${head}  `}${e.message}  [${e.code}]`;
  if (e.plugin !== undefined) out += `\n  plugin: ${e.plugin}`;
  if (e.hint !== undefined) out += `\n  hint: ${e.hint.replace(/\n/g, "\n        ")}`;
  return out;
}
