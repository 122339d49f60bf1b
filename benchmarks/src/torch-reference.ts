/**
 * The PyTorch reference implementation of the Llama-family decoders (Llama 2/3, Qwen2/2.5,
 * Mistral), ../python/llama_reference.py, called from TypeScript: an independent forward pass
 * over the same Hugging Face checkpoint folders, used to check our log-probabilities (to 1e-3)
 * and as the PyTorch speed reference of the benchmarks.
 *
 *   const py = findTorchPython();
 *   if ("missing" in py) skip(py.missing);
 *   else torchScore(py.python, dir, [1, 2, 3]).logprobs;   // log p(t[i+1] | t[..i])
 *
 * The script needs torch only (no transformers, no safetensors package): Debian's python3-torch
 * for /usr/bin/python3. Every call runs it with OMP_WAIT_POLICY=PASSIVE (spinning OpenMP workers
 * otherwise steal the cores between the small decode ops).
 */
import type { MicroBatch } from "@bdc/lm-local";
import { spawnSync } from "node:child_process";
import * as path from "node:path";

export const TORCH_REFERENCE_SCRIPT = path.resolve(import.meta.dirname, "../python/llama_reference.py");
/** Tried in this order: Debian's interpreter (where apt puts torch) before whatever `python3` is on PATH. */
export const TORCH_PYTHON_CANDIDATES: ReadonlyArray<string> = ["/usr/bin/python3", "python3"];
export const TORCH_INSTALL_HINT = "apt-get install python3-torch";

const DEFAULT_TIMEOUT_MS = 30 * 60_000;
const PROBE_TIMEOUT_MS = 120_000;
const MAX_BUFFER = 256 * 1024 * 1024;

export type TorchPythonFound = { readonly python: string; readonly version: string };
export type TorchPythonMissing = { readonly missing: string };

/** The environment of every run of the script. */
export function torchEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  return { ...process.env, OMP_WAIT_POLICY: "PASSIVE", ...extra };
}

const tail = (text: string, chars = 4000): string => {
  const t = text.trim();
  return t.length > chars ? `...${t.slice(-chars)}` : t;
};
const lastLine = (text: string): string => text.trim().split("\n").pop()?.trim() ?? "";

/** The first candidate interpreter that imports torch, with torch's version; or why none does. */
export function findTorchPython(candidates: ReadonlyArray<string> = TORCH_PYTHON_CANDIDATES): TorchPythonFound | TorchPythonMissing {
  return findPython("torch", TORCH_INSTALL_HINT, candidates);
}

/**
 * The first candidate interpreter that imports `module` (torch, numpy, sklearn: Debian puts them
 * under /usr/bin/python3), with the module's version; or why none does, with the install line.
 */
