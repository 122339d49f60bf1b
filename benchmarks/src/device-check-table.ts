/** The device check's results (results.json) and their table (table.md, the README's). */
import type { Device } from "@bdc/onnx-graph";
import type { Placement } from "./ort-placements.ts";

/** Everything measured, as written to results.json. */
export interface Results {
  date: string;
  device: Device;
  machine: Record<string, unknown>;
  torch: { backend: "transformers+peft" | "reference" | "none"; python?: string; note?: string };
  shapes: Record<string, ShapeResult>;
}

export interface ShapeResult {
  label: string;
  skipped?: string;
  checkpoint?: Record<string, unknown>;
  ort: Record<string, Record<string, unknown>>;
  torch: Record<string, unknown>;
  placements?: Record<string, Placement | { error: string }>;
}

const n = (v: unknown, digits = 0): string => (typeof v === "number" && Number.isFinite(v) ? v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "-");
const ratio = (a: unknown, b: unknown): string => (typeof a === "number" && typeof b === "number" && b > 0 ? `${(a / b).toFixed(2)}x` : "-");
const get = (o: unknown, ...keys: string[]): unknown => keys.reduce<unknown>((v, k) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined), o);

/** results.json as the README's table: one row per shape and compute type, ratios to PyTorch. */
export function renderTable(r: Results): string {
  const lines = [
    `Device check, ${r.date.slice(0, 10)}: ONNX Runtime ${r.device} vs PyTorch (${r.torch.backend}${r.torch.note === undefined ? "" : `: ${r.torch.note}`}); machine: ${r.machine["gpu"] ?? "no GPU"}, ${r.machine["cpus"]} CPUs.`,
    "",
    "| shape | type | logits vs CPU provider (max abs / rel, top-1) | vs PyTorch | prefill tok/s ORT / PyTorch | decode tok/s ORT / PyTorch (host cache) | peak GPU MB ORT / PyTorch |",
    "|---|---|---|---|---|---|---|",
  ];
  const problems: string[] = [];
  for (const [name, s] of Object.entries(r.shapes)) {
    if (s.skipped !== undefined) {
      lines.push(`| ${name} | - | ${s.skipped} | | | | |`);
      continue;
    }
    for (const [dtype, o] of Object.entries(s.ort)) {
      if (dtype.startsWith("train")) continue;
      // PyTorch has one row per type: fused-attention rows compare with it too.
      const t = s.torch[dtype.replace(/ fused$/, "")];
      if (get(o, "error") !== undefined) problems.push(`${name} ${dtype}: ${String(get(o, "error"))}`);
      const vs = (k: string) => (get(o, k) === undefined ? "-" : `${(get(o, k, "maxAbs") as number).toExponential(1)} / ${(get(o, k, "relative") as number).toExponential(1)}, ${n(100 * (get(o, k, "top1") as number))}%`);
      const host = get(o, "decode_host_cache_tokens_per_second");
      lines.push(
        `| ${name} | ${dtype === "adapter" ? `float32 + LoRA r8 q,v (factors ${String(get(o, "factors") ?? "?")})` : dtype} | ${vs("vs_cpu_fp32")} | ${vs("vs_torch")} | ${n(get(o, "prefill_tokens_per_second"))} / ${n(get(t, "prefill", "tokens_per_second"))} (${ratio(get(o, "prefill_tokens_per_second"), get(t, "prefill", "tokens_per_second"))}) | ${n(get(o, "decode_tokens_per_second"), 1)} / ${n(get(t, "decode", "tokens_per_second"), 1)} (${ratio(get(o, "decode_tokens_per_second"), get(t, "decode", "tokens_per_second"))})${host === undefined ? "" : `, host cache ${n(host, 1)}`} | ${n(get(o, "peak_gpu_mb"))} / ${n(get(t, "peak_gpu_mb"))} |`,
      );
    }
    const bf16 = s.torch["bfloat16"];
    if (bf16 !== undefined && get(bf16, "prefill") !== undefined) lines.push(`| ${name} | PyTorch bf16 | | | - / ${n(get(bf16, "prefill", "tokens_per_second"))} | - / ${n(get(bf16, "decode", "tokens_per_second"), 1)} | - / ${n(get(bf16, "peak_gpu_mb"))} |`);
  }
  lines.push("", "| shape | training step (r 8 on q,v, AdamW) | ORT fp32 ms | PyTorch fp32 ms | ratio | PyTorch bf16 ms | peak GPU MB ORT |", "|---|---|---|---|---|---|---|");
  for (const [name, s] of Object.entries(r.shapes)) {
    for (const [key, o] of Object.entries(s.ort)) {
      if (!key.startsWith("train")) continue;
      const bxt = key.slice("train ".length);
      const t32 = get(s.torch, "float32", "train", bxt, "seconds");
      const t16 = get(s.torch, "bfloat16", "train", bxt, "seconds");
      const mine = get(o, "seconds");
      if (get(o, "error") !== undefined) problems.push(`${name} ${key}: ${String(get(o, "error"))}`);
      lines.push(`| ${name} | ${bxt} | ${n(typeof mine === "number" ? mine * 1000 : undefined)} | ${n(typeof t32 === "number" ? t32 * 1000 : undefined)} | ${ratio(mine, t32)} | ${n(typeof t16 === "number" ? t16 * 1000 : undefined)} | ${n(get(o, "peak_gpu_mb"))} |`);
    }
  }
  const placements = Object.entries(r.shapes).flatMap(([name, s]) =>
    Object.entries(s.placements ?? {}).map(([graph, p]) => ("error" in p ? `- ${name} ${graph}: ${p.error}` : `- ${name} ${graph}: ${Object.entries(p.providers).map(([ep, c]) => `${c} nodes on ${ep}`).join(", ")}${Object.keys(p.cpuOps).length === 0 ? "" : `; on the CPU: ${Object.entries(p.cpuOps).map(([op, c]) => `${op} x${c}`).join(", ")}`}`)),
  );
  if (placements.length > 0) lines.push("", "Node placements (ONNX Runtime's report):", ...placements);
  if (problems.length > 0) lines.push("", "Failed phases:", ...problems.map((p) => `- ${p}`));
  return `${lines.join("\n")}\n`;
}
