/**
 * `bdc lora merge`: merges LoRA adapters of one base model into a PEFT adapter (re-factorised by
 * truncated SVD; `cat` is exact) or a merged checkpoint. With --json the last line of stdout is
 * {"out", "output", "method", "rank", "energy_kept", "notes"}.
 */
import * as path from "node:path";
import { BdcError, BdcErrors, numberFlag, type CliCommand, type Io, type ParsedArgs } from "@bdc/core";
import { resolveModelDir } from "@bdc/lm-local";
import { METHODS, PRESET_DEFAULTS, type MethodName } from "./presets.ts";
import { runMerge } from "./run-merge.ts";

const spec = {
  name: "lora",
  summary: "Merge LoRA adapters (linear, task arithmetic, TIES, DARE, Twin-Merging, concatenation)",
  usage: "bdc lora merge --model DIR --adapters A,B[,C...] --method METHOD --out DIR [--weights W,..] [--density D] [--lambda L] [--sign total|frequency] [--dare-ties] [--rank R] [--space delta|factors] [--checkpoint [--dtype float32|base]] [--seed S] [--json]",
  minPositionals: 1,
  maxPositionals: 1,
  details: [
    "Methods:",
    ...Object.entries(METHODS).map(([name, what]) => `  ${name.padEnd(16)} ${what}`),
    "",
    `Defaults: ties density ${PRESET_DEFAULTS.ties.density} (the BDC authors' mask rate 0.7), dare density ${PRESET_DEFAULTS.dare.density} then lambda ${PRESET_DEFAULTS.dare.lambda} (drop 0.7, scale 0.7).`,
    "Merges are computed on each projection's full update scale * B A; --space factors merges A and B separately (PEFT's non-SVD types: adds cross terms).",
    "The adapter output is re-factorised by truncated SVD to --rank (default: the largest input rank); merge_report.json records the energy kept per module.",
    "--checkpoint writes the base model with the merged update in its weights instead (exact; float32 unless --dtype base).",
  ].join("\n"),
  flags: {
    model: { type: "string", value: "DIR", description: "the base model's checkpoint folder or pulled hub id" },
    adapters: { type: "string", value: "LIST", multiple: true, description: "PEFT adapter folders, comma-separated or repeated" },
    method: { type: "string", value: "METHOD", description: Object.keys(METHODS).join(" | ") },
    out: { type: "string", value: "DIR", description: "the output folder" },
    weights: { type: "string", value: "LIST", description: "one weight per adapter (default: 1/K for linear, 1 otherwise)" },
    density: { type: "string", value: "D", description: "fraction of entries kept (ties, dare, twin's shared part)" },
    lambda: { type: "string", value: "L", description: "scaling of the merged update (task-arithmetic, ties, dare)" },
    sign: { type: "string", value: "RULE", description: "majority sign by total mass (default) or frequency (ties, dare-ties)" },
    "dare-ties": { type: "boolean", description: "dare: elect signs and average agreeing entries" },
    rank: { type: "string", value: "R", description: "rank of the output adapter" },
    space: { type: "string", value: "delta|factors", description: "merge full updates (default) or A and B separately" },
    checkpoint: { type: "boolean", description: "write a merged checkpoint (W + dW) instead of an adapter" },
    dtype: { type: "string", value: "float32|base", description: "checkpoint dtype (default float32: exact)" },
    seed: { type: "string", value: "S", description: "DARE's random masks (default 0)" },
    json: { type: "boolean", description: "end stdout with one JSON line" },
  },
} as const;

const usage = (message: string) => new BdcError({ code: "BDC_USAGE", message: `bdc lora: ${message}`, hint: `usage: ${spec.usage}` });

const num = (args: ParsedArgs, name: string, check: (n: number) => boolean, what: string) => numberFlag(args, name, check, what, usage);

async function merge(io: Io, args: ParsedArgs): Promise<number> {
  const str = (name: string) => (typeof args.flags[name] === "string" ? (args.flags[name] as string) : undefined);
  const model = str("model");
  const out = str("out");
  const method = str("method");
  if (model === undefined || out === undefined || method === undefined) throw usage("merge needs --model, --adapters, --method and --out");
  if (!(method in METHODS)) throw usage(`--method ${method}: choose ${Object.keys(METHODS).join(", ")}`);
  const adapters = ((args.flags["adapters"] as string[] | undefined) ?? []).flatMap((a) => a.split(",")).map((a) => a.trim()).filter((a) => a !== "").map((a) => path.resolve(io.cwd, a));
  if (adapters.length === 0) throw usage("--adapters: give the adapter folders to merge");
  const weights = str("weights")?.split(",").map((w) => {
    const n = Number(w);
    if (w.trim() === "" || !Number.isFinite(n)) throw usage(`--weights: "${w}" is not a number`);
    return n;
  });
  const sign = str("sign");
  if (sign !== undefined && sign !== "total" && sign !== "frequency") throw usage(`--sign ${sign}: choose total or frequency`);
  const space = str("space") ?? "delta";
  if (space !== "delta" && space !== "factors") throw usage(`--space ${space}: choose delta or factors`);
  const dtype = str("dtype") ?? "float32";
  if (dtype !== "float32" && dtype !== "base") throw usage(`--dtype ${dtype}: choose float32 or base`);
  try {
    const summary = runMerge({
      model: resolveModelDir(model, io.cwd),
      adapters,
      method: method as MethodName,
      options: { weights, density: num(args, "density", (n) => n > 0 && n <= 1, "in (0, 1]"), lambda: num(args, "lambda", Number.isFinite, "a number"), sign, ties: args.flags["dare-ties"] === true },
      rank: num(args, "rank", (n) => Number.isInteger(n) && n > 0, "a positive integer"),
      space,
      output: args.flags["checkpoint"] === true ? "checkpoint" : "adapter",
      dtype,
      out: path.resolve(io.cwd, out),
      seed: num(args, "seed", Number.isInteger, "an integer") ?? 0,
    });
    for (const note of summary.notes) io.err(`note: ${note}\n`);
    if (args.flags["json"] === true) io.out(`${JSON.stringify(summary)}\n`);
    else {
      io.err(`${summary.method}: ${adapters.length} adapters -> ${summary.output}${summary.rank === null ? "" : ` of rank ${summary.rank}, energy kept ${(summary.energy_kept * 100).toFixed(2)}%`}\n`);
      io.out(`${summary.out}\n`);
    }
    return 0;
  } catch (e) {
    // Bad adapters and options are the user's to fix: exit 2, as usage errors.
    if (e instanceof BdcError && /^BDC_(MERGE_INPUT|ADAPTER_|CONFIG_|LORA_CONFIG|MODEL_)/.test(e.code)) throw new BdcErrors([e]);
    throw e;
  }
}

const command: CliCommand = {
  spec,
  async run(io, args) {
    const sub = args.positionals[0];
    if (sub === "merge") return merge(io, args);
    throw usage(`unknown subcommand "${sub}" (merge)`);
  },
};

export default command;
