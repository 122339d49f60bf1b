/**
 * The PyTorch side of the device check: which PyTorch this machine has (transformers + PEFT, the
 * anchor; else the project's plain-torch reference on the CPU; else none) and its measurements
 * through ../python/device_check_torch.py, run as a child process while GPU memory is polled.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readModelConfig } from "@bdc/lm-local";
import { randomIds } from "./common.ts";
import type { CheckOptions, Dtype } from "./device-check.ts";
import type { Results } from "./device-check-table.ts";
import type { GpuMemory } from "./gpu-memory.ts";
import { findPython, findTorchPython, torchBench, torchTrainBench } from "./torch-reference.ts";

export const CHECK_TOKENS = 64;

export function findTorch(python: string | undefined): Results["torch"] {
  const hf = python !== undefined ? { python } : findPython("transformers", "pip install torch transformers peft");
  const ref = findTorchPython();
  if ("python" in hf && spawnSync(hf.python, ["-c", "import peft, transformers, safetensors"]).status === 0) return { backend: "transformers+peft", python: hf.python };
  if ("python" in ref) return { backend: "reference", python: ref.python, note: "transformers/PEFT not installed: PyTorch figures are the project's plain-torch reference on the CPU" };
  return { backend: "none", note: "no PyTorch here" };
}

export function runPython(python: string, args: ReadonlyArray<string>, log: (line: string) => void, timeoutMs = 900_000): Promise<Record<string, unknown>> {
  const script = path.resolve(import.meta.dirname, "../python/device_check_torch.py");
  return new Promise((resolve, reject) => {
    const child = spawn(python, [script, ...args], { stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs, env: { ...process.env, OMP_WAIT_POLICY: "PASSIVE" } });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (t: string) => void (out += t));
    child.stderr.setEncoding("utf8").on("data", (t: string) => void (err += t));
    child.on("error", reject);
    child.on("close", (code) => {
      const last = out.trim().split("\n").pop() ?? "";
      if (code === 0 && last.startsWith("{")) resolve(JSON.parse(last) as Record<string, unknown>);
      else {
        log(err.trim().split("\n").slice(-5).join("\n"));
        reject(new Error(`device_check_torch ${args[0]} exited ${code}: ${err.trim().split("\n").pop() ?? ""}`));
      }
    });
  });
}

export async function measureTorch(dir: string, o: CheckOptions, dtype: Dtype | "bfloat16", train: boolean, torch: Results["torch"], gpu: GpuMemory, log: (line: string) => void): Promise<Record<string, unknown>> {
  const vocab = readModelConfig(dir).vocabSize;
  if (torch.backend === "transformers+peft") {
    const idsFile = path.join(o.work!, "check-ids.json");
    fs.writeFileSync(idsFile, JSON.stringify(randomIds(CHECK_TOKENS, vocab, 7)));
    const logitsOut = path.join(o.work!, `torch-${dtype}.f32`);
    const args = ["bench", "--model", dir, "--dtype", dtype, "--ids", idsFile, "--logits-out", logitsOut, "--prompt-tokens", String(o.promptTokens), "--decode-tokens", String(o.decodeTokens), "--repeats", String(o.reps), "--train", train ? o.train.map(([b, t]) => `${b}x${t}`).join(",") : "", "--device", o.device === "cpu" ? "cpu" : "cuda"];
    const { value, peakMb } = await gpu.during(() => runPython(torch.python!, args, log));
    return { ...value, peak_gpu_mb: peakMb };
  }
  if (torch.backend === "reference" && dtype === "float32") {
    // No transformers here: the project's plain-torch reference on the CPU (speed only; not the PEFT anchor).
    const threads = os.availableParallelism();
    const b = torchBench(torch.python!, dir, { promptTokens: o.promptTokens, decodeTokens: o.decodeTokens, repeats: o.reps, threads });
    const trainResults: Record<string, unknown> = {};
    if (train) for (const [batch, tokens] of o.train) trainResults[`${batch}x${tokens}`] = { seconds: torchTrainBench(torch.python!, dir, { tokens, batch, rank: 8, targets: ["q_proj", "v_proj"], repeats: o.reps, threads }).step_seconds };
    return { torch: b.torch, prefill: { tokens_per_second: b.prefill_tokens_per_second }, decode: { tokens_per_second: b.decode_tokens_per_second }, train: trainResults };
  }
  return { skipped: torch.backend === "none" ? torch.note : `the reference implementation runs float32 only` };
}
