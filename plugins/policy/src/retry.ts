/** Exponential backoff with full jitter, honouring the server's Retry-After. */
import { ProviderError, RETRYABLE } from "./types.ts";

export interface RetryPolicy {
  readonly maxRetries: number;
  readonly baseMs: number;
  readonly maxMs: number;
  /** Injected for tests; Math.random by default. */
  readonly random?: () => number;
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 6, baseMs: 500, maxMs: 60_000 };

export function backoffMs(attempt: number, policy: RetryPolicy, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxMs);
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
  return Math.round((policy.random ?? Math.random)() * cap);
}

export const abortableSleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new ProviderError("aborted", "aborted"));
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new ProviderError("aborted", "aborted"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });

/** Runs `attempt` until it succeeds, fails for good, or the retries are spent. */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  policy: RetryPolicy,
  signal: AbortSignal,
  onRetry: (error: ProviderError, waitMs: number, attempt: number) => void,
): Promise<{ value: T; retries: number }> {
  for (let n = 0; ; n++) {
    try {
      return { value: await attempt(), retries: n };
    } catch (e) {
      const error = e instanceof ProviderError ? e : new ProviderError("connection", e instanceof Error ? e.message : String(e));
      if (!RETRYABLE.has(error.kind) || n >= policy.maxRetries || signal.aborted) throw Object.assign(error, { retries: n });
      const wait = backoffMs(n, policy, error.retryAfterMs);
      onRetry(error, wait, n + 1);
      await (policy.sleep ?? abortableSleep)(wait, signal);
    }
  }
}

/** Retry-After as seconds or an HTTP date; also the `retry-after-ms` header some providers send. */
export function parseRetryAfter(headers: { get(name: string): string | null } | undefined): number | undefined {
  const ms = headers?.get("retry-after-ms");
  if (ms !== null && ms !== undefined && /^\d+(\.\d+)?$/.test(ms.trim())) return Math.ceil(Number(ms));
  const v = headers?.get("retry-after");
  if (v === null || v === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Math.ceil(Number(v) * 1000);
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
