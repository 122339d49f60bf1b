/**
 * `bdc models pull|list|make-tiny`: the local model checkpoints of @bdc/lm-local.
 *
 * - `bdc models pull <org/name> [--revision R] [--out DIR] [--onnx] [--onnx-file F] [-q]`:
 *   downloads a safetensors checkpoint (or, with --onnx, a sentence-embedding model's ONNX
 *   weights) from the Hugging Face hub (HF_ENDPOINT, HF_TOKEN) into `<modelsDir>/org/name` (see
 *   ./hub/pull-model.ts); an interrupted pull resumes when run again;
 * - `bdc models list`: the models under `<modelsDir>` (repo, revision, commit, size on disk);
 * - `bdc models make-tiny --out DIR [--arch ...] [--layers N] ...`: a random tiny checkpoint in
 *   the Hugging Face layout, for tests (./checkpoint/make-tiny.ts). Flags are checked before
 *   anything is written.
 *
 * `<modelsDir>` is env BDC_MODELS_DIR, else `<project root>/.cache/bdc/models`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError, choicesHint, type CliCommand, type Io, type ParsedArgs } from "@bdc/core";
import { formatBytes } from "@bdc/hf-hub";
import { modelsDir, PULL_RECORD, pullModel, readPullRecord } from "./hub/pull-model.ts";

const SUBCOMMANDS = ["list", "make-tiny", "pull"] as const;
type Sub = (typeof SUBCOMMANDS)[number];

const ARCHS = ["llama", "qwen2", "mistral"] as const;
const DTYPES = ["float32", "float16", "bfloat16"] as const;

/** Which flags each subcommand takes. */
const FLAGS_OF: Readonly<Record<Sub, ReadonlyArray<string>>> = {
  pull: ["revision", "out", "onnx", "onnx-file", "quiet"],
  list: [],
  "make-tiny": ["out", "arch", "layers", "hidden", "heads", "kv-heads", "intermediate", "vocab", "dtype", "shards", "seed", "quiet"],
};

const spec = {
  name: "models",
  summary: "Local model checkpoints: pull from the Hugging Face hub, list them, write a tiny random one for tests",
  usage: [
    "bdc models pull <org/name> [--revision R] [--out DIR] [--onnx] [--onnx-file F] [-q]",
    "       bdc models list",
    "       bdc models make-tiny --out DIR [--arch llama|qwen2|mistral] [--layers N] [--hidden H] [--heads A] [--kv-heads K] [--intermediate I] [--vocab V] [--dtype float32|float16|bfloat16] [--shards N] [--seed S]",
  ].join("\n"),
  minPositionals: 1,
  maxPositionals: 2,
  details: [
    "pull: config, tokenizer and safetensors weights of a Hugging Face model repository (never *.bin, *.pt, *.gguf or original/; *.onnx only with --onnx),",
    "  checked against the hub's checksums; an interrupted pull resumes when run again. Default folder: <models dir>/org/name.",
    "  With --onnx: a sentence-embedding model for encoder/onnx instead: onnx/model.onnx (or --onnx-file) with its external data,",
    "  tokenizer, modules.json, sentence_bert_config.json and 1_Pooling/config.json; no safetensors.",
    "list: the pulled models, with revision, commit and size on disk.",
    "make-tiny: a checkpoint with random weights in the Hugging Face layout (config.json, tokenizer, safetensors), for tests.",
    "Models dir: env BDC_MODELS_DIR, else <project root>/.cache/bdc/models.",
    "Environment: HF_ENDPOINT (default https://huggingface.co, or a mirror), HF_TOKEN (for gated or private models).",
  ].join("\n"),
  flags: {
    revision: { type: "string", value: "R", description: "pull: branch, tag or commit of the repository (default: main)" },
    out: { type: "string", value: "DIR", description: "pull: where to write (default: <models dir>/org/name); make-tiny: where to write (required)" },
    onnx: { type: "boolean", description: "pull: ONNX weights of a sentence-embedding model (onnx/model.onnx, else model.onnx) and its sentence-transformers files, for encoder/onnx" },
    "onnx-file": { type: "string", value: "F", description: "pull: the ONNX file to fetch (e.g. onnx/model_quantized.onnx); implies --onnx" },
    quiet: { type: "boolean", short: "q", description: "no progress output" },
    arch: { type: "string", value: "A", description: "make-tiny: llama, qwen2 or mistral" },
    layers: { type: "string", value: "N", description: "make-tiny: decoder layers" },
    hidden: { type: "string", value: "H", description: "make-tiny: hidden size (a multiple of --heads)" },
    heads: { type: "string", value: "A", description: "make-tiny: attention heads (a multiple of --kv-heads)" },
    "kv-heads": { type: "string", value: "K", description: "make-tiny: key/value heads" },
    intermediate: { type: "string", value: "I", description: "make-tiny: MLP size" },
    vocab: { type: "string", value: "V", description: "make-tiny: vocabulary size" },
    dtype: { type: "string", value: "T", description: "make-tiny: float32, float16 or bfloat16" },
    shards: { type: "string", value: "N", description: "make-tiny: number of safetensors files (more than 1 writes model.safetensors.index.json)" },
    seed: { type: "string", value: "S", description: "make-tiny: random seed (the same seed writes the same weights)" },
  },
} as const;

