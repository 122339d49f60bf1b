/**
 * Progress of a run: bars redrawn in place on a TTY, plain timestamped lines otherwise (CI,
 * pipes, log files), nothing when silenced.
 */
export interface ProgressReporter {
  stepStarted(step: string, total: number, resumed: number): void;
  itemFinished(step: string, ok: boolean): void;
  stepFinished(step: string, status: string): void;
  log(line: string): void;
  /** Shown whatever the verbosity (`--quiet` too): something the user must not miss. */
  warn(line: string): void;
  close(): void;
}

interface StepProgress {
  total: number;
  resumed: number;
  done: number;
  failed: number;
  started: number;
  status?: string;
  lastLine: number;
  lastPct: number;
}

const now = () => performance.now();

abstract class Tracker implements ProgressReporter {
  protected readonly steps = new Map<string, StepProgress>();
  stepStarted(step: string, total: number, resumed: number): void {
    this.steps.set(step, { total, resumed, done: 0, failed: 0, started: now(), lastLine: now(), lastPct: 0 });
    this.changed(step, "start");
  }
  itemFinished(step: string, ok: boolean): void {
    const s = this.steps.get(step);
    if (s === undefined) return;
    if (ok) s.done++;
    else s.failed++;
    this.changed(step, "item");
  }
  stepFinished(step: string, status: string): void {
    const s = this.steps.get(step);
    if (s !== undefined) s.status = status;
    this.changed(step, "end");
  }
  abstract log(line: string): void;
  warn(line: string): void {
    this.log(`warning: ${line}`);
  }
  abstract close(): void;
  protected abstract changed(step: string, what: "start" | "item" | "end"): void;

  protected counts(s: StepProgress): string {
    const finished = s.resumed + s.done + s.failed;
    const elapsed = (now() - s.started) / 1000;
    const rate = elapsed > 0 ? s.done / elapsed : 0;
    const left = s.total - finished;
    const eta = rate > 0 && left > 0 ? ` eta ${formatDuration(left / rate)}` : "";
    return `${finished}/${s.total}${s.failed > 0 ? ` (${s.failed} failed)` : ""}${s.resumed > 0 ? ` (${s.resumed} resumed)` : ""} ${rate.toFixed(rate < 10 ? 2 : 0)}/s${eta}`;
  }
}

export class LineProgress extends Tracker {
  constructor(private readonly write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)) {
    super();
  }
  log(line: string): void {
    this.write(line);
  }
  close(): void {}
  protected changed(step: string, what: "start" | "item" | "end"): void {
    const s = this.steps.get(step)!;
    if (what === "start") {
      this.write(`[${step}] started: ${s.total} item${s.total === 1 ? "" : "s"}${s.resumed > 0 ? ` (${s.resumed} already done, resuming)` : ""}`);
      return;
    }
    if (what === "end") {
      this.write(`[${step}] ${s.status}: ${this.counts(s)} in ${formatDuration((now() - s.started) / 1000)}`);
      return;
    }
    const pct = Math.floor((100 * (s.resumed + s.done + s.failed)) / Math.max(1, s.total));
    const quiet = now() - s.lastLine;
    if ((pct >= s.lastPct + 10 && quiet > 1_000) || quiet > 10_000) {
      s.lastPct = pct - (pct % 10);
      s.lastLine = now();
      this.write(`[${step}] ${this.counts(s)}`);
    }
  }
}

export class TtyProgress extends Tracker {
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {
    super();
  }
  log(line: string): void {
    this.clear();
    this.out.write(`${line}\n`);
    this.draw();
  }
  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.clear();
    this.draw();
    this.drawn = 0;
  }
  protected changed(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.clear();
      this.draw();
    }, 80);
  }
  private clear(): void {
    if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}F\x1b[0J`);
    this.drawn = 0;
  }
  private draw(): void {
    const width = Math.max(10, Math.min(30, (this.out.columns ?? 80) - 60));
    const lines: string[] = [];
    for (const [name, s] of this.steps) {
      const frac = s.total === 0 ? 1 : (s.resumed + s.done + s.failed) / s.total;
      const fill = Math.round(frac * width);
      const bar = `${"█".repeat(fill)}${"░".repeat(width - fill)}`;
      const tag = s.status === undefined ? "" : ` ${s.status}`;
      lines.push(`${name.padEnd(14).slice(0, 14)} ${bar} ${this.counts(s)}${tag}`);
    }
    if (lines.length > 0) this.out.write(`${lines.join("\n")}\n`);
    this.drawn = lines.length;
  }
}

export class SilentProgress extends Tracker {
  constructor(private readonly warnings: (line: string) => void = (l) => process.stderr.write(`${l}\n`)) {
    super();
  }
  log(): void {}
  override warn(line: string): void {
    this.warnings(`warning: ${line}`);
  }
  close(): void {}
  protected changed(): void {}
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m${String(Math.round(seconds % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}
