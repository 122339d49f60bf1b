/**
 * The device check: the student model on a GPU through ONNX Runtime's bundled WebGPU provider,
 * side by side with eager PyTorch + PEFT on the same machine in the same run. Made to run
 * unattended on the lent GPU machine (no Node.js there: ../shared/device's kit brings it):
 *
 *   source .device/setup.sh && node --import tsx benchmarks/src/device-check.ts --out "$OUT"
 *
 * For each shape (random weights; Llama-3.2-1B and Llama-3.1-8B shapes, and the 125M one), in
 * order, while the time budget lasts:
 *   - correctness: logits of 64 fixed tokens on the device vs the CPU provider on the same graph
 *     file (fp32: max |diff| <= 1e-3; fp16: <= 1% of the largest logit, top-1 agreement shown)
 *     and vs PyTorch's logits of the same checkpoint;
 *   - prefill tokens/s (one 512-token forward), decode tokens/s (greedy, 128 tokens, the
 *     resident KV cache; on the 125M shape also the host cache, to show what residency gains);
 *   - one LoRA training step (r 8 on q,v, AdamW) of 1 x 256 and 4 x 512 tokens (fp32);
 *   - peak GPU memory (nvidia-smi's memory.used over the phase, minus the idle figure: the same
 *     measure for both sides) and PyTorch's own max_memory_allocated;
 *   - where ORT placed the nodes of the inference and training graphs (ops left on the CPU).
 * Results go to OUT/results.json and OUT/table.md after every phase, so a run stopped by its time
 * limit keeps what it measured. Targets (issue #14): decode and training step within 3x of
 * PyTorch for the 1B and 8B shapes, fp16 prefill at least 25% of PyTorch's tokens/s.
 *
 *   --shapes 125m,1b,8b   which shapes (default all; `tiny` is the self-test's)
 *   --device webgpu       the device under test (cpu: the self-test of this script)
 *   --budget-s 540        stop starting shapes when less time than a shape needs is left
 *   --python PY           the interpreter with torch + transformers + peft (default: found)
 *   --reps 3              repetitions of each timing (medians)
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { CausalLM, compiledTrainingGraph, initLoraAdapter, normalizeLoraConfig, readModelConfig, writeTinyCheckpoint, type LoraAdapter, type TinyCheckpointOptions } from "@bdc/lm-local";
import { BdcError } from "@bdc/core";
import { deviceInstallHint, DEVICES, deviceUnavailableReason, type Device } from "@bdc/onnx-graph";
import { argmaxOf, median, randomIds, runIfMain, timeGreedy } from "./common.ts";
import { measureOrtTrainStep } from "./lora-train.ts";
import { renderTable, type Results, type ShapeResult } from "./device-check-table.ts";
import { GpuMemory } from "./gpu-memory.ts";
import { nodePlacements } from "./ort-placements.ts";
import { CHECK_TOKENS, findTorch, measureTorch, runPython } from "./device-check-torch.ts";

export type Dtype = "float32" | "float16";

interface Shape {
  readonly label: string;
  readonly options: TinyCheckpointOptions;
  /** Compute types measured on the device (fp32 is skipped where its graph would not fit the machine's disk). */
  readonly dtypes: ReadonlyArray<Dtype>;
  /** Training is fp32 (the training graph's type): skipped where that graph would not fit. */
  readonly train: boolean;
  /** Rough seconds this shape needs on the GPU machine (weights, graphs, sessions, timings), to plan the budget. */
  readonly seconds: number;
  /** Checkpoint dtype on disk. */
  readonly stored: "float32" | "bfloat16";
}

const LLAMA3_ROPE = (factor: number) => ({ type: "llama3", factor, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 }) as const;

