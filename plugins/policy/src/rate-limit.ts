/** Client-side limits: requests in flight, requests per minute, tokens per minute. */
import { abortableSleep } from "./retry.ts";

export class Limiter {
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly requests: number[] = [];
  private readonly tokens: Array<{ at: number; n: number }> = [];

  constructor(
    private readonly concurrency: number,
    private readonly rpm?: number,
    private readonly tpm?: number,
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void> = abortableSleep,
  ) {}

  /** Waits for a slot, then for the per-minute budgets; returns the release function. */
  async acquire(signal: AbortSignal, estimatedTokens: number): Promise<() => void> {
    if (this.inFlight >= this.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.inFlight++;
    try {
      for (;;) {
        const wait = this.waitMs(estimatedTokens);
        if (wait <= 0) break;
        await this.sleep(wait, signal);
      }
    } catch (e) {
      this.release();
      throw e;
    }
    this.requests.push(this.now());
    return () => this.release();
  }

  /** Records the tokens a finished request really used. */
  spend(tokens: number): void {
    if (this.tpm !== undefined) this.tokens.push({ at: this.now(), n: tokens });
  }

  private release(): void {
    this.inFlight--;
    this.waiting.shift()?.();
  }

  private waitMs(estimatedTokens: number): number {
    const t = this.now();
    const minuteAgo = t - 60_000;
    while (this.requests.length > 0 && this.requests[0]! <= minuteAgo) this.requests.shift();
    while (this.tokens.length > 0 && this.tokens[0]!.at <= minuteAgo) this.tokens.shift();
    let wait = 0;
    if (this.rpm !== undefined && this.requests.length >= this.rpm) wait = Math.max(wait, this.requests[0]! + 60_000 - t);
    if (this.tpm !== undefined) {
      const used = this.tokens.reduce((n, x) => n + x.n, 0);
      if (used > 0 && used + estimatedTokens > this.tpm) wait = Math.max(wait, this.tokens[0]!.at + 60_000 - t);
    }
    return wait;
  }
}
