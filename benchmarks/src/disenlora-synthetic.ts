/**
 * DisenLoRA's mechanism, measured on a CPU-sized problem (issue: no real weights or GPU here):
 * K = 3 task families whose targets conflict - the same colour word must be translated into
 * French, Spanish or German, the family named in the input - on a tiny random Llama, with the
 * same training budget (epochs over each method's data, learning rate, rank) for every method:
 *
 *   base | SFT on all (rank r and K*r) | each expert | oracle expert (the input's family's) |
 *   linear / TIES / DARE merges of the experts | DisenLoRA (gate scale mean and authors)
 *
 * The pipeline is the real one: the pairs are embedded (input + output, a bag-of-words encoder:
 * the family is recognisable from its words), clustered by spherical k-means (K = 3), one LoRA
 * expert trained per cluster, merged by the lora-merge presets, and the hypernetwork trained over
 * the experts on all rows (input embeddings only), the best validation epoch kept. Reported per
 * family on held-out rows (fillers never seen in training): the mean NLL of the completion tokens
 * and the greedy exact match.
 *
 *   pnpm exec tsx benchmarks/src/disenlora-synthetic.ts [--epochs 12] [--hypernet-epochs 3] [--hypernet-lr 1e-3] [--out DIR] [--json]
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { SphericalKMeans } from "@bdc/cluster";
import { HYPERNET_TRAIN_DEFAULTS, loadExpertStack, readHypernet, trainHypernet } from "@bdc/customize";
import { hashEncoder } from "@bdc/customize/testing";
import {
  CausalLM,
  compositionScale,
  generate,
  loadTrainingData,
  readModelConfig,
  readPeftAdapter,
  scoreTokens,
  TRAIN_DEFAULTS,
  trainLora,
  writePeftAdapter,
  writeSafetensors,
  writeTinyCheckpoint,
  type Composition,
  type GateScale,
  type LoraAdapter,
} from "@bdc/lm-local";
import { mergeToAdapter, specOf } from "@bdc/lora-merge";
import { runIfMain, type Benchmark, type BenchFlags, type BenchOutcome } from "./common.ts";

const FAMILIES = {
  french: { red: "rouge", blue: "bleu", green: "vert", black: "noir" },
  spanish: { red: "rojo", blue: "azul", green: "verde", black: "negro" },
  german: { red: "rot", blue: "blau", green: "gruen", black: "schwarz" },
} as const;
type Family = keyof typeof FAMILIES;
const FAMILY_NAMES = Object.keys(FAMILIES) as Family[];
const FILLERS = ["apple", "house", "river", "stone", "cloud", "table", "music", "water", "light", "paper", "chair", "bread", "glass", "horse", "dream", "earth", "night", "field", "storm", "bird", "metal", "sand", "road", "book", "fire", "snow", "tree", "door", "ship", "coin", "plant", "sugar", "voice", "smile", "lamp", "wolf", "cake", "milk", "rain", "star"];
const RANK = 4;

interface Row {
  readonly family: Family;
  readonly messages: ReadonlyArray<{ role: "user" | "assistant"; content: string }>;
}

const rowsOf = (fillers: ReadonlyArray<string>): Row[] =>
  fillers.flatMap((filler) =>
    FAMILY_NAMES.flatMap((family) =>
      Object.entries(FAMILIES[family]).map(([colour, word]) => ({ family, messages: [{ role: "user" as const, content: `${family}: ${filler} ${colour}` }, { role: "assistant" as const, content: word }] })),
    ),
  );

interface MethodResult {
  readonly method: string;
  readonly loss: Record<Family, number>;
  readonly exact: Record<Family, number>;
  readonly meanLoss: number;
  readonly meanExact: number;
  readonly trainSeconds: number;
}

export async function disenloraSynthetic(options: { epochs: number; hypernetEpochs: number; hypernetLr: number; out: string; threads: number; log: (line: string) => void }): Promise<{ results: MethodResult[]; purity: number; notes: string[] }> {
  const { out, log } = options;
  fs.mkdirSync(out, { recursive: true });
  const cacheDir = path.join(out, "onnx");
  const model = path.join(out, "tiny");
  if (!fs.existsSync(model)) writeTinyCheckpoint(model, { arch: "llama", layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 512, seed: 3, initStd: 0.15 });
  const config = readModelConfig(model);
  const train = rowsOf(FILLERS.slice(0, 30));
  const val = rowsOf(FILLERS.slice(30, 32));
  const test = rowsOf(FILLERS.slice(32));
  const write = (name: string, rows: ReadonlyArray<Row>) => {
    const f = path.join(out, name);
    fs.writeFileSync(f, `${rows.map((r) => JSON.stringify({ messages: r.messages })).join("\n")}\n`);
    return f;
  };
  const trainFile = write("train.jsonl", train);
  const valFile = write("val.jsonl", val);
  const testFile = write("test.jsonl", test);

  // Disentangle: embed input + output, cluster (K = 3), one data file per cluster.
  const encoder = hashEncoder(128);
  const vectors = await encoder.embed(train.map((r) => `${r.messages[0]!.content}\n${r.messages[1]!.content}`));
  const kmeans = await SphericalKMeans.open(options.threads);
  const x = new Float32Array(vectors.length * encoder.dimension);
  vectors.forEach((v, i) => x.set(v, i * encoder.dimension));
  const clustering = await kmeans.fit(x, vectors.length, encoder.dimension, { k: 3, nInit: 4, maxIter: 100, tol: 1e-6, seed: 0 });
  await kmeans.close();
  const centroids = path.join(out, "centroids.safetensors");
  writeSafetensors(centroids, [{ name: "centroids", dtype: "F32", shape: [3, encoder.dimension], data: clustering.centroids }], { model: encoder.model, dimension: String(encoder.dimension), k: "3" });
  const clusterOf = (family: Family) => {
    const counts = [0, 0, 0];
    train.forEach((r, i) => r.family === family && counts[clustering.labels[i]!]!++);
    return counts.indexOf(Math.max(...counts));
  };
  const purity = train.filter((r, i) => clusterOf(r.family) === clustering.labels[i]).length / train.length;
  log(`clusters: sizes ${clustering.sizes.join("/")}, purity ${(purity * 100).toFixed(1)}% (the families' majority clusters)`);
  const clusterFiles = [0, 1, 2].map((k) => write(`cluster-${k}.jsonl`, train.filter((_, i) => clustering.labels[i] === k)));

  const lora = async (name: string, data: string, rank = RANK): Promise<{ dir: string; seconds: number }> => {
    const dir = path.join(out, name);
    const t0 = performance.now();
    const { alreadyDone, report } = await trainLora({ ...TRAIN_DEFAULTS, model, data, out: dir, rank, alpha: 2 * rank, dropout: 0, lr: 3e-2, batch: 16, microBatch: 16, epochs: options.epochs, saveSteps: 1000, threads: options.threads, cacheDir });
    log(`${name}: ${report.steps} steps, final loss ${report.final_loss.toFixed(4)}${alreadyDone ? " (already trained)" : ""}`);
    return { dir, seconds: alreadyDone ? report.seconds : (performance.now() - t0) / 1000 };
  };
  const sftR = await lora("sft-all-r4", trainFile);
  const sftKR = await lora("sft-all-r12", trainFile, 3 * RANK);
  const experts = [];
  for (const k of [0, 1, 2]) experts.push(await lora(`cluster-${k}`, clusterFiles[k]!));
  const expertAdapters = experts.map((e, k) => ({ name: `cluster-${k}`, adapter: readPeftAdapter(e.dir, config) }));
  const expertSeconds = experts.reduce((s, e) => s + e.seconds, 0);

  const merged: Array<[string, LoraAdapter]> = (["linear", "ties", "dare"] as const).map((method) => [method, mergeToAdapter(expertAdapters, config, { method, spec: specOf(method, 3), rank: 3 * RANK, seed: 0 }).adapter]);
  for (const [method, adapter] of merged) writePeftAdapter(path.join(out, `merge-${method}`), adapter, config);

  const hypernets: Array<[GateScale, string, number]> = [];
  for (const gateScale of ["mean", "authors"] as const) {
    const dir = path.join(out, `hypernet-${gateScale}`);
    const t0 = performance.now();
    const { report } = await trainHypernet(
      { ...HYPERNET_TRAIN_DEFAULTS, model, experts: experts.map((e, k) => ({ name: `cluster-${k}`, dir: e.dir })), centroids, data: trainFile, evalData: valFile, out: dir, gateScale, lr: options.hypernetLr, epochs: options.hypernetEpochs, saveSteps: 10_000, threads: options.threads, cacheDir },
      encoder,
    );
    log(`hypernetwork (gate scale ${gateScale}): ${report.steps} steps, validation loss by epoch ${report.eval_loss_by_epoch.map((l) => l.toFixed(4)).join(", ")}, best epoch ${report.best_epoch}`);
    hypernets.push([gateScale, dir, (performance.now() - t0) / 1000 + expertSeconds]);
  }

  // Evaluation: one model with gated slots serves plain adapters (gates of one) and compositions.
  const lm = await CausalLM.load(model, { threads: options.threads, cacheDir, lora: { targets: ["q_proj", "v_proj"], gates: true } });
  const { examples } = loadTrainingData(testFile, lm.tokenizer, { maxLength: 64 });
  const testEmbeddings = await encoder.embed(examples.map((e) => e.input));
  const stack = loadExpertStack(experts.map((e, k) => ({ name: `cluster-${k}`, dir: e.dir })), config);
  const evaluate = async (method: string, adapterFor: (i: number) => LoraAdapter | Composition | undefined, trainSeconds: number): Promise<MethodResult> => {
    const loss = { french: 0, spanish: 0, german: 0 };
    const exact = { french: 0, spanish: 0, german: 0 };
    const counts = { french: 0, spanish: 0, german: 0 };
    for (const [i, e] of examples.entries()) {
      const adapter = adapterFor(i);
      const lp = await scoreTokens(lm, e.ids, adapter);
      let nll = 0;
      let n = 0;
      for (let t = 1; t < e.ids.length; t++) if (e.lossMask[t] === 1) (nll -= lp[t - 1]!), n++;
      const family = test[i]!.family;
      loss[family] += nll / n;
      const prompt = lm.tokenizer.encode(lm.tokenizer.applyChatTemplate(test[i]!.messages.slice(0, 1), { addGenerationPrompt: true }), { addSpecialTokens: false });
      const { text } = await generate(lm, prompt, { maxNewTokens: 6, adapter });
      if (text.trim() === test[i]!.messages[1]!.content) exact[family]++;
      counts[family]++;
    }
    for (const f of FAMILY_NAMES) {
      loss[f] /= counts[f];
      exact[f] /= counts[f];
    }
    const mean = (r: Record<Family, number>) => FAMILY_NAMES.reduce((s, f) => s + r[f], 0) / FAMILY_NAMES.length;
    log(`${method}: held-out loss ${mean(loss).toFixed(4)}, exact match ${(mean(exact) * 100).toFixed(1)}%`);
    return { method, loss, exact, meanLoss: mean(loss), meanExact: mean(exact), trainSeconds };
  };
  const results: MethodResult[] = [];
  try {
    results.push(await evaluate("base (no tuning)", () => undefined, 0));
    const sftRAdapter = readPeftAdapter(sftR.dir, config);
    const sftKRAdapter = readPeftAdapter(sftKR.dir, config);
    results.push(await evaluate(`SFT on all, r ${RANK}`, () => sftRAdapter, sftR.seconds));
    results.push(await evaluate(`SFT on all, r ${3 * RANK}`, () => sftKRAdapter, sftKR.seconds));
    for (const [k, e] of expertAdapters.entries()) results.push(await evaluate(`expert ${k} only (${FAMILY_NAMES.find((f) => clusterOf(f) === k) ?? "?"})`, () => e.adapter, experts[k]!.seconds));
    results.push(await evaluate("oracle expert (the input's family's)", (i) => expertAdapters[clusterOf(test[i]!.family)]!.adapter, expertSeconds));
    for (const [method, adapter] of merged) results.push(await evaluate(`${method === "linear" ? "linear" : method.toUpperCase()} merge`, () => adapter, expertSeconds));
    for (const [gateScale, dir, seconds] of hypernets) {
      const net = readHypernet(dir);
      const scale = compositionScale(stack, gateScale, net.gateMass);
      const compositions = testEmbeddings.map((e): Composition => ({ stack, gates: net.forward(e).gates, scale }));
      results.push(await evaluate(`DisenLoRA (gate scale ${gateScale})`, (i) => compositions[i], seconds));
    }
  } finally {
    await lm.dispose();
  }
  const best = (names: RegExp) => Math.min(...results.filter((r) => names.test(r.method)).map((r) => r.meanLoss));
  const disen = best(/^DisenLoRA/);
  const merge = best(/merge$/);
  const sft = best(/^SFT on all/);
  const notes = [
    `DisenLoRA <= best static merge in held-out loss: ${disen <= merge ? "yes" : "no"} (${disen.toFixed(4)} vs ${merge.toFixed(4)})`,
    `best static merge <= SFT on all: ${merge <= sft ? "yes" : "no"} (${merge.toFixed(4)} vs ${sft.toFixed(4)})`,
  ];
  return { results, purity, notes };
}

export function resultsMarkdown(results: ReadonlyArray<MethodResult>): string {
  const head = `| method | ${FAMILY_NAMES.map((f) => `loss ${f}`).join(" | ")} | loss mean | ${FAMILY_NAMES.map((f) => `EM ${f}`).join(" | ")} | EM mean | train s |`;
  const sep = `|---|${FAMILY_NAMES.map(() => "---:").join("|")}|---:|${FAMILY_NAMES.map(() => "---:").join("|")}|---:|---:|`;
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  const rows = results.map((r) => `| ${r.method} | ${FAMILY_NAMES.map((f) => r.loss[f].toFixed(3)).join(" | ")} | **${r.meanLoss.toFixed(3)}** | ${FAMILY_NAMES.map((f) => pct(r.exact[f])).join(" | ")} | **${pct(r.meanExact)}** | ${r.trainSeconds.toFixed(1)} |`);
  return [head, sep, ...rows].join("\n");
}

/** In `pnpm bench`: a measurement with no target (the issue: report what is measured, whichever way it falls). */
export const disenloraSyntheticBench: Benchmark = {
  name: "disenlora-synthetic",
  description: "DisenLoRA vs SFT, experts and static merges on 3 conflicting synthetic task families (tiny model; a measurement, no target)",
  async run(flags: BenchFlags, log): Promise<BenchOutcome> {
    const out = path.join(os.tmpdir(), `bdc-disenlora-synthetic-${process.pid}`);
    try {
      const { results, purity, notes } = await disenloraSynthetic({ epochs: 12, hypernetEpochs: 3, hypernetLr: 1e-3, out, threads: Math.min(2, os.availableParallelism()), log });
      const text = [`disenlora-synthetic: held-out NLL and greedy exact match per family (3 families, ${FILLERS.length - 32} unseen fillers x 4 colours each); cluster purity ${(purity * 100).toFixed(1)}%`, "", resultsMarkdown(results), "", ...notes.map((n) => `- ${n}`), "", "MEASURED: no target (see README, Customize)"].join("\n");
      return { pass: true, text, json: { results, purity, notes, flags: { reps: flags.reps ?? null } } };
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  },
};

runIfMain(import.meta.url, "disenlora-synthetic", async (argv) => {
  const { values } = parseArgs({ args: [...argv], options: { epochs: { type: "string", default: "12" }, "hypernet-epochs": { type: "string", default: "3" }, "hypernet-lr": { type: "string", default: "1e-3" }, out: { type: "string" }, threads: { type: "string" }, json: { type: "boolean", default: false } } });
  const out = path.resolve(values.out ?? path.join(os.tmpdir(), "bdc-disenlora-synthetic"));
  const t0 = performance.now();
  const { results, purity, notes } = await disenloraSynthetic({ epochs: Number(values.epochs), hypernetEpochs: Number(values["hypernet-epochs"]), hypernetLr: Number(values["hypernet-lr"]), out, threads: Number(values.threads ?? Math.min(2, os.availableParallelism())), log: (l) => process.stderr.write(`${l}\n`) });
  if (values.json) process.stdout.write(`${JSON.stringify({ results, purity, notes }, null, 2)}\n`);
  else process.stdout.write(`${resultsMarkdown(results)}\n\ncluster purity ${(purity * 100).toFixed(1)}%; ${notes.join("; ")}; ${((performance.now() - t0) / 1000).toFixed(0)} s in all (work in ${out})\n`);
  return 0;
});