export const SHAPES: Readonly<Record<string, Shape>> = {
  tiny: { label: "tiny Llama (2 layers, hidden 64; the self-test)", options: { arch: "llama", layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 128, vocab: 512, seed: 0 }, dtypes: ["float32", "float16"], train: true, seconds: 20, stored: "float32" },
  "125m": { label: "125M Llama (12 layers, hidden 768, vocab 32000)", options: { arch: "llama", layers: 12, hidden: 768, heads: 12, kvHeads: 4, intermediate: 2048, vocab: 32000, seed: 0 }, dtypes: ["float32", "float16"], train: true, seconds: 90, stored: "float32" },
  "1b": {
    label: "Llama-3.2-1B shape (16 layers, hidden 2048, 32/8 heads, vocab 128256, tied)",
    options: { arch: "llama", layers: 16, hidden: 2048, heads: 32, kvHeads: 8, intermediate: 8192, vocab: 128256, tieEmbeddings: true, ropeTheta: 500000, ropeScaling: LLAMA3_ROPE(32), rmsNormEps: 1e-5, maxPositions: 131072, seed: 0 },
    dtypes: ["float32", "float16"],
    train: true,
    seconds: 240,
    stored: "bfloat16",
  },
  "8b": {
    label: "Llama-3.1-8B shape (32 layers, hidden 4096, 32/8 heads, vocab 128256)",
    options: { arch: "llama", layers: 32, hidden: 4096, heads: 32, kvHeads: 8, intermediate: 14336, vocab: 128256, tieEmbeddings: false, ropeTheta: 500000, ropeScaling: LLAMA3_ROPE(8), rmsNormEps: 1e-5, maxPositions: 131072, seed: 0 },
    // fp32 would be 32 GB of weights twice more (graph + training graph) on a 64 GB disk.
    dtypes: ["float16"],
    train: false,
    seconds: 420,
    stored: "bfloat16",
  },
};

export interface CheckOptions {
  readonly out: string;
  readonly shapes: ReadonlyArray<string>;
  readonly device: Device;
  readonly budgetSeconds: number;
  readonly reps: number;
  readonly promptTokens: number;
  readonly decodeTokens: number;
  readonly train: ReadonlyArray<readonly [batch: number, tokens: number]>;
  readonly python?: string | undefined;
  readonly work?: string | undefined;
}



/** The shape's checkpoint: PyTorch's random init where transformers is there (fast on the GPU), else ours. */
async function ensureCheckpoint(dir: string, shape: Shape, torch: Results["torch"], device: Device, log: (line: string) => void): Promise<Record<string, unknown>> {
  if (fs.existsSync(path.join(dir, "config.json"))) return { reused: dir };
  const t0 = performance.now();
  if (torch.backend === "transformers+peft" && shape.stored === "bfloat16") {
    // The tokenizer (and its bos/eos ids) from our tiny-checkpoint writer: a one-layer, hidden-8 model of the same vocabulary.
    const tok = `${dir}.tokenizer`;
    writeTinyCheckpoint(tok, { ...shape.options, layers: 1, hidden: 8, heads: 2, kvHeads: 1, headDim: 4, intermediate: 16, ropeScaling: undefined });
    const tiny = JSON.parse(fs.readFileSync(path.join(tok, "config.json"), "utf8")) as Record<string, unknown>;
    const o = shape.options;
    const rope = o.ropeScaling as { factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number } | undefined;
    const config = {
      vocab_size: o.vocab, hidden_size: o.hidden, intermediate_size: o.intermediate, num_hidden_layers: o.layers, num_attention_heads: o.heads, num_key_value_heads: o.kvHeads,
      max_position_embeddings: o.maxPositions, rope_theta: o.ropeTheta, rms_norm_eps: o.rmsNormEps, tie_word_embeddings: o.tieEmbeddings ?? false,
      bos_token_id: tiny["bos_token_id"], eos_token_id: tiny["eos_token_id"],
      ...(rope === undefined ? {} : { rope_scaling: { rope_type: "llama3", factor: rope.factor, low_freq_factor: rope.lowFreqFactor, high_freq_factor: rope.highFreqFactor, original_max_position_embeddings: rope.originalMaxPositions } }),
    };
    log(`making the checkpoint with PyTorch (${shape.label}, bf16)`);
    const made = await runPython(torch.python!, ["make", "--config", JSON.stringify(config), "--out", dir, "--dtype", "bfloat16", "--device", device === "cpu" ? "cpu" : "cuda"], log);
    for (const f of fs.readdirSync(tok)) if (f.startsWith("tokenizer") || f === "special_tokens_map.json") fs.copyFileSync(path.join(tok, f), path.join(dir, f));
    fs.rmSync(tok, { recursive: true, force: true });
    return { by: "pytorch", ...made, seconds: (performance.now() - t0) / 1000 };
  }
  log(`writing the checkpoint (${shape.label}, ${shape.stored})`);
  writeTinyCheckpoint(dir, { ...shape.options, dtype: shape.stored });
  return { by: "writeTinyCheckpoint", seconds: (performance.now() - t0) / 1000 };
}

