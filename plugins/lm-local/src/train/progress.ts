/**
 * Training progress on stderr: on a terminal one bar redrawn in place (step, loss, learning
 * rate, tokens/s, ETA); otherwise (CI, pipes, log files) a plain line every tenth of the run or
 * every 30 s, whichever comes first.
 */
import type { TrainProgress } from "./trainer.ts";

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${seconds.toFixed(0)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m${String(Math.round(seconds % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

export function progressLine(p: TrainProgress): string {
  return [
    `step ${p.step}/${p.totalSteps}`,
    `epoch ${p.epoch.toFixed(2)}`,
    `loss ${p.loss.toFixed(4)}`,
    ...(p.evalLoss === undefined ? [] : [`eval ${p.evalLoss.toFixed(4)}`]),
    `lr ${p.lr.toExponential(2)}`,
    `${p.tokensPerSecond >= 100 ? p.tokensPerSecond.toFixed(0) : p.tokensPerSecond.toFixed(1)} tok/s`,
    `eta ${duration(p.etaSeconds)}`,
  ].join("  ");
}

export class TrainProgressDisplay {
  private lastLine = 0;
  private lastTenth = -1;
  private drawn = false;

  constructor(
    private readonly write: (text: string) => void,
    private readonly isTTY: boolean,
  ) {}

  update(p: TrainProgress): void {
    if (this.isTTY) {
      const width = 24;
      const fill = Math.round((p.step / Math.max(1, p.totalSteps)) * width);
      this.write(`\r\x1b[2K${"█".repeat(fill)}${"░".repeat(width - fill)} ${progressLine(p)}`);
      this.drawn = true;
      return;
    }
    const tenth = Math.floor((10 * p.step) / Math.max(1, p.totalSteps));
    const now = performance.now();
    if (tenth > this.lastTenth || now - this.lastLine > 30_000 || p.step === p.totalSteps) {
      this.lastTenth = tenth;
      this.lastLine = now;
      this.write(`${progressLine(p)}\n`);
    }
  }

  /** A message line, above the bar on a terminal. */
  log(line: string): void {
    this.write(`${this.drawn ? "\r\x1b[2K" : ""}${line}\n`);
    this.drawn = false;
  }

  close(): void {
    if (this.drawn) this.write("\n");
    this.drawn = false;
  }
}
