/** Peak GPU memory of a phase, from nvidia-smi: the same measure for ONNX Runtime (Vulkan) and PyTorch (CUDA). */
import { spawn, spawnSync } from "node:child_process";

export /** GPU memory in use (MiB, all processes), polled from nvidia-smi: undefined where there is none. */
class GpuMemory {
  private peak = 0;
  private timer: NodeJS.Timeout | undefined;
  readonly available: boolean;
  readonly idle: number;

  constructor() {
    this.idle = GpuMemory.read() ?? 0;
    this.available = GpuMemory.read() !== undefined;
  }

  static read(): number | undefined {
    const r = spawnSync("nvidia-smi", ["--query-gpu=memory.used", "--format=csv,noheader,nounits"], { encoding: "utf8", timeout: 10_000 });
    if (r.status !== 0 || typeof r.stdout !== "string") return undefined;
    const v = Number(r.stdout.trim().split("\n")[0]);
    return Number.isFinite(v) ? v : undefined;
  }

  /** Polls during `fn` (asynchronously: the work runs meanwhile) and returns the peak above idle. */
  async during<T>(fn: () => Promise<T>): Promise<{ value: T; peakMb: number | undefined }> {
    if (!this.available) return { value: await fn(), peakMb: undefined };
    this.peak = 0;
    const poll = () => {
      const child = spawn("nvidia-smi", ["--query-gpu=memory.used", "--format=csv,noheader,nounits"], { stdio: ["ignore", "pipe", "ignore"] });
      let text = "";
      child.stdout.setEncoding("utf8").on("data", (t: string) => void (text += t));
      child.on("close", () => {
        const v = Number(text.trim().split("\n")[0]);
        if (Number.isFinite(v)) this.peak = Math.max(this.peak, v);
      });
    };
    poll();
    this.timer = setInterval(poll, 200);
    try {
      const value = await fn();
      poll();
      await new Promise((r) => setTimeout(r, 300));
      return { value, peakMb: Math.max(0, this.peak - this.idle) };
    } finally {
      clearInterval(this.timer);
    }
  }
}