function compareLogits(got: Float32Array, want: Float32Array, vocab: number): { maxAbs: number; relative: number; top1: number } {
  let maxAbs = 0;
  let scale = 0;
  let agree = 0;
  const rows = want.length / vocab;
  for (let i = 0; i < want.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  for (let r = 0; r < rows; r++) if (argmaxOf(got, r * vocab, vocab) === argmaxOf(want, r * vocab, vocab)) agree++;
  return { maxAbs, relative: scale > 0 ? maxAbs / scale : 0, top1: agree / rows };
}

/** One compute type of one shape on the device: load, correctness, prefill, decode (resident and, if asked, host cache). */
async function measureInference(dir: string, o: CheckOptions, dtype: Dtype, attention: "ops" | "fused", reference: Float32Array | undefined, hostCache: boolean, gpu: GpuMemory, log: (line: string) => void): Promise<Record<string, unknown>> {
  const cacheDir = path.join(o.work!, "onnx");
  const threads = os.availableParallelism();
  const { value, peakMb } = await gpu.during(async () => {
    const t0 = performance.now();
    const lm = await CausalLM.load(dir, { device: o.device, dtype, attention, threads, cacheDir, onProgress: log });
    const loadSeconds = (performance.now() - t0) / 1000;
    try {
      const V = lm.config.vocabSize;
      const ids = randomIds(CHECK_TOKENS, V, 7);
      const first = await lm.forward({ ids: [ids], logitsAt: ids.map((_, i) => i) });
      lm.releaseCache(first.cache);
      const prompt = randomIds(o.promptTokens, V, 1);
      // Warm-ups at the timed shapes: a GPU provider compiles its kernels per shape on first use.
      const warm = await lm.forward({ ids: [prompt] });
      lm.releaseCache(warm.cache);
      const prefill: number[] = [];
      for (let r = 0; r < o.reps; r++) {
        const t = performance.now();
        const step = await lm.forward({ ids: [prompt] });
        prefill.push((performance.now() - t) / 1000);
        lm.releaseCache(step.cache);
      }
      const decode = (model: CausalLM) => decodeRate(model, prompt.slice(0, 32), o);
      const resident = await decode(lm);
      let host: number | undefined;
      if (hostCache && lm.kvCache === "resident") {
        const hostLm = await CausalLM.load(dir, { device: o.device, dtype, threads, cacheDir, kvCache: "host" });
        try {
          host = await decode(hostLm);
        } finally {
          await hostLm.dispose();
        }
      }
      return {
        load_seconds: loadSeconds,
        logits: first.logits,
        vocab: V,
        prefill_tokens_per_second: o.promptTokens / median(prefill),
        decode_tokens_per_second: resident,
        ...(host === undefined ? {} : { decode_host_cache_tokens_per_second: host }),
        graph: lm.modelPath,
      };
    } finally {
      await lm.dispose();
    }
  });
  const { logits, vocab, ...rest } = value;
  const vsCpu = reference === undefined ? undefined : compareLogits(logits, reference, vocab);
  return { ...rest, ...(vsCpu === undefined ? {} : { vs_cpu_fp32: vsCpu }), logits_file: writeLogits(o.work!, `ort-${o.device}-${dtype}-${attention}`, logits), peak_gpu_mb: peakMb };
}

/** Greedy decode tokens/s after `prompt`: the median of `reps` runs after one untimed (a GPU provider compiles kernels per shape on first use). */
async function decodeRate(lm: CausalLM, prompt: ReadonlyArray<number>, o: CheckOptions, adapter?: LoraAdapter): Promise<number> {
  await timeGreedy(lm, prompt, o.decodeTokens, adapter);
  const times: number[] = [];
  for (let r = 0; r < o.reps; r++) times.push((await timeGreedy(lm, prompt, o.decodeTokens, adapter)).decodeSeconds);
  return o.decodeTokens / median(times);
}

function writeLogits(work: string, name: string, logits: Float32Array): string {
  const file = path.join(work, `${name}.f32`);
  fs.writeFileSync(file, Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
  return file;
}

function readLogits(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** A rank-8 adapter on q,v with non-zero B (PEFT's init has B = 0, which would test nothing). */
function randomAdapter(dir: string): LoraAdapter {
  const config = readModelConfig(dir);
  const adapter = initLoraAdapter(config, normalizeLoraConfig({ rank: 8, alpha: 16, rslora: false, dropout: 0, targets: ["q_proj", "v_proj"] }, config), 3);
  let s = 11;
  for (const m of adapter.modules.values()) for (let i = 0; i < m.B.length; i++) m.B[i] = ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 0.05;
  return adapter;
}

/**
 * A LoRA adapter on the device: its factors are uploaded once (DeviceUploader) and fed to every
 * step from GPU memory. Logits against the CPU provider with the same adapter; decode with it.
 */
async function measureAdapter(dir: string, o: CheckOptions, gpu: GpuMemory, log: (line: string) => void): Promise<Record<string, unknown>> {
  const adapter = randomAdapter(dir);
  let refused = false;
  const onProgress = (line: string) => {
    if (/refused the LoRA factors uploaded to it/.test(line)) refused = true;
    log(line);
  };
  const load = (device: Device) => CausalLM.load(dir, { device, threads: os.availableParallelism(), cacheDir: path.join(o.work!, "onnx"), lora: { targets: ["q_proj", "v_proj"] }, onProgress });
  const logitsOn = async (lm: CausalLM) => {
    const ids = randomIds(CHECK_TOKENS, lm.config.vocabSize, 7);
    const r = await lm.forward({ ids: [ids], logitsAt: ids.map((_, i) => i), adapter });
    lm.releaseCache(r.cache);
    return r.logits;
  };
  const cpu = await load("cpu");
  let want: Float32Array;
  let base: Float32Array;
  try {
    want = await logitsOn(cpu);
    const ids = randomIds(CHECK_TOKENS, cpu.config.vocabSize, 7);
    base = (await cpu.forward({ ids: [ids], logitsAt: ids.map((_, i) => i) })).logits;
  } finally {
    await cpu.dispose();
  }
  const { value, peakMb } = await gpu.during(async () => {
    const lm = await load(o.device);
    try {
      const got = await logitsOn(lm);
      const prompt = randomIds(32, lm.config.vocabSize, 1);
      return { got, decode: await decodeRate(lm, prompt, o, adapter) };
    } finally {
      await lm.dispose();
    }
  });
  const vocab = readModelConfig(dir).vocabSize;
  return { vs_cpu_fp32: compareLogits(value.got, want, vocab), adapter_moves_logits_by: compareLogits(want, base, vocab).maxAbs, decode_tokens_per_second: value.decode, factors: refused ? "refused by the device: fed from the host" : o.device === "webgpu" ? "uploaded once" : "fed from the host", peak_gpu_mb: peakMb };
}

/** The CPU provider's fp32 logits of the check tokens: what the device is compared with. */
async function cpuReference(dir: string, work: string, log: (line: string) => void): Promise<Float32Array> {
  const lm = await CausalLM.load(dir, { device: "cpu", threads: os.availableParallelism(), cacheDir: path.join(work, "onnx"), onProgress: log });
  try {
    const ids = randomIds(CHECK_TOKENS, lm.config.vocabSize, 7);
    return (await lm.forward({ ids: [ids], logitsAt: ids.map((_, i) => i) })).logits;
  } finally {
    await lm.dispose();
  }
}

export async function runDeviceCheck(o: CheckOptions, log: (line: string) => void): Promise<Results> {
  const started = performance.now();
  // A device that is not there fails every phase the same way: said once, before any work.
  const missing = await deviceUnavailableReason(o.device);
  if (missing !== undefined) throw new BdcError({ code: "BDC_DEVICE_UNAVAILABLE", message: `device-check --device ${o.device}: ${missing}`, hint: deviceInstallHint(o.device) });
  fs.mkdirSync(o.out, { recursive: true });
  const work = o.work ?? fs.mkdtempSync(path.join(os.tmpdir(), "bdc-device-check-"));
  const opts: CheckOptions = { ...o, work };
  const torch = findTorch(o.python);
  const gpu = new GpuMemory();
  const results: Results = { date: new Date().toISOString(), device: o.device, machine: machineInfo(), torch, shapes: {} };
  const save = () => {
    fs.writeFileSync(path.join(o.out, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
    fs.writeFileSync(path.join(o.out, "table.md"), renderTable(results));
  };
  for (const name of o.shapes) {
    const shape = SHAPES[name]!;
    const r: ShapeResult = { label: shape.label, ort: {}, torch: {} };
    results.shapes[name] = r;
    const left = o.budgetSeconds - (performance.now() - started) / 1000;
    if (left < shape.seconds) {
      r.skipped = `not started: ${Math.max(0, left).toFixed(0)} s of the budget left, the shape needs about ${shape.seconds} s`;
      save();
      continue;
    }
    const step = async (what: string, into: Record<string, unknown>, key: string, fn: () => Promise<unknown>) => {
      log(`${name}: ${what}`);
      try {
        into[key] = await fn();
      } catch (e) {
        into[key] = { error: (e as Error).message.split("\n")[0] };
        log(`${name}: ${what} failed: ${(e as Error).stack ?? String(e)}`);
      }
      save();
    };
    const dir = path.join(work, `model-${name}`);
    const holder: Record<string, unknown> = {};
    await step("checkpoint", holder, "checkpoint", () => ensureCheckpoint(dir, shape, torch, o.device, log));
    r.checkpoint = holder["checkpoint"] as Record<string, unknown>;
    if ("error" in r.checkpoint) continue;
    let reference: Float32Array | undefined;
    if (shape.dtypes.includes("float32")) await step("CPU provider reference logits", holder, "reference", async () => (reference = await cpuReference(dir, work, log)) && { ok: true });
    const small = name === "125m" || name === "tiny";
    for (const dtype of shape.dtypes) {
      await step(`ONNX Runtime ${o.device} ${dtype}`, r.ort, dtype, () => measureInference(dir, opts, dtype, "ops", reference, small, gpu, log));
      // The same with ORT's fused GroupQueryAttention: fewer kernels per decode step.
      await step(`ONNX Runtime ${o.device} ${dtype}, fused attention`, r.ort, `${dtype} fused`, () => measureInference(dir, opts, dtype, "fused", reference, false, gpu, log));
    }
    if (small) await step(`ONNX Runtime ${o.device} with a LoRA adapter (factors uploaded once)`, r.ort, "adapter", () => measureAdapter(dir, opts, gpu, log));
    if (shape.train) {
      for (const [batch, tokens] of o.train) {
        await step(`ONNX Runtime ${o.device} training step ${batch}x${tokens}`, r.ort, `train ${batch}x${tokens}`, async () => {
          const { value, peakMb } = await gpu.during(() => measureOrtTrainStep(dir, { reps: o.reps, threads: os.availableParallelism(), tokens, batch, device: o.device, cacheDir: path.join(work, "onnx") }, log));
          return { seconds: value.stepSeconds, tokens_per_second: (batch * tokens) / value.stepSeconds, peak_gpu_mb: peakMb };
        });
      }
    }
    // PyTorch in the same types, and in bf16: what a PyTorch user would run on this GPU.
    const torchDtypes: ReadonlyArray<Dtype | "bfloat16"> = [...shape.dtypes, "bfloat16"];
    for (const dtype of torchDtypes) {
      await step(`PyTorch ${dtype}`, r.torch, dtype, () => measureTorch(dir, opts, dtype, shape.train ? dtype !== "float16" : dtype === "bfloat16", torch, gpu, log));
      const t = r.torch[dtype] as { logits?: { file?: string } } | undefined;
      for (const variant of [dtype, `${dtype} fused`]) {
        const mine = (r.ort[variant] as { logits_file?: string } | undefined)?.logits_file;
        if (t?.logits?.file === undefined || mine === undefined || !fs.existsSync(t.logits.file)) continue;
        (r.ort[variant] as Record<string, unknown>)["vs_torch"] = compareLogits(readLogits(mine), readLogits(t.logits.file), readModelConfig(dir).vocabSize);
        save();
      }
    }
    r.placements = {};
    for (const variant of shape.dtypes.flatMap((d) => [d, `${d} fused`])) {
      const graph = (r.ort[variant] as { graph?: string } | undefined)?.graph;
      if (graph !== undefined) await step(`node placements (${variant} inference graph)`, r.placements, `inference ${variant}`, () => nodePlacements(graph, o.device));
    }
    if (shape.train) {
      const config = readModelConfig(dir);
      const trainGraph = compiledTrainingGraph(dir, config, { targets: ["q_proj", "v_proj"], layers: Array.from({ length: config.numLayers }, (_, i) => i), dropout: false }, { cacheDir: path.join(work, "onnx") });
      await step("node placements (float32 training graph)", r.placements, "training float32", () => nodePlacements(trainGraph, o.device));
    }
    // The next shape needs the disk: this one's weights and graphs go.
    if (o.work === undefined) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(path.join(work, "onnx"), { recursive: true, force: true });
    }
  }
  if (o.work === undefined) fs.rmSync(work, { recursive: true, force: true });
  save();
  return results;
}

function machineInfo(): Record<string, unknown> {
  const smi = spawnSync("nvidia-smi", ["--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"], { encoding: "utf8", timeout: 10_000 });
  return { cpus: os.availableParallelism(), cpu: os.cpus()[0]?.model, memory_gb: Math.round(os.totalmem() / 2 ** 30), gpu: smi.status === 0 ? smi.stdout.trim() : undefined, node: process.version };
}

async function main(argv: ReadonlyArray<string>): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      out: { type: "string" },
      shapes: { type: "string" },
      device: { type: "string", default: "webgpu" },
      "budget-s": { type: "string", default: "540" },
      python: { type: "string" },
      reps: { type: "string", default: "3" },
      "prompt-tokens": { type: "string", default: "512" },
      "decode-tokens": { type: "string", default: "128" },
      train: { type: "string", default: "1x256,4x512" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`usage: node --import tsx benchmarks/src/device-check.ts [--out DIR] [--shapes ${Object.keys(SHAPES).join(",")}] [--device ${DEVICES.join("|")}] [--budget-s S] [--reps R]\n`);
    return 0;
  }
  const device = values.device as Device;
  if (!DEVICES.includes(device)) throw new Error(`--device ${values.device}: choose ${DEVICES.join(", ")}`);
  const shapes = (values.shapes ?? "125m,1b,8b").split(",");
  for (const s of shapes) if (SHAPES[s] === undefined) throw new Error(`--shapes: "${s}" is not a shape; choose from ${Object.keys(SHAPES).join(", ")}`);
  const int = (name: string, v: string) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
    return x;
  };
  const out = path.resolve(values.out ?? process.env["OUT"] ?? "device-check");
  const results = await runDeviceCheck(
    {
      out,
      shapes,
      device,
      budgetSeconds: int("budget-s", values["budget-s"]!),
      reps: int("reps", values.reps!),
      promptTokens: int("prompt-tokens", values["prompt-tokens"]!),
      decodeTokens: int("decode-tokens", values["decode-tokens"]!),
      train: values.train!.split(",").filter((s) => s.length > 0).map((s) => s.split("x").map((v) => int("train", v)) as [number, number]),
      python: values.python,
    },
    (line) => process.stderr.write(`${line}\n`),
  );
  process.stdout.write(renderTable(results));
  process.stderr.write(`results: ${path.join(out, "results.json")}, ${path.join(out, "table.md")}\n`);
  return 0;
}

runIfMain(import.meta.url, "device-check", main);
