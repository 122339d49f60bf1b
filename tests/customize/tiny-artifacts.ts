/**
 * What the Customize end-to-end tests start from, generated: a tiny student checkpoint, K expert
 * adapters (PEFT folders with random B, so that each changes the model), a tiny sentence encoder
 * (ONNX, 8-d), centroids for it, and training/validation rows; and the hypernetwork trained over
 * them by the real CLI (fixtures/hypernet.yaml).
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { initLoraAdapter, mulberry32, normalizeLoraConfig, readModelConfig, writePeftAdapter, writeSafetensors, writeTinyCheckpoint, writeTinySentenceModel, type ModelArch } from "@bdc/lm-local";
import { runBdc } from "../cli.ts";

export const FIXTURES = path.join(import.meta.dirname, "fixtures");

export interface TinyArtifacts {
  readonly model: string;
  readonly experts: ReadonlyArray<string>;
  readonly sentence: string;
  readonly centroids: string;
  readonly train: string;
  readonly val: string;
}

export function makeTinyArtifacts(dir: string, o: { arch: ModelArch; seed: number; trainRows: number; valRows: number; layers?: number[] }): TinyArtifacts {
  const model = path.join(dir, "tiny");
  writeTinyCheckpoint(model, { arch: o.arch, layers: 2, hidden: 32, heads: 2, kvHeads: 1, seed: o.seed, initStd: 0.1 });
  const config = readModelConfig(model);
  const experts = [0, 1].map((k) => {
    const a = initLoraAdapter(config, normalizeLoraConfig({ rank: 2, alpha: 4, rslora: false, dropout: 0, targets: ["q_proj", "v_proj"], layers: o.layers }, config), o.seed + k);
    const rand = mulberry32(o.seed + k);
    for (const m of a.modules.values()) for (let i = 0; i < m.B.length; i++) m.B[i] = (rand() * 2 - 1) * 0.5;
    const out = path.join(dir, `cluster-${k}`);
    writePeftAdapter(out, a, config);
    return out;
  });
  const sentence = path.join(dir, "sentence");
  writeTinySentenceModel(sentence);
  const rand = mulberry32(o.seed + 10);
  const centroids = path.join(dir, "centroids.safetensors");
  writeSafetensors(centroids, [{ name: "centroids", dtype: "F32", shape: [2, 8], data: Float32Array.from({ length: 16 }, () => rand() - 0.5) }]);
  const rows = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ messages: [{ role: "user", content: `${i % 2 ? "sort" : "sum"} the numbers ${i}` }, { role: "assistant", content: i % 2 ? "sorted(xs)" : "sum(xs)" }] })).join("\n");
  const train = path.join(dir, "train.jsonl");
  const val = path.join(dir, "val.jsonl");
  fs.writeFileSync(train, `${rows(o.trainRows)}\n`);
  fs.writeFileSync(val, `${rows(o.valRows)}\n`);
  return { model, experts, sentence, centroids, train, val };
}

/** The --set flags of fixtures/hypernet.yaml for these artifacts. */
export function hypernetSets(a: TinyArtifacts, extra: Record<string, string> = {}): string[] {
  const values: Record<string, string> = {
    "encoder.with.model": a.sentence,
    "hypernet.with.model": a.model,
    "hypernet.with.experts": `[${a.experts.join(", ")}]`,
    "hypernet.with.centroids": a.centroids,
    "hypernet.with.data": a.train,
    "hypernet.with.eval_data": a.val,
    ...extra,
  };
  return Object.entries(values).flatMap(([k, v]) => ["--set", `plugins.${k}=${v}`]);
}

/** Trains the hypernetwork with `bdc run fixtures/hypernet.yaml`; returns its folder. */
export function trainTinyHypernet(a: TinyArtifacts, run: string, onnxCache: string): string {
  const r = runBdc(FIXTURES, ["run", "hypernet.yaml", "--out", run, ...hypernetSets(a)], { onnxCache, timeoutMs: 180_000 });
  assert.equal(r.code, 0, r.err);
  return path.join(run, "steps/hypernet/hypernet");
}
