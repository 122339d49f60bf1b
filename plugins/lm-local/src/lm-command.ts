/**
 * `bdc lm score|generate`: look at what the local model does, and compare it with other
 * frameworks. With --json the last line of stdout is one JSON object:
 *   score:    {"tokens": [ids], "logprobs": [floats]}  (logprobs[i] = log p(tokens[i+1] | tokens[..i]))
 *   generate: {"text": ..., "tokens": N, "tokens_per_second": X, ...}
 */
import * as path from "node:path";
import { BdcError, type CliCommand, type Io, type ParsedArgs } from "@bdc/core";
import { resolveModelDir } from "./hub/pull-model.ts";
import { CausalLM, defaultOnnxCache } from "./model/causal-lm.ts";
import { generate } from "./model/generate.ts";
import { scoreTokens } from "./model/score.ts";

const spec = {
  name: "lm",
  summary: "Run the local model: token log-probabilities (lm score) or text (lm generate)",
  usage: 'bdc lm score --model DIR --text "..." [--bos] [--adapter DIR] [--json]\n       bdc lm generate --model DIR --prompt "..." [--max-tokens N] [--chat] [--adapter DIR] [--json]',
  minPositionals: 1,
  maxPositionals: 1,
  details: [
    "--model is a checkpoint folder (config.json, *.safetensors, tokenizer.json) or a hub id pulled with `bdc models pull`.",
    "score tokenises --text with the model's tokenizer without special tokens (--bos puts the BOS token first).",
    "generate decodes greedily unless --temperature > 0; --chat wraps the prompt in the model's chat template.",
    "The first run on a checkpoint builds its ONNX model (cached in .cache/bdc/onnx, or $BDC_ONNX_CACHE).",
  ].join("\n"),
  flags: {
    model: { type: "string", value: "DIR", description: "checkpoint folder or pulled hub id" },
    text: { type: "string", value: "TEXT", description: "score: the text" },
    bos: { type: "boolean", description: "score: put the BOS token first" },
    prompt: { type: "string", value: "TEXT", description: "generate: the prompt" },
    chat: { type: "boolean", description: "generate: apply the chat template to the prompt (as a user message)" },
    "max-tokens": { type: "string", value: "N", description: "generate: most new tokens (default 128)" },
    temperature: { type: "string", value: "T", description: "generate: 0 = greedy (default)" },
    "top-p": { type: "string", value: "P", description: "generate: nucleus mass" },
    "top-k": { type: "string", value: "K", description: "generate: sample among the k most likely" },
    seed: { type: "string", value: "S", description: "generate: sampling seed" },
    stop: { type: "string", value: "TEXT", multiple: true, description: "generate: stop at this text (repeatable)" },
    adapter: { type: "string", value: "DIR", description: "a PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) to apply" },
    device: { type: "string", value: "cpu|cuda", description: "where to run (default cpu)" },
    "device-id": { type: "string", value: "N", description: "CUDA device ordinal (default 0)" },
    threads: { type: "string", value: "N", description: "CPU threads (default: every core)" },
    json: { type: "boolean", description: "end stdout with one JSON line" },
    quiet: { type: "boolean", short: "q", description: "no progress output" },
  },
} as const;

const usage = (message: string) => new BdcError({ code: "BDC_USAGE", message: `bdc lm: ${message}`, hint: `usage: ${spec.usage}` });

function numberFlag(args: ParsedArgs, name: string, check: (n: number) => boolean, what: string): number | undefined {
  const raw = args.flags[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(n) || !check(n)) throw usage(`--${name} ${String(raw)} is not ${what}`);
  return n;
}

const isPositiveInt = (n: number) => Number.isInteger(n) && n > 0;

async function load(io: Io, args: ParsedArgs): Promise<CausalLM> {
  const model = args.flags["model"];
  if (typeof model !== "string") throw usage("--model is required");
  const device = args.flags["device"] ?? "cpu";
  if (device !== "cpu" && device !== "cuda") throw usage(`--device ${String(device)}: choose cpu or cuda`);
  const dir = resolveModelDir(model, io.cwd);
  const quiet = args.flags["quiet"] === true;
  return CausalLM.load(dir, {
    device,
    deviceId: numberFlag(args, "device-id", (n) => Number.isInteger(n) && n >= 0, "a device number"),
    threads: numberFlag(args, "threads", isPositiveInt, "a positive integer"),
    cacheDir: defaultOnnxCache(io.cwd),
    adapter: typeof args.flags["adapter"] === "string" ? path.resolve(io.cwd, args.flags["adapter"]) : undefined,
    onProgress: quiet ? undefined : (line) => io.err(`${line}\n`),
  });
}

