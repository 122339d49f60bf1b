/**
 * The trainer on tiny generated models: it learns a small task (held-out loss and greedy
 * generation), packing and padding compute the same step, a diverging run stops on the first
 * non-finite loss with its last good checkpoint intact, a full disk while checkpointing leaves the
 * previous checkpoint intact and the run resumes, and bad arguments are refused with the reason.
 * (PyTorch parity and kill -9 resume: tests/lora-training/.)
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import { writeTinyCheckpoint } from "../checkpoint/make-tiny.ts";
import { readModelConfig } from "../checkpoint/config.ts";
import { openCheckpointWeights, writeCheckpointWeights } from "../checkpoint/safetensors.ts";
import { loadTokenizer } from "../checkpoint/tokenizer.ts";
import { initLoraAdapter, moduleKey, normalizeLoraConfig } from "../lora/adapter.ts";
import { readPeftAdapter, writePeftAdapter } from "../lora/peft.ts";
import { CausalLM } from "../model/causal-lm.ts";
import { generate } from "../model/generate.ts";
import { scoreTokens } from "../model/score.ts";
import { epochSteps } from "./batching.ts";
import { diskIo, type CheckpointIo } from "./checkpoints.ts";
import { loadTrainingData } from "./data.ts";
import { dropoutOnDeviceWarning, TRAIN_DEFAULTS, trainLora, type TrainArgs } from "./trainer.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-trainer-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const cacheDir = path.join(root, "onnx");

function model(name: string, initStd = 0.02): string {
  const dir = path.join(root, name);
  if (!fs.existsSync(dir)) writeTinyCheckpoint(dir, { arch: "llama", layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 512, seed: 3, initStd });
  return dir;
}

function jsonl(name: string, rows: ReadonlyArray<unknown>): string {
  const f = path.join(root, name);
  fs.writeFileSync(f, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return f;
}

// The task: a keyword in the prompt decides the answer; filler words vary. Held-out rows use fillers never seen in training.
const COLOURS: Record<string, string> = { red: "rouge", blue: "bleu", green: "vert", black: "noir" };
const FILLERS = ["apple", "house", "river", "stone", "cloud", "table", "music", "water", "light", "paper", "chair", "bread", "glass", "horse", "dream", "earth", "night", "field", "storm", "bird", "metal", "sand", "road", "book", "fire", "snow", "tree", "door", "ship", "coin", "plant", "sugar", "voice", "smile", "lamp", "wolf"];
const chat = (filler: string, colour: string) => ({ messages: [{ role: "user", content: `${filler} ${colour}` }, { role: "assistant", content: COLOURS[colour]! }] });
const TRAIN_ROWS = FILLERS.slice(0, 30).flatMap((f) => Object.keys(COLOURS).map((c) => chat(f, c)));
const HELD_OUT = FILLERS.slice(30).flatMap((f) => Object.keys(COLOURS).map((c) => chat(f, c)));

const args = (over: Partial<TrainArgs> & Pick<TrainArgs, "model" | "data" | "out">): TrainArgs => ({ ...TRAIN_DEFAULTS, threads: 1, cacheDir, ...over });

/** Mean NLL of the completion tokens of `file`'s rows, scored by the inference graph (independent of the trainer's loss). */
async function heldOutLoss(dir: string, file: string, adapter?: string): Promise<number> {
  const lm = await CausalLM.load(dir, { threads: 1, cacheDir, adapter });
  try {
    const { examples } = loadTrainingData(file, lm.tokenizer, { maxLength: 256 });
    let total = 0;
    let count = 0;
    for (const e of examples) {
      const lp = await scoreTokens(lm, e.ids);
      for (let t = 1; t < e.ids.length; t++) {
        if (e.lossMask[t] === 0) continue;
        total -= lp[t - 1]!;
        count++;
      }
    }
    return total / count;
  } finally {
    await lm.dispose();
  }
}

test("it learns: held-out loss falls from ~6 to below 0.5, and greedy generation gives every held-out target", async () => {
  const dir = model("learn", 0.15);
  const data = jsonl("learn-train.jsonl", TRAIN_ROWS);
  const held = jsonl("learn-held.jsonl", HELD_OUT);
  const out = path.join(root, "learn-out");
  const before = await heldOutLoss(dir, held);
  const { report } = await trainLora(args({ model: dir, data, evalData: held, out, batch: 16, epochs: 20, lr: 3e-2, dropout: 0, saveSteps: 100 }));
  const after = await heldOutLoss(dir, held, out);
  assert.ok(before > 3, `the base model does not know the task: held-out loss ${before}`);
  assert.ok(after < 0.5, `held-out loss after training: ${after}`);
  assert.ok(Math.abs(after - report.eval_loss!) < 1e-4 * Math.max(1, after), `the trainer's eval loss ${report.eval_loss} equals the inference graph's ${after}`);
  const lm = await CausalLM.load(dir, { threads: 1, cacheDir, adapter: out });
  try {
    for (const row of HELD_OUT) {
      const prompt = lm.tokenizer.encode(lm.tokenizer.applyChatTemplate(row.messages.slice(0, 1), { addGenerationPrompt: true }));
      const { text } = await generate(lm, prompt, { maxNewTokens: 8 });
      assert.equal(text, row.messages[1]!.content, `held out: ${row.messages[0]!.content}`);
    }
  } finally {
    await lm.dispose();
  }
});

