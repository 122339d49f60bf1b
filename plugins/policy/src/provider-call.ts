/**
 * What createPolicy and createEmbedder share around a provider call: where the response cache
 * lives, one call under the rate limits with retries (and their events), a failed call as the
 * user's error, a replay's cache miss.
 */
import * as path from "node:path";
import { BdcError, findProjectRoot, type KernelServices } from "@bdc/core";
import type { Limiter } from "./rate-limit.ts";
import { withRetries, type RetryPolicy } from "./retry.ts";
import { ProviderError, type ProviderErrorKind } from "./types.ts";

const ERROR_CODES: Partial<Record<ProviderErrorKind, string>> = {
  auth: "BDC_POLICY_AUTH",
  not_found: "BDC_POLICY_NOT_FOUND",
  bad_request: "BDC_POLICY_REQUEST",
};

export const responseCacheDir = (cacheDir: string | undefined, kernel: KernelServices): string =>
  cacheDir ?? path.join(findProjectRoot(kernel.baseDir), ".cache", "bdc", "responses");

/**
 * A call that failed for good (retries spent, or not retryable), as what to throw: an abort stays
 * a ProviderError; anything else becomes a BdcError saying where, what and what to do.
 */
function providerFailure(
  e: unknown,
  where: string,
  explain: ((kind: ProviderErrorKind) => string | undefined) | undefined,
): { readonly error: ProviderError; readonly retries: number; readonly thrown: Error } {
  const error = e instanceof ProviderError ? e : new ProviderError("connection", String(e));
  const retries = (e as { retries?: number }).retries ?? 0;
  if (error.kind === "aborted") return { error, retries, thrown: error };
  const thrown = new BdcError({
    code: ERROR_CODES[error.kind] ?? "BDC_POLICY_UNAVAILABLE",
    message: `${where}: ${error.message}${error.status === undefined ? "" : ` (HTTP ${error.status})`}${retries > 0 ? ` after ${retries} retries` : ""}`,
    hint: explain?.(error.kind) ?? (ERROR_CODES[error.kind] === undefined ? "the provider kept failing; try again later, or raise max_retries / timeout_ms" : undefined),
    cause: e,
  });
  return { error, retries, thrown };
}

/** A read-only cache (a replay) that lacks an entry. */
export function cacheMissError(where: string, key: string, what: string, cacheDir: string): BdcError {
  const shown = what.length > 80 ? `${what.slice(0, 80)}...` : what;
  return new BdcError({
    code: "BDC_CACHE_MISS",
    message: `${where}: no cached response for this request (cache is read-only): key ${key}, ${shown}`,
    hint: `replay needs the cache of the original run in ${cacheDir}; set cache: read-write to call the provider`,
  });
}

export interface CallContext {
  readonly limiter: Limiter;
  readonly retry: RetryPolicy;
  readonly kernel: KernelServices;
  readonly model: string;
  /** "policy instance "x" (provider, model m)": the start of every error message. */
  readonly where: string;
  readonly explain?: ((kind: ProviderErrorKind) => string | undefined) | undefined;
  /** Counters of the instance: retries, and calls + failed for a call that fails for good. */
  readonly totals: { calls: number; failed: number; retries: number };
}

/**
 * `attempt` under the limiter (a slot, the per-minute budgets with `estimate` tokens), retried
 * on transient errors with `llm.retry` events; a call that fails for good emits `llm.error` and
 * throws the user's error. Success is the caller's to account.
 */
export async function callProvider<T>(c: CallContext, signal: AbortSignal, estimate: number, attempt: () => Promise<T>): Promise<{ value: T; retries: number }> {
  const release = await c.limiter.acquire(signal, estimate);
  try {
    return await withRetries(attempt, c.retry, signal, (error, waitMs, n) => {
      c.totals.retries++;
      c.kernel.emit("llm.retry", { model: c.model, kind: error.kind, status: error.status, wait_ms: waitMs, attempt: n, message: error.message.slice(0, 300) });
    });
  } catch (e) {
    c.totals.calls++;
    c.totals.failed++;
    const { error, retries, thrown } = providerFailure(e, c.where, c.explain);
    c.kernel.emit("llm.error", { model: c.model, kind: error.kind, status: error.status, retries, message: error.message.slice(0, 300) });
    throw thrown;
  } finally {
    release();
  }
}
