/**
 * An adapter folder written by PEFT itself (save_pretrained of PEFT 0.21 with transformers 5.17,
 * on the project's GPU machine: fixtures/peft-0.21, with PEFT's log-probabilities of it on a
 * generated tiny model) loads with our reader, and our runtime gives PEFT's log-probabilities.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readModelConfig } from "../checkpoint/config.ts";
import { writeTinyCheckpoint, type TinyCheckpointOptions } from "../checkpoint/make-tiny.ts";
import { CausalLM } from "../model/causal-lm.ts";
import { scoreTokens } from "../model/score.ts";
import { moduleKey, type LoraAdapter, type LoraModule } from "./adapter.ts";
import { readPeftAdapter, writePeftAdapter } from "./peft.ts";

const fixture = path.join(import.meta.dirname, "fixtures", "peft-0.21");
const root = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-peft-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

test("an adapter PEFT 0.21 saved: read with PEFT's own config keys, and PEFT's log-probabilities to 1e-4", async () => {
  const expected = JSON.parse(fs.readFileSync(path.join(fixture, "expected.json"), "utf8")) as { model: TinyCheckpointOptions; tokens: number[]; peft_logprobs: number[] };
  const model = path.join(root, "model");
  writeTinyCheckpoint(model, expected.model);
  const adapter = readPeftAdapter(fixture, readModelConfig(model));
  assert.deepEqual([adapter.config.rank, adapter.config.alpha, adapter.config.targets, adapter.config.layers], [4, 8, ["q_proj", "v_proj"], [0, 1]]);
  const lm = await CausalLM.load(model, { adapter: fixture, threads: 1, cacheDir: path.join(root, "onnx") });
  try {
    const ours = await scoreTokens(lm, expected.tokens);
    const worst = Math.max(...ours.map((x, i) => Math.abs(x - expected.peft_logprobs[i]!)));
    assert.ok(worst < 1e-4, `max |ours - PEFT| = ${worst}`);
  } finally {
    await lm.dispose();
  }
});

test("PEFT folders round-trip: what writePeftAdapter writes, readPeftAdapter reads back bit for bit", () => {
  const dir = path.join(root, "roundtrip");
  writeTinyCheckpoint(dir, { arch: "qwen2", layers: 2, hidden: 64, heads: 4, kvHeads: 1, vocab: 384, seed: 2 });
  const config = readModelConfig(dir);
  const H = config.hiddenSize;
  const I = config.intermediateSize;
  let seed = 11;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5);
  const modules = new Map<string, LoraModule>([
    [moduleKey(1, "k_proj"), { A: Float32Array.from({ length: 4 * H }, rand), B: Float32Array.from({ length: config.numKvHeads * config.headDim * 4 }, rand) }],
    [moduleKey(1, "up_proj"), { A: Float32Array.from({ length: 4 * H }, rand), B: Float32Array.from({ length: I * 4 }, rand) }],
  ]);
  const adapter: LoraAdapter = { config: { rank: 4, alpha: 8, rslora: true, dropout: 0.1, targets: ["k_proj", "up_proj"], layers: [1], baseModel: "Qwen/Qwen2.5-0.5B" }, modules };
  const out = path.join(root, "roundtrip-adapter");
  writePeftAdapter(out, adapter, config);
  const json = JSON.parse(fs.readFileSync(path.join(out, "adapter_config.json"), "utf8")) as Record<string, unknown>;
  assert.deepEqual([json["r"], json["lora_alpha"], json["use_rslora"], json["lora_dropout"], json["target_modules"], json["layers_to_transform"], json["base_model_name_or_path"], json["task_type"]], [4, 8, true, 0.1, ["k_proj", "up_proj"], [1], "Qwen/Qwen2.5-0.5B", "CAUSAL_LM"]);
  const back = readPeftAdapter(out, config);
  assert.deepEqual(back.config, adapter.config);
  for (const [k, m] of modules) {
    assert.deepEqual(back.modules.get(k)!.A, m.A);
    assert.deepEqual(back.modules.get(k)!.B, m.B);
  }
  assert.deepEqual(fs.readdirSync(out).sort(), ["adapter_config.json", "adapter_model.safetensors"], "no temporary files left");
});