const usage = (message: string, hint?: string) => new BdcError({ code: "BDC_USAGE", message: `bdc models ${message}`, hint: hint ?? `usage: ${spec.usage}` });

async function run(io: Io, args: ParsedArgs): Promise<number> {
  const [sub, arg] = args.positionals as [string, string | undefined];
  if (!(SUBCOMMANDS as ReadonlyArray<string>).includes(sub)) throw usage(`: unknown subcommand "${sub}"`, choicesHint(sub, SUBCOMMANDS, "subcommands"));
  const s = sub as Sub;
  const given = Object.entries(args.flags).filter(([k, v]) => k !== "help" && v !== undefined && v !== false).map(([k]) => k);
  const foreign = given.filter((k) => !FLAGS_OF[s].includes(k));
  if (foreign.length > 0) {
    throw usage(`${s}: --${foreign[0]} does not apply to ${s}`, FLAGS_OF[s].length > 0 ? `${s} takes ${FLAGS_OF[s].map((f) => `--${f}`).join(", ")}` : `${s} takes no flags`);
  }
  if (s === "pull") {
    if (arg === undefined) throw usage("pull: missing the repository id", "usage: bdc models pull <org/name> [--revision R] [--out DIR] [-q], e.g. bdc models pull Qwen/Qwen2.5-0.5B-Instruct");
    const out = typeof args.flags.out === "string" ? path.resolve(io.cwd, args.flags.out) : undefined;
    const onnxFile = args.flags["onnx-file"];
    const onnx = typeof onnxFile === "string" && onnxFile !== "" ? onnxFile : args.flags.onnx === true;
    const pulled = await pullModel({ repo: arg, revision: typeof args.flags.revision === "string" ? args.flags.revision : "main", ...(out === undefined ? {} : { out }), onnx, quiet: args.flags.quiet === true, io });
    io.out(`${pulled.dir}\n`);
    return 0;
  }
  if (arg !== undefined) throw usage(`${s}: unexpected argument "${arg}"`);
  if (s === "list") return list(io);
  return makeTiny(io, args.flags);
}

/** The checked options of make-tiny (what `writeTinyCheckpoint` takes). */
export interface TinyOptions {
  arch?: "llama" | "qwen2" | "mistral";
  layers?: number;
  hidden?: number;
  heads?: number;
  kvHeads?: number;
  intermediate?: number;
  vocab?: number;
  dtype?: "float32" | "float16" | "bfloat16";
  shards?: number;
  seed?: number;
}

/** Checks make-tiny's flags; every problem is a BDC_USAGE error that says what is allowed. */
export function parseTinyFlags(flags: ParsedArgs["flags"]): TinyOptions {
  const str = (k: string) => (typeof flags[k] === "string" ? (flags[k] as string) : undefined);
  const int = (k: string, min: number): number | undefined => {
    const v = str(k);
    if (v === undefined) return undefined;
    const n = /^\d+$/.test(v.trim()) ? Number(v.trim()) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min) throw usage(`make-tiny: --${k} ${JSON.stringify(v)} is not ${min === 0 ? "a non-negative" : "a positive"} integer`);
    return n;
  };
  const o: TinyOptions = {};
  const arch = str("arch");
  if (arch !== undefined) {
    if (!(ARCHS as ReadonlyArray<string>).includes(arch)) throw usage(`make-tiny: unknown --arch "${arch}"`, choicesHint(arch, ARCHS, "architectures"));
    o.arch = arch as TinyOptions["arch"];
  }
  const dtype = str("dtype");
  if (dtype !== undefined) {
    if (!(DTYPES as ReadonlyArray<string>).includes(dtype)) throw usage(`make-tiny: unknown --dtype "${dtype}"`, choicesHint(dtype, DTYPES, "dtypes"));
    o.dtype = dtype as TinyOptions["dtype"];
  }
  const set = <K extends keyof TinyOptions>(key: K, v: TinyOptions[K] | undefined) => {
    if (v !== undefined) o[key] = v;
  };
  set("layers", int("layers", 1));
  set("hidden", int("hidden", 1));
  set("heads", int("heads", 1));
  set("kvHeads", int("kv-heads", 1));
  set("intermediate", int("intermediate", 1));
  set("vocab", int("vocab", 1));
  set("shards", int("shards", 1));
  set("seed", int("seed", 0));
  // The shape checks, with make-tiny's defaults for the flags not given (hidden 64, heads 4,
  // kv-heads min(2, heads)); writeTinyCheckpoint checks them again, and the vocab and shard limits.
  const flag = (name: string, v: number | undefined, dflt: number) => (v === undefined ? `${name} ${dflt} (the default)` : `${name} ${v}`);
  const hidden = o.hidden ?? 64;
  const heads = o.heads ?? 4;
  const kvHeads = o.kvHeads ?? Math.min(2, heads);
  if (hidden % heads !== 0) {
    throw usage(`make-tiny: ${flag("--hidden", o.hidden, 64)} is not a multiple of ${flag("--heads", o.heads, 4)} (each head gets hidden / heads dimensions)`, `e.g. --hidden ${heads * Math.max(2, 2 * Math.round(hidden / heads / 2))} --heads ${heads}`);
  }
  if ((hidden / heads) % 2 !== 0) {
    throw usage(`make-tiny: ${flag("--hidden", o.hidden, 64)} / ${flag("--heads", o.heads, 4)} = ${hidden / heads} is odd; rotary embeddings need an even head dimension`, `e.g. --hidden ${heads * Math.max(2, 2 * Math.round(hidden / heads / 2))} --heads ${heads}`);
  }
  if (heads % kvHeads !== 0) {
    throw usage(`make-tiny: ${flag("--heads", o.heads, 4)} is not a multiple of --kv-heads ${kvHeads} (each key/value head serves heads / kv-heads query heads)`, `--kv-heads must divide ${heads}: ${divisors(heads).join(", ")}`);
  }
  return o;
}