export function findPython(module: string, installHint: string, candidates: ReadonlyArray<string> = TORCH_PYTHON_CANDIDATES): TorchPythonFound | TorchPythonMissing {
  const reasons: string[] = [];
  for (const python of candidates) {
    const r = spawnSync(python, ["-c", `import ${module}; print(${module}.__version__)`], {
      encoding: "utf8",
      env: torchEnv(),
      timeout: PROBE_TIMEOUT_MS,
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (r.error !== undefined) {
      reasons.push(`${python}: ${r.error.message}`);
      continue;
    }
    const version = lastLine(r.stdout ?? "");
    if (r.status === 0 && version !== "") return { python, version };
    reasons.push(`${python}: ${lastLine(r.stderr ?? "") || `exit ${r.status ?? r.signal}`}`);
  }
  return { missing: `no Python interpreter with ${module} (${reasons.join("; ")}); install it with: ${installHint}` };
}

export interface TorchRunOptions {
  /** torch threads (the script's default: the CPUs the process may use). */
  readonly threads?: number;
  /** Multi-token matrix products: oneDNN when available ("auto"), or torch's BLAS. */
  readonly backend?: "auto" | "onednn" | "blas";
  readonly timeoutMs?: number;
}

interface RawRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runScript(python: string, mode: string, args: ReadonlyArray<string>, opts: TorchRunOptions, input?: string): RawRun {
  const argv = [TORCH_REFERENCE_SCRIPT, mode, ...args];
  if (opts.threads !== undefined) argv.push("--threads", String(positiveInt("threads", opts.threads)));
  if (opts.backend !== undefined) argv.push("--backend", opts.backend);
  const r = spawnSync(python, argv, {
    encoding: "utf8",
    env: torchEnv(),
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxBuffer: MAX_BUFFER,
    input: input ?? "",
  });
  const command = `${python} ${argv.map((a) => (/^[\w./,:=-]+$/.test(a) ? a : JSON.stringify(a))).join(" ")}`;
  if (r.error !== undefined) {
    throw new Error(`torch reference: ${command} failed: ${r.error.message}${r.stderr ? `\nstderr:\n${tail(r.stderr)}` : ""}`);
  }
  if (r.signal !== null) {
    throw new Error(`torch reference: ${command} killed by ${r.signal}${r.stderr ? `\nstderr:\n${tail(r.stderr)}` : ""}`);
  }
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

function failure(python: string, mode: string, run: RawRun, why: string): Error {
  return new Error(`torch reference ${mode} (${python} ${TORCH_REFERENCE_SCRIPT}) ${why}${run.stderr.trim() ? `\nstderr:\n${tail(run.stderr)}` : ""}`);
}

/** The script's last stdout line as JSON, or an error carrying its stderr. */
function resultJson(python: string, mode: string, run: RawRun, okStatuses: ReadonlyArray<number> = [0]): Record<string, unknown> {
  if (run.status === null || !okStatuses.includes(run.status)) throw failure(python, mode, run, `exited with status ${run.status}`);
  const line = lastLine(run.stdout);
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw failure(python, mode, run, `printed no JSON object (stdout: ${JSON.stringify(tail(run.stdout, 500))})`);
}

function positiveInt(name: string, n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new Error(`torch reference: ${name} must be a positive integer, got ${n}`);
  return n;
}

const num = (v: unknown): number => (typeof v === "number" ? v : Number.NaN);

export interface TorchScoreOptions extends TorchRunOptions {
  /** "fast" (default: KV-cache path, oneDNN) or "reference" (literal transcription of transformers' eager code). */
  readonly impl?: "fast" | "reference";
  /** Prefill chunk length of the fast path (default 512). */
  readonly chunk?: number;
}

export interface TorchScore {
  readonly tokens: number[];
  /** logprobs[i] = log p(tokens[i+1] | tokens[0..i]); length tokens.length - 1. */
  readonly logprobs: number[];
}

/** Log-probabilities of each next token of `tokens` under the checkpoint in `modelDir`. */
export function torchScore(python: string, modelDir: string, tokens: ReadonlyArray<number>, opts: TorchScoreOptions = {}): TorchScore {
  if (tokens.length === 0) throw new Error("torchScore: need at least one token");
  for (const t of tokens) if (!Number.isInteger(t) || t < 0) throw new Error(`torchScore: token ids must be non-negative integers, got ${t}`);
  const args = ["--model", modelDir, "--tokens", "-"];
  if (opts.impl !== undefined) args.push("--impl", opts.impl);
  if (opts.chunk !== undefined) args.push("--chunk", String(positiveInt("chunk", opts.chunk)));
  const run = runScript(python, "score", args, opts, tokens.join(","));
  const json = resultJson(python, "score", run);
  const outTokens = json["tokens"];
  const logprobs = json["logprobs"];
  if (!Array.isArray(outTokens) || !Array.isArray(logprobs) || logprobs.length !== tokens.length - 1) {
    throw failure(python, "score", run, `returned a malformed result: ${JSON.stringify(json).slice(0, 300)}`);
  }
  return { tokens: outTokens.map(num), logprobs: logprobs.map(num) };
}

export interface TorchBenchOptions extends TorchRunOptions {
  /** Prompt length of the prefill (random token ids, seeded; default 512). */
  readonly promptTokens?: number;
  /** Greedy decode steps after the prefill (default 64). */
  readonly decodeTokens?: number;
  /** Timed rounds; the results are medians (default 3). */
  readonly repeats?: number;
  /** Untimed rounds first (default 1). */
  readonly warmup?: number;
  readonly seed?: number;
  /** lm_head over the last prompt position (default, what generation needs) or over all of them. */
  readonly prefillLogits?: "last" | "all";
}

/** The script's JSON line, field names as it prints them. */
export interface TorchBenchResult {
  /** Median over the timed rounds. */
  readonly prefill_tokens_per_second: number;
  /** Median over the timed rounds; NaN when decodeTokens is 0. */
  readonly decode_tokens_per_second: number;
  /** Peak resident set of the Python process (getrusage ru_maxrss), MiB; includes torch itself (~230 MiB). */
  readonly peak_rss_mb: number;
  readonly threads: number;
  /** torch.__version__ */
  readonly torch: string;
  readonly prefill_samples: number[];
  readonly decode_samples: number[];
  readonly parameters: number;
  /** "onednn" or "blas": how multi-token matrix products ran. */
  readonly backend: string;
  /** The whole JSON line (also: rss_mb, load_seconds, prefill_logits, generated_head, ...). */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Prefill and greedy-decode throughput of the PyTorch reference on the checkpoint in `modelDir`. */
export function torchBench(python: string, modelDir: string, opts: TorchBenchOptions = {}): TorchBenchResult {
  const args = ["--model", modelDir];
  if (opts.promptTokens !== undefined) args.push("--prompt-tokens", String(positiveInt("promptTokens", opts.promptTokens)));
  if (opts.decodeTokens !== undefined) {
    if (!Number.isInteger(opts.decodeTokens) || opts.decodeTokens < 0) throw new Error(`torchBench: decodeTokens must be >= 0, got ${opts.decodeTokens}`);
    args.push("--decode-tokens", String(opts.decodeTokens));
  }
  if (opts.repeats !== undefined) args.push("--repeats", String(positiveInt("repeats", opts.repeats)));
  if (opts.warmup !== undefined) {
    if (!Number.isInteger(opts.warmup) || opts.warmup < 0) throw new Error(`torchBench: warmup must be >= 0, got ${opts.warmup}`);
    args.push("--warmup", String(opts.warmup));
  }
  if (opts.seed !== undefined) args.push("--seed", String(opts.seed));
  if (opts.prefillLogits !== undefined) args.push("--prefill-logits", opts.prefillLogits);
  const run = runScript(python, "bench", args, opts);
  const json = resultJson(python, "bench", run);
  const samples = (v: unknown): number[] => (Array.isArray(v) ? v.map(num) : []);
  const decode = json["decode_tokens_per_second"];
  return {
    prefill_tokens_per_second: num(json["prefill_tokens_per_second"]),
    decode_tokens_per_second: decode === null || decode === undefined ? Number.NaN : num(decode),
    peak_rss_mb: num(json["peak_rss_mb"]),
    threads: num(json["threads"]),
    torch: String(json["torch"] ?? ""),
    prefill_samples: samples(json["prefill_samples"]),
    decode_samples: samples(json["decode_samples"]),
    parameters: num(json["parameters"]),
    backend: String(json["backend"] ?? ""),
    raw: json,
  };
}

export interface TorchSelfcheckOptions extends TorchRunOptions {
  /** Sequence length (default 24). */
  readonly length?: number;
  /** Largest allowed absolute logit difference (default 1e-4). */
  readonly tol?: number;
}

export interface TorchSelfcheckResult {
  readonly pass: boolean;
  /** max(cached vs full, full vs transformers-literal), absolute, over all logits. */
  readonly max_abs_diff: number;
  readonly raw: Readonly<Record<string, unknown>>;
}

/**
 * The script's own consistency check on `modelDir`: KV-cache path (prefill, chunk, one-token steps)
 * against a full forward, and that against a literal transcription of transformers' eager code.
 */
export function torchSelfcheck(python: string, modelDir: string, opts: TorchSelfcheckOptions = {}): TorchSelfcheckResult {
  const args = ["--model", modelDir];
  if (opts.length !== undefined) args.push("--length", String(positiveInt("length", opts.length)));
  if (opts.tol !== undefined) args.push("--tol", String(opts.tol));
  const run = runScript(python, "selfcheck", args, opts);
  // Exit status 1 with a JSON line is a failed check; without one it is a crash (resultJson throws).
  const json = resultJson(python, "selfcheck", run, [0, 1]);
  if (typeof json["pass"] !== "boolean") throw failure(python, "selfcheck", run, `returned a malformed result: ${JSON.stringify(json).slice(0, 300)}`);
  return { pass: json["pass"], max_abs_diff: num(json["max_abs_diff"]), raw: json };
}

/** One micro-batch as the trainer lays it out (its MicroBatch), with the script's field names. */
export type TorchTrainMicroBatch = Pick<MicroBatch, "ids" | "positions" | "segments" | "labels"> & { readonly loss_index: MicroBatch["lossIndex"] };

export interface TorchTrainPlan {
  /** A PEFT adapter folder: the starting A and B, r, lora_alpha, use_rslora. */
  readonly init_adapter: string;
  readonly optimizer: {
    readonly lr: number;
    readonly betas: readonly [number, number];
    readonly eps: number;
    readonly weight_decay: number;
    readonly max_grad_norm: number;
    readonly schedule: "linear" | "cosine" | "constant";
    readonly warmup: number;
  };
  readonly steps: ReadonlyArray<{ readonly scored_tokens: number; readonly micro_batches: ReadonlyArray<TorchTrainMicroBatch> }>;
}

export interface TorchTrainResult {
  readonly losses: number[];
  readonly grad_norms: number[];
  /** "<layer>.<target>" -> A [r*in] and B [out*r], PEFT layout, row-major. */
  readonly final: Readonly<Record<string, { readonly A: number[]; readonly B: number[] }>>;
}

/** The same LoRA training in plain PyTorch (llama_reference.py train): per-step losses and the final adapter. */
export function torchTrain(python: string, modelDir: string, plan: TorchTrainPlan, opts: TorchRunOptions = {}): TorchTrainResult {
  const run = runScript(python, "train", ["--model", modelDir, "--plan", "-"], opts, JSON.stringify(plan));
  const json = resultJson(python, "train", run);
  if (!Array.isArray(json["losses"]) || typeof json["final"] !== "object") throw failure(python, "train", run, `returned a malformed result: ${JSON.stringify(json).slice(0, 300)}`);
  return { losses: (json["losses"] as unknown[]).map(num), grad_norms: ((json["grad_norms"] as unknown[]) ?? []).map(num), final: json["final"] as TorchTrainResult["final"] };
}

export interface TorchTrainBenchResult {
  readonly step_seconds: number;
  readonly tokens_per_second: number;
  readonly peak_rss_mb: number;
  readonly threads: number;
  readonly torch: string;
  /** The BLAS library torch's process mapped (Debian: the libblas.so.3 alternative). */
  readonly blas: string;
  readonly samples: number[];
}

/** Median time of one LoRA training step in PyTorch (forward, backward, AdamW). */
export function torchTrainBench(python: string, modelDir: string, o: { tokens: number; batch: number; rank: number; targets: ReadonlyArray<string>; repeats?: number } & TorchRunOptions): TorchTrainBenchResult {
  const args = ["--model", modelDir, "--tokens", String(o.tokens), "--batch", String(o.batch), "--rank", String(o.rank), "--targets", o.targets.join(","), "--repeats", String(o.repeats ?? 3)];
  const run = runScript(python, "train-bench", args, o);
  const j = resultJson(python, "train-bench", run);
  return {
    step_seconds: num(j["step_seconds"]),
    tokens_per_second: num(j["tokens_per_second"]),
    peak_rss_mb: num(j["peak_rss_mb"]),
    threads: num(j["threads"]),
    torch: String(j["torch"] ?? ""),
    blas: String(j["blas"] ?? ""),
    samples: Array.isArray(j["samples"]) ? (j["samples"] as unknown[]).map(num) : [],
  };
}
