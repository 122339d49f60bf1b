/**
 * Our merges against PEFT's `add_weighted_adapter`, which the development machines cannot run
 * (the project's GPU machine can):
 *
 *   pnpm exec tsx benchmarks/src/peft-merge-check.ts prepare DIR          # here: experts and our merges
 *   python3 benchmarks/python/peft_merge_check.py --input DIR --out OUT   # where PEFT is installed
 *
 * Each combination is merged here the way PEFT computes it: its SVD types (`svd`, `ties_svd`,
 * `dare_*_svd`) in the delta space with the rank truncation PEFT uses (weights w * scale, see
 * below), its plain types (`ties`, `dare_linear`, `dare_ties`) in our labelled factor space, `cat`
 * exactly. DARE draws random masks; the check hands PEFT ours, call by call (the two visit the
 * modules and adapters in the same order). PEFT's SVD types scale each adapter twice (its weights
 * are w * scale and get_delta_weight includes the scale too), so they are compared with our merge
 * at weights w * scale; `svd_plain` measures that factor.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { initLoraAdapter, loraScale, normalizeLoraConfig, readModelConfig, writePeftAdapter, writeTinyCheckpoint } from "@bdc/lm-local";
import { concatenate, mergeFactors, mergeToAdapter, type NamedAdapter } from "../../plugins/lora-merge/src/merge.ts";
import type { MergeSpec } from "../../plugins/lora-merge/src/merge-core.ts";
import { specOf } from "../../plugins/lora-merge/src/presets.ts";

interface Combination {
  readonly name: string;
  /** PEFT's combination_type. */
  readonly peft: string;
  readonly weights: number[];
  readonly density: number | null;
  readonly dir: string;
  /** Our masks in PEFT's call order (DARE), or null. */
  readonly masks: string | null;
}

async function prepare(dir: string): Promise<void> {
  fs.rmSync(dir, { recursive: true, force: true });
  const modelDir = path.join(dir, "model");
  writeTinyCheckpoint(modelDir, { arch: "llama", layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, vocab: 300, seed: 5, initStd: 0.1 });
  const model = readModelConfig(modelDir);
  const experts: NamedAdapter[] = [1, 2, 3].map((seed) => {
    const a = initLoraAdapter(model, normalizeLoraConfig({ rank: 4, alpha: 8, rslora: false, dropout: 0, targets: ["q_proj", "v_proj"] }, model), seed);
    let s = seed * 13;
    for (const m of a.modules.values()) for (let i = 0; i < m.B.length; i++) m.B[i] = ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 0.5;
    const folder = path.join(dir, `expert-${seed}`);
    writePeftAdapter(folder, a, model);
    return { name: folder, adapter: a };
  });
  const w = [1, 0.6, 0.8];
  const scale = loraScale(experts[0]!.adapter.config);
  const ws = w.map((x) => x * scale);
  const combos: Combination[] = [];
  const write = (name: string, peft: string, density: number | null, build: (onTrace: (key: string, t: { masks: Uint8Array[] }) => void) => { adapter: import("@bdc/lm-local").LoraAdapter }) => {
    const masks: Uint8Array[] = [];
    const out = path.join(dir, "ours", name);
    const { adapter } = build((_key, t) => masks.push(...t.masks));
    writePeftAdapter(out, adapter, model);
    let maskDir: string | null = null;
    if (masks.length > 0) {
      maskDir = path.join(dir, "masks", name);
      fs.mkdirSync(maskDir, { recursive: true });
      masks.forEach((m, i) => fs.writeFileSync(path.join(maskDir!, `${String(i).padStart(4, "0")}.u8`), m));
    }
    combos.push({ name, peft, weights: w, density, dir: path.relative(dir, out), masks: maskDir === null ? null : path.relative(dir, maskDir) });
  };
  const delta = (spec: MergeSpec, method: string) => (onTrace: (key: string, t: { masks: Uint8Array[] }) => void) => mergeToAdapter(experts, model, { method, spec, rank: 4, seed: 3, onTrace });
  const factors = (spec: MergeSpec, method: string) => (onTrace: (key: string, t: { masks: Uint8Array[] }) => void) => mergeFactors(experts, model, { method, spec, seed: 3, onTrace });
  write("cat", "cat", null, () => concatenate(experts, model, w));
  write("svd", "svd", null, delta({ weights: ws, lambda: 1 }, "task-arithmetic"));
  write("svd_plain", "svd", null, delta({ weights: w, lambda: 1 }, "task-arithmetic"));
  write("ties_svd", "ties_svd", 0.5, delta({ ...specOf("ties", 3, { density: 0.5 }), weights: ws }, "ties"));
  write("dare_linear_svd", "dare_linear_svd", 0.5, delta({ ...specOf("dare", 3, { density: 0.5, lambda: 1 }), weights: ws }, "dare"));
  write("dare_ties_svd", "dare_ties_svd", 0.5, delta({ ...specOf("dare", 3, { density: 0.5, lambda: 1, ties: true }), weights: ws }, "dare"));
  write("ties", "ties", 0.5, factors({ ...specOf("ties", 3, { density: 0.5 }), weights: w }, "ties"));
  write("dare_linear", "dare_linear", 0.5, factors({ ...specOf("dare", 3, { density: 0.5, lambda: 1 }), weights: w }, "dare"));
  write("dare_ties", "dare_ties", 0.5, factors({ ...specOf("dare", 3, { density: 0.5, lambda: 1, ties: true }), weights: w }, "dare"));
  write("linear", "linear", null, factors({ weights: w, lambda: 1 }, "linear"));
  fs.writeFileSync(path.join(dir, "combos.json"), JSON.stringify({ experts: experts.map((e) => path.relative(dir, e.name)), combos }, null, 1));
  process.stdout.write(`prepared ${dir}: ${combos.length} combinations\n`);
}

const [mode, dir] = process.argv.slice(2);
if (mode === "prepare" && dir !== undefined) await prepare(path.resolve(dir));
else {
  process.stderr.write("usage: peft-merge-check.ts prepare DIR (then benchmarks/python/peft_merge_check.py --input DIR --out OUT)\n");
  process.exitCode = 2;
}
