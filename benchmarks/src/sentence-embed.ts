/**
 * Embedding speed and parity of encoder/onnx's pipeline (plugins/lm-local/src/model/
 * sentence-encoder.ts: WordPiece tokenization, length-sorted batches, ONNX Runtime, mean pooling,
 * L2 normalisation) against the same model written in PyTorch (benchmarks/python/
 * sentence_reference.py, Debian's python3-torch), side by side in one run: a BERT-sized
 * vocabulary (30 000 words) and hidden size (384), one masked self-attention layer, 2 000 texts of
 * 8-120 words, batches of 32, the same thread count. PyTorch gets the token ids ready-made and
 * padded (its time is the forward and pooling alone); ours includes tokenizing and padding. Also
 * ours with batches in input order (no length sorting), to show what the sorting buys.
 *
 * Targets: time <= 1.0x PyTorch's; vectors equal to 1e-5 (max abs difference).
 *
 *   pnpm exec tsx benchmarks/src/sentence-embed.ts [--items N] [--reps R] [--json]
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { encodeTruncated, mulberry32, openSentenceEncoder, writeTinySentenceModel } from "@bdc/lm-local";
import { fmt, FLAGS_HELP, median, parseFlags, printOutcome, runIfMain, type Benchmark, type BenchFlags, type BenchOutcome } from "./common.ts";
import { findPython } from "./torch-reference.ts";

const HIDDEN = 384;
const WORDS = 30_000;
const BATCH = 32;
const MAX_TOKENS = 128;
const SCRIPT = path.resolve(import.meta.dirname, "../python/sentence_reference.py");

function texts(n: number, seed: number): string[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => Array.from({ length: 8 + Math.floor(r() * 113) }, () => `w${Math.floor(r() * WORDS)}`).join(" "));
}

async function timeEmbed(embed: () => Promise<Float32Array[]>, reps: number): Promise<{ seconds: number[]; vectors: Float32Array[] }> {
  let vectors = await embed(); // warm-up
  const seconds: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    vectors = await embed();
    seconds.push((performance.now() - t) / 1000);
  }
  return { seconds, vectors };
}

export const sentenceEmbed: Benchmark = {
  name: "sentence-embed",
  description: "encoder/onnx pipeline (tokenize, sorted batches, ORT, mean pooling) vs the same model in PyTorch",
  async run(flags: BenchFlags, log): Promise<BenchOutcome> {
    const n = flags.items ?? 2000;
    const reps = flags.reps ?? 3;
    const threads = os.availableParallelism();
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-bench-sentence-"));
    try {
      const w = writeTinySentenceModel(path.join(work, "model"), { hidden: HIDDEN, extraWords: WORDS, maxSeqLength: MAX_TOKENS }, 7);
      const input = texts(n, 1);
      const sorted = await openSentenceEncoder(path.join(work, "model"), { device: "cpu", threads });
      const unsorted = await openSentenceEncoder(path.join(work, "model"), { device: "cpu", threads, sortByLength: false });
      const ours = await timeEmbed(() => sorted.embed(input, BATCH), reps);
      log(`ours: ${ours.seconds.map((s) => `${(s * 1000).toFixed(0)} ms`).join(", ")}`);
      const inOrder = await timeEmbed(() => unsorted.embed(input, BATCH), reps);
      log(`ours, batches in input order: ${inOrder.seconds.map((s) => `${(s * 1000).toFixed(0)} ms`).join(", ")}`);
      await unsorted.close();

      // PyTorch gets our batches: the ids in the order the sorted encoder ran them.
      const encoded = input.map((t) => encodeTruncated(sorted.tokenizer, t, MAX_TOKENS));
      await sorted.close();
      const order = encoded.map((_, i) => i).sort((a, b) => encoded[a]!.length - encoded[b]!.length);
      fs.writeFileSync(path.join(work, "ids.jsonl"), order.map((i) => `${JSON.stringify(encoded[i])}\n`).join(""));
      const weights = new Float32Array(w.E.length + w.T.length);
      weights.set(w.E);
      weights.set(w.T, w.E.length);
      fs.writeFileSync(path.join(work, "weights.f32"), new Uint8Array(weights.buffer));
      const py = findPython("torch", "apt-get install python3-torch");
      let theirs = Number.NaN;
      let maxDiff = Number.NaN;
      let torchVersion = "";
      if ("python" in py) {
        const vocab = w.E.length / HIDDEN;
        const r = spawnSync(
          py.python,
          [SCRIPT, "--weights", path.join(work, "weights.f32"), "--ids", path.join(work, "ids.jsonl"), "--vocab", String(vocab), "--hidden", String(HIDDEN), "--batch", String(BATCH), "--threads", String(threads), "--repeats", String(reps), "--out", path.join(work, "torch.f32")],
          { encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: String(threads) } },
        );
        if (r.status !== 0) throw new Error(`sentence_reference.py failed: ${r.stderr}`);
        const j = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { seconds: number[]; torch: string };
        theirs = median(j.seconds);
        torchVersion = j.torch;
        log(`PyTorch ${j.torch}: ${j.seconds.map((s) => `${(s * 1000).toFixed(0)} ms`).join(", ")}`);
        const ref = new Float32Array(new Uint8Array(fs.readFileSync(path.join(work, "torch.f32"))).buffer);
        maxDiff = 0;
        order.forEach((i, row) => {
          for (let j = 0; j < HIDDEN; j++) maxDiff = Math.max(maxDiff, Math.abs(ref[row * HIDDEN + j]! - ours.vectors[i]![j]!));
        });
      }
      const tokens = encoded.reduce((a, e) => a + e.length, 0);
      const t = { ours: median(ours.seconds), inOrder: median(inOrder.seconds), theirs };
      const measured = Number.isFinite(theirs);
      const pass = measured && t.ours <= theirs && maxDiff <= 1e-5;
      const text = [
        `sentence-embed: ${n} texts (${tokens} tokens), vocabulary ${WORDS + 27}, hidden ${HIDDEN}, batches of ${BATCH}, ${threads} threads, median of ${reps}`,
        measured ? `PyTorch ${torchVersion} (the forward and pooling only; ids given ready-made)` : `python3-torch is not installed (${(py as { missing: string }).missing}): nothing to compare with`,
        "",
        "| pipeline | time | texts/s | ratio to PyTorch |",
        "|---|---|---|---|",
        `| encoder/onnx (tokenize + sorted batches + ORT + pooling) | ${fmt(t.ours * 1000, 0)} ms | ${fmt(n / t.ours, 0)} | ${fmt(t.ours / theirs)}x |`,
        `| encoder/onnx, batches in input order | ${fmt(t.inOrder * 1000, 0)} ms | ${fmt(n / t.inOrder, 0)} | ${fmt(t.inOrder / theirs)}x |`,
        `| PyTorch | ${fmt(theirs * 1000, 0)} ms | ${fmt(n / theirs, 0)} | 1.00x |`,
        "",
        `vectors: max abs difference to PyTorch ${maxDiff.toExponential(2)}`,
        `${pass ? "PASS" : "FAIL"}: target time <= 1.0x PyTorch's, vectors within 1e-5`,
      ].join("\n");
      return { pass, text, json: { n, tokens, threads, reps, seconds: t, maxDiff } };
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  },
};

async function main(argv: ReadonlyArray<string>): Promise<number> {
  const flags = parseFlags(argv);
  if (flags.help) {
    process.stdout.write(`usage: pnpm exec tsx benchmarks/src/sentence-embed.ts [flags]\n${sentenceEmbed.description}\n\n${FLAGS_HELP}\n`);
    return 0;
  }
  return printOutcome(flags, await sentenceEmbed.run(flags, (line) => process.stderr.write(`${line}\n`)));
}

runIfMain(import.meta.url, "sentence-embed", main);
