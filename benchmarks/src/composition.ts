/**
 * The cost of DisenLoRA's composition at inference and in training, on the 125M Llama of
 * lm-generation (random weights, fp32, CPU):
 *
 * - decode tokens/s of the student composing 3 rank-8 experts (q_proj, v_proj, every layer) with
 *   per-request gates from a hypernetwork (its forward included) vs the same model with one plain
 *   rank-8 adapter, in the same run, A/B interleaved (median of the reps). Target >= 0.8x.
 * - one hypernetwork training step (256 tokens, batch 1, layers 0-9 as the authors): the gated
 *   model's forward + backward to the gates, the hypernetwork's forward and backward, and Adam,
 *   side by side with the gated graph's run alone (what the hypernetwork adds on top of the model).
 *
 *   pnpm exec tsx benchmarks/src/composition.ts [--reps R] [--json]
 */
import * as os from "node:os";
import { Hypernetwork, GatedLoss } from "@bdc/customize";
import {
  AdamW,
  CausalLM,
  compositionScale,
  initLoraAdapter,
  mulberry32,
  normalizeLoraConfig,
  openTrainingSession,
  readModelConfig,
  stackExperts,
  type Composition,
  type LoraAdapter,
  type ModelConfig,
  type TrainingExample,
} from "@bdc/lm-local";
import { FLAGS_HELP, median, parseFlags, printOutcome, runIfMain, timeGreedy, type Benchmark, type BenchFlags, type BenchOutcome } from "./common.ts";
import { ensureModel } from "./lm-generation.ts";

const PROMPT_TOKENS = 128;
const DECODE_TOKENS = 48;
const TRAIN_TOKENS = 256;
const EMBEDDING_DIM = 256;

function expert(model: ModelConfig, seed: number, layers?: number[]): LoraAdapter {
  const a = initLoraAdapter(model, normalizeLoraConfig({ rank: 8, alpha: 16, rslora: false, dropout: 0, targets: ["q_proj", "v_proj"], layers }, model), seed);
  const rand = mulberry32(seed);
  for (const m of a.modules.values()) for (let i = 0; i < m.B.length; i++) m.B[i] = (rand() * 2 - 1) * 0.01;
  return a;
}