test("packing and padding compute the same step (loss and updated adapter)", async () => {
  const dir = model("pack");
  const rows = TRAIN_ROWS.slice(0, 12).map((r, i) => (i % 3 === 0 ? { prompt: `${r.messages[0]!.content} `.repeat(1 + (i % 4)), completion: r.messages[1]!.content } : r));
  const data = jsonl("pack.jsonl", rows);
  const run = (packing: boolean) => trainLora(args({ model: dir, data, out: path.join(root, `pack-${packing}`), batch: 12, microBatch: 3, maxLength: 96, packing, maxSteps: 1, dropout: 0 }));
  const [padded, packed] = [await run(false), await run(true)];
  assert.ok(Math.abs(padded.report.final_loss - packed.report.final_loss) < 1e-5 * padded.report.final_loss, `${padded.report.final_loss} vs ${packed.report.final_loss}`);
  const config = readModelConfig(dir);
  const a = readPeftAdapter(padded.adapterDir, config);
  const b = readPeftAdapter(packed.adapterDir, config);
  let worst = 0;
  for (const [k, m] of a.modules) for (const [x, y] of [[m.A, b.modules.get(k)!.A], [m.B, b.modules.get(k)!.B]] as const) for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  // One AdamW step moves each weight by ~lr (1e-3); the two layouts differ by float32 summation order.
  assert.ok(worst < 1e-6, `max |padded - packed| = ${worst}`);
});

test("a non-finite loss stops the run, naming the step and rows; the last good checkpoint is kept and resumable", async () => {
  // A corrupt weight: the embedding rows of the bytes of "§" are NaN, and only the last data row has a "§".
  const dir = model("diverge");
  const weights = openCheckpointWeights(dir);
  const tensors = weights.names().map((name) => ({ name, dtype: "F32" as const, shape: weights.info(name).shape, data: weights.readFloat32(name) }));
  weights.close();
  const H = readModelConfig(dir).hiddenSize;
  const poisoned = loadTokenizer(dir).encode("§");
  const embed = tensors.find((t) => t.name === "model.embed_tokens.weight")!;
  for (const id of poisoned) embed.data.fill(Number.NaN, id * H, (id + 1) * H);
  writeCheckpointWeights(dir, tensors);
  const rows = [...TRAIN_ROWS.slice(0, 15), { messages: [{ role: "user", content: "what is §?" }, { role: "assistant", content: "a section sign" }] }];
  const data = jsonl("diverge.jsonl", rows);
  // A seed whose order puts the poisoned row (index 15) into the third step or later.
  const seed = [1, 2, 3, 4, 5, 6, 7, 8].find((s) => epochSteps(16, 4, s, 0).findIndex((st) => st.includes(15)) >= 2)!;
  const bad = epochSteps(16, 4, seed, 0).findIndex((st) => st.includes(15)) + 1;
  const out = path.join(root, "diverge-out");
  const a = args({ model: dir, data, out, batch: 4, microBatch: 2, saveSteps: 1, seed });
  await assert.rejects(trainLora(a), (e: unknown) => {
    assert.ok(e instanceof BdcError && e.code === "BDC_TRAIN_NONFINITE", String(e));
    assert.match(e.message, new RegExp(`^step ${bad}, micro-batch \\d of 2: the loss is NaN \\(rows .*diverge\\.jsonl:16`));
    assert.match(e.hint ?? "", new RegExp(`checkpoint-${bad - 1} \\(the last good state\\) is kept`));
    return true;
  });
  assert.deepEqual(fs.readdirSync(out).filter((n) => n.startsWith("checkpoint-")).sort(), [`checkpoint-${bad - 2}`, `checkpoint-${bad - 1}`].filter((n) => n !== "checkpoint-0"));
  const saved = readPeftAdapter(path.join(out, `checkpoint-${bad - 1}`), readModelConfig(dir));
  for (const m of saved.modules.values()) assert.ok([...m.A, ...m.B].every(Number.isFinite), "the kept checkpoint holds finite weights");
  assert.ok(!fs.existsSync(path.join(out, "adapter_model.safetensors")), "no final adapter from a failed run");
});