const divisors = (n: number) => Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);

async function makeTiny(io: Io, flags: ParsedArgs["flags"]): Promise<number> {
  if (typeof flags.out !== "string" || flags.out === "") throw usage("make-tiny: --out DIR is required (the folder to write the checkpoint to)", "e.g. bdc models make-tiny --out models/tiny-llama");
  const options = parseTinyFlags(flags);
  const dir = path.resolve(io.cwd, flags.out);
  const pulled = readPullRecord(dir);
  if (pulled !== undefined) throw usage(`make-tiny: ${dir} holds a model pulled from the hub (${pulled.repo}); it is not overwritten`, "choose another --out folder");
  // Loaded here, not at the top: `bdc models pull` and `list` do not need it.
  const { writeTinyCheckpoint } = await import("./checkpoint/make-tiny.ts");
  const written = writeTinyCheckpoint(dir, options);
  if (flags.quiet !== true) {
    const files = written.files.map((f) => path.relative(dir, f)).sort();
    io.err(`wrote a tiny ${options.arch ?? "llama"} checkpoint with random weights to ${dir}: ${files.join(", ")} (${formatBytes(diskSize(dir))})\n`);
  }
  io.out(`${dir}\n`);
  return 0;
}

function list(io: Io): number {
  const root = modelsDir(io.env, io.cwd);
  const rows: string[][] = [];
  const orgs = fs.existsSync(root) ? fs.readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()) : [];
  for (const org of orgs.sort((a, b) => a.name.localeCompare(b.name))) {
    const names = fs.readdirSync(path.join(root, org.name), { withFileTypes: true }).filter((d) => d.isDirectory());
    for (const name of names.sort((a, b) => a.name.localeCompare(b.name))) {
      const dir = path.join(root, org.name, name.name);
      const record = readPullRecord(dir);
      const partial = fs.readdirSync(dir).some((f) => f.endsWith(".part"));
      const state = record !== undefined ? "" : partial ? "incomplete: run the pull again" : fs.existsSync(path.join(dir, "config.json")) ? `no ${PULL_RECORD}: placed by hand` : "incomplete: run the pull again";
      rows.push([`${org.name}/${name.name}`, record?.revision ?? "-", record?.commit?.slice(0, 12) ?? "-", formatBytes(diskSize(dir)), state]);
    }
  }
  if (rows.length === 0) {
    io.out(`no models under ${root}\n`);
    io.err("pull one with `pnpm bdc models pull org/name` (e.g. Qwen/Qwen2.5-0.5B-Instruct)\n");
    return 0;
  }
  const table = [["REPO", "REVISION", "COMMIT", "SIZE", ""], ...rows];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  io.out(`models in ${root}:\n`);
  for (const r of table) io.out(`${r.map((cell, c) => (c === 3 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join("  ").trimEnd()}\n`);
  return 0;
}

/** Bytes of the files under `dir` (symbolic links not followed). */
function diskSize(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) n += diskSize(p);
    else if (e.isFile()) n += fs.statSync(p).size;
  }
  return n;
}

const command: CliCommand = { spec, run };
export default command;