function unit(n: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const v = Float32Array.from({ length: n }, () => rand() * 2 - 1);
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

function hypernetFor(stackExperts: ReadonlyArray<string>, layers: ReadonlyArray<number>): Hypernetwork {
  const K = stackExperts.length;
  const centroids = new Float32Array(K * EMBEDDING_DIM);
  for (let k = 0; k < K; k++) centroids.set(unit(EMBEDDING_DIM, 100 + k), k * EMBEDDING_DIM);
  return Hypernetwork.init({ encoder: { model: "bench", dimension: EMBEDDING_DIM }, experts: stackExperts, rank: 8, hidden: 64, layers, targets: ["q_proj", "v_proj"], softmax: "all", gateScale: "mean" }, centroids, 7);
}

async function decodeRate(lm: CausalLM, adapterFor: () => LoraAdapter | Composition, ids: number[]): Promise<number> {
  // Decode only; the gates (the hypernetwork's forward) are computed before the prefill, as policy/local does per request.
  return DECODE_TOKENS / (await timeGreedy(lm, ids, DECODE_TOKENS, adapterFor())).decodeSeconds;
}

export const compositionBench: Benchmark = {
  name: "composition",
  description: "decode tok/s composing 3 rank-8 experts (hypernetwork gates) vs one rank-8 adapter; one hypernetwork training step",
  async run(flags: BenchFlags, log): Promise<BenchOutcome> {
    const reps = flags.reps ?? 5;
    const threads = os.availableParallelism();
    const dir = ensureModel(log);
    const model = readModelConfig(dir);
    const ids = Array.from({ length: PROMPT_TOKENS }, (_, i) => (i * 7919 + 13) % model.vocabSize);

    // Inference: the same checkpoint, one session with plain slots and one with gated slots.
    const plainAdapter = expert(model, 1);
    const stack = stackExperts([1, 2, 3].map((s) => ({ name: `e${s}`, adapter: expert(model, s) })), model);
    const net = hypernetFor(stack.experts, stack.layers);
    const scale = compositionScale(stack, "mean", net.gateMass);
    const embedding = unit(EMBEDDING_DIM, 5);
    const plain = await CausalLM.load(dir, { threads, lora: { targets: ["q_proj", "v_proj"] }, onProgress: log });
    const gated = await CausalLM.load(dir, { threads, lora: { targets: ["q_proj", "v_proj"], gates: true }, onProgress: log });
    const rates = { plain: [] as number[], composed: [] as number[] };
    try {
      await decodeRate(plain, () => plainAdapter, ids.slice(0, 8));
      await decodeRate(gated, () => ({ stack, gates: net.forward(embedding).gates, scale }), ids.slice(0, 8));
      for (let r = 0; r < reps; r++) {
        rates.plain.push(await decodeRate(plain, () => plainAdapter, ids));
        rates.composed.push(await decodeRate(gated, () => ({ stack, gates: net.forward(embedding).gates, scale }), ids));
        log(`rep ${r + 1}/${reps}: plain ${rates.plain.at(-1)!.toFixed(1)} tok/s, composed ${rates.composed.at(-1)!.toFixed(1)} tok/s`);
      }
    } finally {
      await plain.dispose();
      await gated.dispose();
    }
    const decode = { plain: median(rates.plain), composed: median(rates.composed) };
    const ratio = decode.composed / decode.plain;

    // Training: one hypernetwork step on a 256-token row, layers 0-9, vs the gated graph alone.
    const layers = Array.from({ length: Math.min(10, model.numLayers) }, (_, i) => i);
    const trainStack = stackExperts([1, 2, 3].map((s) => ({ name: `e${s}`, adapter: expert(model, s, layers) })), model);
    const trainNet = hypernetFor(trainStack.experts, layers);
    const session = await openTrainingSession(dir, model, { targets: trainStack.targets, layers: trainStack.layers, gates: true }, { threads, log });
    const step = { full: [] as number[], graph: [] as number[] };
    try {
      const example: TrainingExample = { ids: ids.concat(ids).slice(0, TRAIN_TOKENS), lossMask: Uint8Array.from({ length: TRAIN_TOKENS }, (_, t) => (t >= TRAIN_TOKENS / 2 ? 1 : 0)), source: "bench", input: "" };
      const loss = new GatedLoss(session, model, trainStack, compositionScale(trainStack, "mean", trainNet.gateMass), TRAIN_TOKENS);
      const adam = new AdamW(trainNet.params, { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
      for (let r = 0; r < reps + 2; r++) {
        const t0 = performance.now();
        const { gates, trace } = trainNet.forward(embedding);
        const row = await loss.run(example, gates, 1 / (TRAIN_TOKENS / 2));
        adam.update(trainNet.backward(trace, row.gateGrads), 1e-5);
        const t1 = performance.now();
        await loss.run(example, gates, 1 / (TRAIN_TOKENS / 2));
        const t2 = performance.now();
        if (r >= 2) {
          step.full.push(t1 - t0);
          step.graph.push(t2 - t1);
        }
      }
    } finally {
      await session.release();
    }
    const train = { step: median(step.full), graph: median(step.graph) };
    const pass = ratio >= 0.8;
    const text = [
      `composition: 125M Llama fp32, q_proj+v_proj of every layer, ${threads} threads, median of ${reps} (A/B interleaved)`,
      "",
      "| | composed (3 experts x r8, hypernetwork gates) | plain (one r8 adapter) | ratio |",
      "|---|---|---|---|",
      `| decode (${DECODE_TOKENS} tokens after ${PROMPT_TOKENS}) | ${decode.composed.toFixed(1)} tok/s | ${decode.plain.toFixed(1)} tok/s | ${ratio.toFixed(2)}x |`,
      "",
      "| | hypernetwork step | gated model graph alone | ratio |",
      "|---|---|---|---|",
      `| one training step (${TRAIN_TOKENS} tokens, layers 0-${layers.at(-1)}, batch 1) | ${train.step.toFixed(0)} ms | ${train.graph.toFixed(0)} ms | ${(train.step / train.graph).toFixed(2)}x |`,
      "",
      `${pass ? "PASS" : "FAIL"}: target composed decode >= 0.8x the plain adapter's`,
    ].join("\n");
    return { pass, text, json: { decode, ratio, train, threads, reps } };
  },
};

runIfMain(import.meta.url, "composition", async (argv) => {
  const flags = parseFlags(argv);
  if (flags.help) {
    process.stdout.write(`usage: pnpm exec tsx benchmarks/src/composition.ts [flags]\n${compositionBench.description}\n\n${FLAGS_HELP}\n`);
    return 0;
  }
  return printOutcome(flags, await compositionBench.run(flags, (line) => process.stderr.write(`${line}\n`)));
});