test("a full disk while checkpointing: the previous checkpoint stays intact, and the same run resumes from it", async () => {
  const dir = model("disk");
  const data = jsonl("disk.jsonl", TRAIN_ROWS.slice(0, 24));
  const out = path.join(root, "disk-out");
  let files = 0;
  // The disk fills up in the middle of the second checkpoint (its third file).
  const fullDisk: CheckpointIo = {
    writeFile(file, bytes) {
      if (++files === 7) {
        fs.writeFileSync(file, typeof bytes === "string" ? bytes.slice(0, 3) : bytes.subarray(0, 3));
        throw Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: "ENOSPC" });
      }
      diskIo.writeFile(file, bytes);
    },
  };
  const a = args({ model: dir, data, out, batch: 4, saveSteps: 2, dropout: 0.1 });
  await assert.rejects(trainLora(a, { io: fullDisk }), (e: unknown) => e instanceof BdcError && e.code === "BDC_TRAIN_CHECKPOINT" && /no space left on device/.test(e.message) && /checkpoint-2 \(step 2\) is intact/.test(e.message) && /free disk space/.test(e.hint ?? ""));
  assert.deepEqual(fs.readdirSync(out).filter((n) => n.includes("checkpoint")), ["checkpoint-2"], "no half-written checkpoint left behind");
  const logs: string[] = [];
  const resumed = await trainLora(a, { log: (l) => logs.push(l) });
  assert.ok(logs.some((l) => /resuming from checkpoint-2 \(step 2 of 6\)/.test(l)), logs.join("\n"));
  const straight = await trainLora({ ...a, out: path.join(root, "disk-straight") });
  assert.deepEqual(fs.readFileSync(path.join(resumed.adapterDir, "adapter_model.safetensors")), fs.readFileSync(path.join(straight.adapterDir, "adapter_model.safetensors")), "bit-identical to an uninterrupted run");
});

test("bad arguments: unknown targets, layers out of range, an init adapter of another shape, another run's folder", async () => {
  const dir = model("bad");
  const data = jsonl("bad.jsonl", TRAIN_ROWS.slice(0, 4));
  const config = readModelConfig(dir);
  await assert.rejects(trainLora(args({ model: dir, data, out: path.join(root, "bad1"), targets: ["qkv_proj" as never] })), (e: unknown) => e instanceof BdcError && e.code === "BDC_LORA_CONFIG" && /q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj/.test(e.hint ?? ""));
  await assert.rejects(trainLora(args({ model: dir, data, out: path.join(root, "bad2"), layers: [0, 5] })), (e: unknown) => e instanceof BdcError && /layer 5 does not exist: .* has layers 0-1/.test(e.message));
  const init = path.join(root, "init-r4");
  writePeftAdapter(init, initLoraAdapter(config, normalizeLoraConfig({ rank: 4, alpha: 8, rslora: false, dropout: 0, targets: ["q_proj", "v_proj"] }, config), 1), config);
  await assert.rejects(trainLora(args({ model: dir, data, out: path.join(root, "bad3"), init })), (e: unknown) => e instanceof BdcError && e.code === "BDC_ADAPTER_INVALID" && /has rank 4 .* this run trains rank 8/.test(e.message));
  // With a matching init adapter training starts from it.
  const r = await trainLora(args({ model: dir, data, out: path.join(root, "ok-init"), init, rank: 4, alpha: 8, maxSteps: 1 }));
  assert.equal(readPeftAdapter(r.adapterDir, config).config.rank, 4);
  assert.ok(readPeftAdapter(init, config).modules.get(moduleKey(0, "q_proj"))!.A.length > 0);
  await assert.rejects(trainLora(args({ model: dir, data, out: path.join(root, "ok-init"), init, rank: 4, alpha: 8, maxSteps: 1, lr: 5e-4 })), (e: unknown) => e instanceof BdcError && e.code === "BDC_RESUME_MISMATCH" && /lr was 0\.001, now 0\.0005/.test(e.message));
  await assert.rejects(trainLora(args({ model: dir, data, out: path.join(root, "bad4"), batch: 0 })), (e: unknown) => e instanceof BdcError && /batch must be a positive integer/.test(e.message));
});

test("on a GPU, dropout's host-drawn masks are announced with their size per micro-batch", () => {
  const line = dropoutOnDeviceWarning([{ inDim: 2048 }, { inDim: 2048 }], 4, 512, "webgpu");
  assert.equal(line, "note: with dropout > 0 the LoRA dropout masks are drawn on the host and sent to webgpu with every micro-batch (up to 32 MB, 8M random draws); dropout 0 (--dropout 0) keeps a step on the GPU");
});