async function score(io: Io, args: ParsedArgs): Promise<number> {
  const text = args.flags["text"];
  if (typeof text !== "string") throw usage("score needs --text");
  const lm = await load(io, args);
  try {
    const ids = lm.tokenizer.encode(text, { addSpecialTokens: false });
    const bos = lm.tokenizer.bosTokenId ?? lm.config.bosTokenId;
    if (args.flags["bos"] === true) {
      if (bos === undefined) throw new BdcError({ code: "BDC_USAGE", message: `bdc lm score --bos: ${path.basename(lm.dir)} has no BOS token`, hint: "drop --bos" });
      ids.unshift(bos);
    }
    if (ids.length < 2) throw usage("--text must be at least two tokens long to be scored");
    const logprobs = await scoreTokens(lm, ids);
    if (args.flags["json"] === true) {
      io.out(`${JSON.stringify({ tokens: ids, logprobs })}\n`);
    } else {
      io.out(`${"token".padEnd(24)} ${"id".padStart(7)}  logprob\n`);
      ids.forEach((id, i) => io.out(`${JSON.stringify(lm.tokenizer.decode([id])).slice(0, 24).padEnd(24)} ${String(id).padStart(7)}  ${i === 0 ? "" : logprobs[i - 1]!.toFixed(4)}\n`));
      const total = logprobs.reduce((s, x) => s + x, 0);
      io.out(`total ${total.toFixed(4)} over ${logprobs.length} tokens, perplexity ${Math.exp(-total / logprobs.length).toFixed(3)}\n`);
    }
    return 0;
  } finally {
    await lm.dispose();
  }
}

async function runGenerate(io: Io, args: ParsedArgs): Promise<number> {
  const prompt = args.flags["prompt"];
  if (typeof prompt !== "string") throw usage("generate needs --prompt");
  const maxNewTokens = numberFlag(args, "max-tokens", isPositiveInt, "a positive integer") ?? 128;
  const temperature = numberFlag(args, "temperature", (n) => n >= 0, "a temperature >= 0");
  const topP = numberFlag(args, "top-p", (n) => n > 0 && n <= 1, "in (0, 1]");
  const topK = numberFlag(args, "top-k", isPositiveInt, "a positive integer");
  const seed = numberFlag(args, "seed", Number.isInteger, "an integer");
  const lm = await load(io, args);
  try {
    const text = args.flags["chat"] === true ? lm.tokenizer.applyChatTemplate([{ role: "user", content: prompt }], { addGenerationPrompt: true }) : prompt;
    const ids = lm.tokenizer.encode(text, { addSpecialTokens: args.flags["chat"] !== true });
    const stop = args.flags["stop"] as string[] | undefined;
    const out = await generate(lm, ids, { maxNewTokens, temperature, topP, topK, seed, stop });
    const summary = {
      text: out.text,
      tokens: out.tokens.length,
      tokens_per_second: Math.round(out.tokensPerSecond * 100) / 100,
      prompt_tokens: out.promptTokens,
      prefill_tokens_per_second: out.prefillSeconds > 0 ? Math.round((out.promptTokens / out.prefillSeconds) * 100) / 100 : 0,
      finish_reason: out.finishReason,
    };
    if (args.flags["json"] === true) io.out(`${JSON.stringify(summary)}\n`);
    else {
      io.out(`${out.text}\n`);
      io.err(`${summary.tokens} tokens, ${summary.tokens_per_second} tokens/s (prompt ${summary.prompt_tokens} tokens at ${summary.prefill_tokens_per_second} tokens/s), ${summary.finish_reason}\n`);
    }
    return 0;
  } finally {
    await lm.dispose();
  }
}

const command: CliCommand = {
  spec,
  async run(io, args) {
    const sub = args.positionals[0];
    if (sub === "score") return score(io, args);
    if (sub === "generate") return runGenerate(io, args);
    throw usage(`unknown subcommand "${sub}" (score or generate)`);
  },
};

export default command;
